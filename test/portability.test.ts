import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import type { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import fc from 'fast-check';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildApp } from '../src/app.js';
import { openStore, type Store } from '../src/db/connect.js';
import type { Database } from '../src/db/schema.js';
import { TABLES } from '../src/db/tables.js';
import { canonicalJson, type Json } from '../src/domain/canonical-json.js';
import { copyStore, digestStore, exportStore, importStore } from '../src/features/portability/portability.js';
import { signPayload } from '../src/features/experiments/webhook-signature.js';
import { hashApiKey } from '../src/features/workspaces/workspaces.service.js';
import { snapshotDatabase } from './support/db-snapshot.js';
import { createTestDatabase, dialect, injectAs, listen, okJson, sdk, startTestApp, type TestApp, type TestDatabase } from './support/test-app.js';

// Moving up keeps the data: a store made through the API on SQLite is copied to PostgreSQL
// (`branchwise copy --to`) and dumped back to SQLite (`export` / `import`), and a server on each
// copy answers every read exactly as the original did.

const run = promisify(execFile);
const bin = path.resolve('bin/branchwise.mjs');

function cli(env: NodeJS.ProcessEnv, ...args: string[]) {
  return run(process.execPath, [bin, ...args], { env: { ...process.env, DATABASE_URL: '', ...env } });
}

async function serveOn(store: Store) {
  const app = await buildApp({ config: { bodyLimitBytes: 1 << 21, logLevel: 'silent' }, store, logger: false });
  const url = await app.server.listen({ host: '127.0.0.1', port: 0 });
  return { app, url };
}

/** Everything a client can read about every agent, through the SDK. */
async function readEverything(client: ElevenLabsClient) {
  const seen: unknown[] = [];
  const { agents } = await client.conversationalAi.agents.list({ pageSize: 100 });
  for (const summary of agents.sort((a, b) => a.agentId.localeCompare(b.agentId))) {
    seen.push(summary, await client.conversationalAi.agents.get(summary.agentId));
    const branches = await client.conversationalAi.agents.branches.list(summary.agentId, { includeArchived: true });
    seen.push(branches);
    for (const branch of branches.results) {
      const detail = await client.conversationalAi.agents.branches.get(summary.agentId, branch.id);
      seen.push(detail);
      for (const version of detail.mostRecentVersions ?? []) {
        seen.push(await client.conversationalAi.agents.versions.get(summary.agentId, version.id));
        seen.push(await client.conversationalAi.agents.get(summary.agentId, { versionId: version.id }));
      }
    }
  }
  return seen;
}

async function populate(client: ElevenLabsClient) {
  for (const name of ['Billing', 'Support', 'Sales']) {
    const { agentId } = await client.conversationalAi.agents.create({
      name,
      tags: [name.toLowerCase(), 'team'],
      conversationConfig: { agent: { firstMessage: `Hello from ${name}`, prompt: { prompt: `You handle ${name}. `.repeat(40) } } },
    });
    const main = await client.conversationalAi.agents.update(agentId, {
      conversationConfig: { agent: { prompt: { temperature: 0.4 } } },
      versionDescription: 'cooler',
    });
    const { createdBranchId } = await client.conversationalAi.agents.branches.create(agentId, {
      parentVersionId: main.versionId!,
      name: `${name} experiment`,
      description: 'trying things',
      conversationConfig: { agent: { firstMessage: 'Hi!' } },
    });
    await client.conversationalAi.agents.update(agentId, { branchId: createdBranchId, conversationConfig: { tts: { speed: 1.1 } } });
    if (name === 'Sales') await client.conversationalAi.agents.branches.update(agentId, createdBranchId, { isArchived: true });
  }
}

describe('copy, export and import', () => {
  it.skipIf(dialect !== 'postgres')(
    'move a store from SQLite to PostgreSQL and back with every read identical (runs in the postgres project: it needs both)',
    async () => {
      const sqliteDir = mkdtempSync(path.join(tmpdir(), 'branchwise-copy-'));
      const backDir = mkdtempSync(path.join(tmpdir(), 'branchwise-back-'));
      let postgres: TestDatabase | undefined;
      try {
        // 1. A real store on SQLite, made through the API.
        const original = await openStore({ dataDir: sqliteDir });
        const served = await serveOn(original);
        const admin = await served.app.workspaces.bootstrap(undefined);
        await served.app.workspaces.createKey('default', 'alice', 'editor');
        const revoked = await served.app.workspaces.createKey('default', 'mallory', 'viewer');
        await served.app.workspaces.revokeKey('default', revoked.keyId);
        await served.app.workspaces.createWorkspace('acme');
        await populate(sdk(served.url, admin!.key));
        const before = await readEverything(sdk(served.url, admin!.key));
        const digests = await digestStore(original.db);
        await served.app.server.close();
        await original.close();
        expect(digests.find((digest) => digest.table === 'versions')?.rows).toBe(12);

        // 2. `branchwise copy --to postgres://…` into an empty database.
        postgres = await createTestDatabase();
        const copied = await cli({ DATA_DIR: sqliteDir }, 'copy', '--to', postgres.options.databaseUrl!);
        expect(copied.stderr).toContain('copied and verified');
        const onPostgres = await openStore(postgres.options);
        expect(await digestStore(onPostgres.db)).toEqual(digests);
        const servedPg = await serveOn(onPostgres);
        expect(await readEverything(sdk(servedPg.url, admin!.key))).toEqual(before);
        // The revoked key stays revoked; the others work.
        const refused = await fetch(`${servedPg.url}/v1/convai/agents`, { headers: { 'xi-api-key': revoked.key } });
        expect(refused.status).toBe(401);
        await servedPg.app.server.close();
        await onPostgres.close();

        // A second copy into a database that is no longer empty is refused and changes nothing.
        const again = await cli({ DATA_DIR: sqliteDir }, 'copy', '--to', postgres.options.databaseUrl!).catch((error) => error);
        expect(again.code).toBe(1);
        expect(again.stderr).toContain('not empty');

        // 3. Back to SQLite through a dump: `export` on PostgreSQL, `import` into a new SQLite store.
        const dumpFile = path.join(backDir, 'dump.jsonl');
        await cli({ DATABASE_URL: postgres.options.databaseUrl! }, 'export', '--out', dumpFile);
        const imported = await cli({ DATA_DIR: path.join(backDir, 'data') }, 'import', dumpFile);
        expect(imported.stderr).toContain('imported and verified');
        const back = await openStore({ dataDir: path.join(backDir, 'data') });
        expect(await digestStore(back.db)).toEqual(digests);
        const servedBack = await serveOn(back);
        expect(await readEverything(sdk(servedBack.url, admin!.key))).toEqual(before);
        await servedBack.app.server.close();
        await back.close();
      } finally {
        await postgres?.drop();
        rmSync(sqliteDir, { recursive: true, force: true });
        rmSync(backDir, { recursive: true, force: true });
      }
    },
  );

  it('refuses a truncated dump and leaves the target empty', async () => {
    const source = await createTestDatabase();
    const target = await createTestDatabase();
    const dir = mkdtempSync(path.join(tmpdir(), 'branchwise-dump-'));
    try {
      const store = await openStore(source.options);
      const served = await serveOn(store);
      const admin = await served.app.workspaces.bootstrap(undefined);
      await populate(sdk(served.url, admin!.key));
      await served.app.server.close();
      await store.close();
      const env = (database: TestDatabase) => ({ DATA_DIR: database.options.dataDir, DATABASE_URL: database.options.databaseUrl ?? '' });
      const dumpFile = path.join(dir, 'dump.jsonl');
      await cli(env(source), 'export', '--out', dumpFile);
      const lines = readFileSync(dumpFile, 'utf8').trimEnd().split('\n');
      writeFileSync(dumpFile, `${lines.slice(0, -5).join('\n')}\n`);
      const failed = await cli(env(target), 'import', dumpFile).catch((error) => error);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain('truncated');
      const check = await openStore(target.options);
      expect((await digestStore(check.db)).every((digest) => digest.rows === 0)).toBe(true);
      await check.close();
    } finally {
      await source.drop();
      await target.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists every table the migrations create', async () => {
    const database = await createTestDatabase();
    const store = await openStore(database.options);
    try {
      const tables = (await store.db.introspection.getTables()).map((table) => table.name).filter((name) => !name.startsWith('kysely_'));
      expect(tables.sort()).toEqual(TABLES.map((table) => table.name).sort());
    } finally {
      await store.close();
      await database.drop();
    }
  });
});

type DumpRecord = { table?: string; row?: Record<string, Json>; digests?: { table: string; rows: number; sha256: string }[] };

const envOf = (database: TestDatabase) => ({ DATA_DIR: database.options.dataDir, DATABASE_URL: database.options.databaseUrl ?? '' });

/** Row counts of every table: all zero when a refused import or copy left the target as it was. */
async function rowCounts(db: Kysely<Database>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of TABLES) {
    const { count } = await db.selectFrom(table.name).select((eb) => eb.fn.countAll().as('count')).executeTakeFirstOrThrow();
    counts[table.name] = Number(count);
  }
  return counts;
}

const EMPTY = Object.fromEntries(TABLES.map((table) => [table.name, 0]));

/** The dump's digests line recomputed from its rows: what someone who edits a dump on purpose writes. */
function withRecomputedDigests(lines: string[]): string[] {
  const records = lines.map((line) => JSON.parse(line) as DumpRecord);
  const digests = TABLES.map(({ name }) => {
    const hash = createHash('sha256');
    const rows = records.filter((record) => record.table === name);
    for (const record of rows) hash.update(`${canonicalJson(record.row!)}\n`);
    return { table: name, rows: rows.length, sha256: hash.digest('hex') };
  });
  return [...lines.filter((line) => !('digests' in JSON.parse(line))), JSON.stringify({ digests })];
}

function editRow(lines: string[], table: string, pick: (row: Record<string, Json>) => boolean, edit: (row: Record<string, Json>) => Record<string, Json>): string[] {
  let edited = false;
  const result = lines.map((line) => {
    const record = JSON.parse(line) as DumpRecord;
    if (edited || record.table !== table || !pick(record.row!)) return line;
    edited = true;
    return JSON.stringify({ table, row: edit(record.row!) });
  });
  if (!edited) throw new Error(`no ${table} row to edit in the dump`);
  return result;
}

const INJECTED_KEY = `sk_${'e'.repeat(48)}`;

/** A key row added to a dump for a key the attacker holds, next to the admin's. */
function injectKey(lines: string[]): string[] {
  const tables = lines.map((line) => (JSON.parse(line) as DumpRecord).table);
  const at = tables.lastIndexOf('api_keys');
  const template = (JSON.parse(lines[at]) as DumpRecord).row!;
  const row = { ...template, id: 'key_zzzzzzzzinjected', key_hash: hashApiKey(INJECTED_KEY), key_prefix: INJECTED_KEY.slice(0, 7), revoked_at_ms: null };
  return [...lines.slice(0, at + 1), JSON.stringify({ table: 'api_keys', row }), ...lines.slice(at + 1)];
}

/** Every way a dump can be damaged or edited; each must be refused with the target left empty. */
const TAMPERED: { name: string; tamper: (lines: string[]) => string[]; refusal: RegExp; cli?: true }[] = [
  {
    name: 'an agent renamed, the digests line kept',
    tamper: (lines) => editRow(lines, 'agents', () => true, (row) => ({ ...row, name: 'Renamed' })),
    refusal: /does not match its own digests.*agents/,
    cli: true,
  },
  { name: 'an api key injected, the digests line kept', tamper: injectKey, refusal: /does not match its own digests.*api_keys/, cli: true },
  { name: 'truncated: the digests line cut off', tamper: (lines) => lines.slice(0, -1), refusal: /truncated/, cli: true },
  { name: 'truncated in the middle of a table', tamper: (lines) => lines.slice(0, Math.floor(lines.length / 2)), refusal: /truncated/ },
  { name: 'a row dropped', tamper: (lines) => lines.filter((_, index) => index !== lines.length - 3), refusal: /does not match its own digests/ },
  { name: 'a row repeated', tamper: (lines) => [...lines.slice(0, -1), lines.at(-2)!, lines.at(-1)!], refusal: /does not match its own digests/ },
  { name: 'a malformed digests line', tamper: (lines) => [...lines.slice(0, -1), JSON.stringify({ digests: [{ table: 'agents', rows: 'many' }] })], refusal: /malformed/ },
  { name: 'a line after the digests', tamper: (lines) => [...lines, lines[1]], refusal: /after the digests/ },
  // Digests recomputed: the dump agrees with itself, so only the check of what the target holds
  // (inside its transaction) can refuse these.
  {
    name: 'a number stored as text, digests recomputed',
    tamper: (lines) => withRecomputedDigests(editRow(lines, 'versions', () => true, (row) => ({ ...row, committed_at_ms: String(row.committed_at_ms) }))),
    refusal: /verification failed for table versions/,
  },
  {
    name: "a revoked key's revocation left out, digests recomputed",
    tamper: (lines) =>
      withRecomputedDigests(
        editRow(lines, 'api_keys', (row) => row.revoked_at_ms !== null, (row) => Object.fromEntries(Object.entries(row).filter(([column]) => column !== 'revoked_at_ms'))),
      ),
    refusal: /verification failed for table api_keys|revoked_at_ms/,
  },
];

describe('a dump or copy that does not verify is refused before anything is committed', () => {
  let source: TestApp;
  let dump: string[];
  let dir: string;
  let target: TestDatabase;
  let targetStore: Store;
  let revokedKey: string;

  beforeAll(async () => {
    source = await startTestApp();
    await populate(sdk(await listen(source), source.keys.admin));
    const revoked = await source.app.workspaces.createKey('default', 'mallory', 'editor');
    await source.app.workspaces.revokeKey('default', revoked.keyId);
    revokedKey = revoked.key;
    dump = [];
    await exportStore(source.store, (line) => void dump.push(line));
    dir = mkdtempSync(path.join(tmpdir(), 'branchwise-tampered-'));
    // One target for every case: each refused import must leave it empty for the next.
    target = await createTestDatabase();
    targetStore = await openStore(target.options);
  });

  afterAll(async () => {
    await targetStore?.close();
    await target?.drop();
    await source?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The target holds nothing, and neither the injected nor the revoked key opens it. */
  async function expectUntouched() {
    expect(await rowCounts(targetStore.db)).toEqual(EMPTY);
    const served = await serveOn(targetStore);
    try {
      for (const key of [INJECTED_KEY, revokedKey, source.keys.admin]) {
        const response = await fetch(`${served.url}/v1/convai/agents`, { headers: { 'xi-api-key': key } });
        expect(response.status).toBe(401);
      }
    } finally {
      await served.app.server.close();
    }
  }

  // The cases through `branchwise import` (exit 1), the others in process (same code, faster).
  it.each(TAMPERED)('import refuses a dump with $name and leaves the target empty', async ({ tamper, refusal, cli: viaCli }) => {
    const lines = tamper(dump);
    if (viaCli) {
      const file = path.join(dir, 'tampered.jsonl');
      writeFileSync(file, `${lines.join('\n')}\n`);
      const failed = await cli(envOf(target), 'import', file).catch((error) => error);
      expect(failed.code, failed.stderr).toBe(1);
      await expectUntouched();
      expect(failed.stderr).toMatch(refusal);
    } else {
      const failed = await importStore(targetStore, async function* () {
        yield* lines;
      }).catch((error: Error) => error);
      await expectUntouched();
      expect(failed).toBeInstanceOf(Error);
      expect((failed as Error).message).toMatch(refusal);
    }
  });

  it('refuses any single edited value of any row, digests kept, and leaves the target empty (property)', async () => {
    const rowLines = dump.flatMap((line, index) => ((JSON.parse(line) as DumpRecord).row ? [index] : []));
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: rowLines.length - 1 }), fc.nat(), async (which, columnChoice) => {
        const index = rowLines[which];
        const { table, row } = JSON.parse(dump[index]) as DumpRecord;
        const columns = Object.keys(row!);
        const column = columns[columnChoice % columns.length];
        const value = row![column];
        const changed = typeof value === 'number' ? value + 1 : typeof value === 'string' ? `${value}x` : 'x';
        const lines = dump.map((line, at) => (at === index ? JSON.stringify({ table, row: { ...row, [column]: changed } }) : line));
        await expect(importStore(targetStore, async function* () {
          yield* lines;
        })).rejects.toThrow(/does not match its own digests/);
        expect(await rowCounts(targetStore.db)).toEqual(EMPTY);
      }),
      { numRuns: 30 },
    );
    await expectUntouched();
  });

  it('an intact dump of the same store imports and verifies (the cases above fail for their edit alone)', async () => {
    const other = await createTestDatabase();
    const store = await openStore(other.options);
    try {
      await importStore(store, async function* () {
        yield* dump;
      });
      expect(await digestStore(store.db)).toEqual(await digestStore(source.store.db));
    } finally {
      await store.close();
      await other.drop();
    }
  });

  it('a dump written before the procedure tables existed (no rows, no digests for them) imports and verifies', async () => {
    const newer = new Set(['procedures', 'procedure_versions', 'procedure_drafts']);
    const older = dump.map((line) => {
      const record = JSON.parse(line) as DumpRecord & { tables?: string[] };
      if (record.tables) return JSON.stringify({ ...record, tables: record.tables.filter((table) => !newer.has(table)) });
      if (record.digests) return JSON.stringify({ digests: record.digests.filter((digest) => !newer.has(digest.table)) });
      expect(newer.has(record.table ?? '')).toBe(false);
      return line;
    });
    expect(older.at(-1)).not.toBe(dump.at(-1));
    const other = await createTestDatabase();
    const store = await openStore(other.options);
    try {
      await importStore(store, async function* () {
        yield* older;
      });
      expect(await digestStore(store.db)).toEqual(await digestStore(source.store.db));
    } finally {
      await store.close();
      await other.drop();
    }
  });

  /** Makes the target store every agent under another name than the one it is sent. */
  async function renameOnInsert(db: Kysely<Database>, on: boolean) {
    if (dialect === 'sqlite') {
      if (on) await sql`create trigger rename_agents after insert on agents begin update agents set name = 'Tampered' where id = new.id; end`.execute(db);
      else await sql`drop trigger rename_agents`.execute(db);
      return;
    }
    if (on) {
      await sql`create function rename_agent() returns trigger as $$ begin new.name := 'Tampered'; return new; end $$ language plpgsql`.execute(db);
      await sql`create trigger rename_agents before insert on agents for each row execute function rename_agent()`.execute(db);
    } else {
      await sql`drop trigger rename_agents on agents`.execute(db);
      await sql`drop function rename_agent()`.execute(db);
    }
  }

  it.each(['copy', 'import'] as const)(
    '%s: a target that does not hold what it was sent is rolled back by the check inside its transaction',
    async (how) => {
      await renameOnInsert(targetStore.db, true);
      try {
        const attempt =
          how === 'copy'
            ? copyStore(source.store, targetStore)
            : importStore(targetStore, async function* () {
                yield* dump;
              });
        await expect(attempt).rejects.toThrow(/verification failed for table agents/);
      } finally {
        await renameOnInsert(targetStore.db, false);
      }
      await expectUntouched();
    },
  );

  it('copy and import refuse a target that is not empty', async () => {
    await expect(copyStore(source.store, source.store)).rejects.toThrow(/not empty/);
    await expect(
      importStore(source.store, async function* () {
        yield* dump;
      }),
    ).rejects.toThrow(/not empty/);
  });
});

/** Every branch's head is its last version: what a commit on it builds on. */
async function expectHeadsAtTheirLastVersions(db: Kysely<Database>) {
  const branches = await db.selectFrom('branches').select(['id', 'head_version_id', 'head_seq_no']).orderBy('id').execute();
  const versions = await db.selectFrom('versions').select(['id', 'branch_id', 'seq_no_in_branch']).execute();
  for (const branch of branches) {
    const own = versions.filter((version) => version.branch_id === branch.id);
    const last = own.reduce((a, b) => (Number(b.seq_no_in_branch) > Number(a.seq_no_in_branch) ? b : a));
    expect({ branch: branch.id, head_version_id: branch.head_version_id, head_seq_no: Number(branch.head_seq_no) }).toEqual({
      branch: branch.id,
      head_version_id: last.id,
      head_seq_no: Number(last.seq_no_in_branch),
    });
  }
  return branches.length;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

type WriteKind =
  | 'commit'
  | 'tags'
  | 'branch'
  | 'draft'
  | 'key'
  | 'workspace'
  | 'deployment'
  | 'proposal'
  | 'review'
  | 'comment'
  | 'procedure'
  | 'webhook'
  | 'metric'
  | 'exposure'
  | 'outcome'
  | 'delivery'
  | 'rollout';
const WRITE_KINDS: WriteKind[] = [
  'commit',
  'tags',
  'branch',
  'draft',
  'key',
  'workspace',
  'deployment',
  'proposal',
  'review',
  'comment',
  'procedure',
  'webhook',
  'metric',
  'exposure',
  'outcome',
  'delivery',
  'rollout',
];

/** The write that changes `table` (and the audit log, read last, with it). */
const WRITES_TABLE: Record<(typeof TABLES)[number]['name'], WriteKind> = {
  workspaces: 'workspace',
  users: 'key',
  api_keys: 'key',
  agents: 'tags',
  agent_tags: 'tags',
  branches: 'branch',
  versions: 'commit',
  blobs: 'commit',
  drafts: 'draft',
  deployments: 'deployment',
  merge_proposals: 'proposal',
  merge_proposal_reviews: 'review',
  merge_proposal_comments: 'comment',
  audit_events: 'commit',
  procedures: 'procedure',
  procedure_drafts: 'procedure',
  // A commit publishes its author's procedure drafts on the branch.
  procedure_versions: 'commit',
  guarded_rollouts: 'rollout',
  guarded_rollout_events: 'rollout',
  // No write here changes it (the evaluator takes it only while a rollout runs): any write will do.
  leases: 'commit',
  outcome_webhooks: 'webhook',
  experiment_metrics: 'metric',
  exposure_logs: 'exposure',
  exposure_arms: 'exposure',
  exposure_segments: 'exposure',
  exposure_cells: 'exposure',
  // Values of units already exposed: their cells change too.
  outcome_values: 'outcome',
  outcome_cells: 'outcome',
  webhook_deliveries: 'delivery',
};

/**
 * Writes the source one request at a time, each one transaction, every table by turns (or the
 * one asked for). After each write it records the digest of the whole store: exactly the states
 * the store has been in.
 */
function startWriter(source: TestApp, agents: { id: string; branches: string[] }[]) {
  const states = new Set<string>();
  const proposals: { agent: string; id: string }[] = [];
  const webhooks: { id: string; secret: string }[] = [];
  const metrics: { agent: string; key: string }[] = [];
  const exposed: { agent: string; unit: string }[] = [];
  let stopping = false;
  let steps = 0;
  const record = async () => void states.add(sha256(await snapshotDatabase(source.store.db)));
  const send = async (method: 'POST' | 'PATCH', url: string, payload: unknown, key = source.keys.admin) =>
    okJson<Record<string, string>>(await injectAs(source, method, url, key, payload));
  const write = async (kind: WriteKind, n: number) => {
    const agent = agents[n % agents.length];
    const [main, other] = agent.branches;
    const branch = agent.branches[Math.floor(n / agents.length) % agent.branches.length];
    const base = `/v1/convai/agents/${agent.id}`;
    const proposal = proposals.at(-1);
    switch (kind) {
      case 'commit':
        return send('PATCH', `${base}?branch_id=${branch}`, { conversation_config: { agent: { first_message: `step ${n}` } } });
      case 'tags':
        return send('PATCH', `${base}?branch_id=${main}`, { conversation_config: { agent: { first_message: `step ${n}` } }, tags: [`tag-${n}`] });
      case 'branch': {
        const head = await source.store.db.selectFrom('branches').select('head_version_id').where('id', '=', branch).executeTakeFirstOrThrow();
        const made = await send('POST', `${base}/branches`, { parent_version_id: head.head_version_id, name: `writer ${n}`, description: '' });
        return agent.branches.push(made.created_branch_id);
      }
      case 'draft':
        return send('POST', `${base}/drafts?branch_id=${branch}`, { conversation_config: { agent: { first_message: `draft ${n}` } }, platform_settings: {}, workflow: {}, name: 'Draft' });
      case 'key':
        return source.app.workspaces.createKey('default', `writer-${n}`, 'editor');
      case 'workspace':
        return source.app.workspaces.createWorkspace(`writer-${n}`);
      case 'deployment': {
        const split = (branchId: string, share: number) => ({ branch_id: branchId, deployment_strategy: { type: 'percentage', traffic_percentage: share } });
        return send('POST', `${base}/deployments`, { deployment_request: { requests: [split(main, 100 - (n % 50)), split(other, n % 50)] } });
      }
      case 'proposal': {
        const made = await send('POST', `${base}/merge-proposals`, { source_branch_id: other, target_branch_id: main, title: `proposal ${n}` }, source.keys.editor);
        return proposals.push({ agent: agent.id, id: made.created_merge_proposal_id });
      }
      case 'review':
        if (!proposal) return write('proposal', n);
        return send('POST', `/v1/convai/agents/${proposal.agent}/merge-proposals/${proposal.id}/reviews`, { state: n % 2 ? 'approved' : 'changes_requested' });
      case 'comment':
        if (!proposal) return write('proposal', n);
        return send('POST', `/v1/convai/agents/${proposal.agent}/merge-proposals/${proposal.id}/comments`, { body: `comment ${n}` });
      case 'procedure':
        return send('POST', `${base}/branches/${branch}/procedures`, { name: `procedure ${n}`, content: `Step ${n}.` });
      case 'rollout': {
        // Started and rolled back at once (two writes, each a state), so the deployments keep going.
        const started = await send('POST', `${base}/guarded-rollouts`, {
          branch_id: other,
          baseline_branch_id: main,
          steps: [{ traffic_percentage: 50, min_duration_secs: 60, min_outcomes_per_branch: 10 }],
          guard_metrics: [{ metric_key: 'call_successful', max_regression: 0.05 }],
        });
        await record();
        return send('POST', `${base}/guarded-rollouts/${started.guarded_rollout_id}/rollback`, {});
      }
      case 'webhook': {
        const made = await send('POST', '/v1/convai/outcome-webhooks', { name: `webhook ${n}` });
        return webhooks.push({ id: made.webhook_id, secret: made.secret });
      }
      case 'metric': {
        await send('POST', `${base}/metrics`, { metric_key: `m${n}`, kind: 'mean', higher_is_better: true, source: { type: 'event' } });
        return metrics.push({ agent: agent.id, key: `m${n}` });
      }
      case 'exposure':
        await send('POST', `${base}/exposures`, { exposures: [{ conversation_id: `c${n}`, branch_id: main }] });
        return exposed.push({ agent: agent.id, unit: `c${n}` });
      case 'outcome': {
        const metric = metrics.at(-1);
        if (!metric) return write('metric', n);
        const unit = exposed.filter((candidate) => candidate.agent === metric.agent).at(-1);
        // An exposure of the metric's agent first (the writer's n picks the agent).
        if (!unit) return write('exposure', agents.findIndex((one) => one.id === metric.agent));
        return send('POST', `/v1/convai/agents/${metric.agent}/outcomes`, { events: [{ conversation_id: unit.unit, metric_key: metric.key, value: n, occurred_at_unix_secs: n }] });
      }
      case 'delivery': {
        const webhook = webhooks.at(-1);
        if (!webhook) return write('webhook', n);
        const body = JSON.stringify({ type: 'post_call_transcription', data: { agent_id: agent.id, conversation_id: `d${n}`, analysis: { call_successful: 'success' }, metadata: { call_duration_secs: n } } });
        const response = await source.app.server.inject({
          method: 'POST',
          url: `/v1/convai/outcome-webhooks/${webhook.id}`,
          headers: { 'content-type': 'application/json', 'elevenlabs-signature': signPayload(webhook.secret, Math.floor(Date.now() / 1000), body) },
          payload: body,
        });
        return okJson(response);
      }
    }
  };
  let asked: WriteKind | undefined;
  let written: () => void = () => undefined;
  const done = (async () => {
    await record();
    while (!stopping) {
      const n = steps++;
      const kind = asked ?? WRITE_KINDS[n % WRITE_KINDS.length];
      asked = undefined;
      // A new branch now and then, not every time: the store stays small.
      await write(kind === 'branch' && agents[n % agents.length].branches.length >= 4 ? 'commit' : kind, n);
      await record();
      written();
      // Paced, so that the store (and the digest of it taken after every write) stays small.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  return {
    states,
    /** Resolves once the writer has made its next write: one that changes `table` when given. */
    next: (table?: (typeof TABLES)[number]['name']) => {
      asked = table && WRITES_TABLE[table];
      return new Promise<void>((resolve) => (written = resolve));
    },
    async stop() {
      stopping = true;
      await done;
    },
  };
}

describe('export and copy while the source commits', () => {
  it('every dump and copy is the source as it was at one instant: it verifies, heads are at their last versions, and every branch takes a commit', async () => {
    const source = await startTestApp();
    const agents: { id: string; branches: string[] }[] = [];
    for (const name of ['One', 'Two', 'Three']) {
      const created = okJson<{ agent_id: string }>(await injectAs(source, 'POST', '/v1/convai/agents/create', source.keys.admin, { name, conversation_config: {} }));
      const main = await source.store.db
        .selectFrom('agents')
        .innerJoin('branches', 'branches.id', 'agents.main_branch_id')
        .select(['main_branch_id', 'head_version_id'])
        .where('agents.id', '=', created.agent_id)
        .executeTakeFirstOrThrow();
      const branched = okJson<{ created_branch_id: string }>(
        await injectAs(source, 'POST', `/v1/convai/agents/${created.agent_id}/branches`, source.keys.admin, {
          parent_version_id: main.head_version_id,
          name: 'Second',
          description: '',
        }),
      );
      agents.push({ id: created.agent_id, branches: [main.main_branch_id, branched.created_branch_id] });
    }
    const writer = startWriter(source, agents);
    const dir = mkdtempSync(path.join(tmpdir(), 'branchwise-live-'));
    const ITERATIONS = 6;
    try {
      for (let iteration = 0; iteration < ITERATIONS; iteration++) {
        const how = iteration % 2 === 0 ? 'export' : 'copy';
        const target = await createTestDatabase();
        try {
          if (iteration < 2) {
            // Through the CLI, a process of its own as a user runs it, while this one writes.
            if (how === 'export') {
              const file = path.join(dir, 'live.jsonl');
              await cli(envOf(source.database), 'export', '--out', file);
              expect((await cli(envOf(target), 'import', file)).stderr).toContain('imported and verified');
            } else {
              const to = target.options.databaseUrl ?? `sqlite:${target.options.dataDir}`;
              expect((await cli(envOf(source.database), 'copy', '--to', to)).stderr).toContain('copied and verified');
            }
          } else {
            // In process, waiting before each table is read for the writer to write that table
            // (and the audit log): a table read outside the snapshot would hold a write that
            // the others miss.
            const store = await openStore(target.options);
            try {
              if (how === 'export') {
                const lines: string[] = [];
                let table: string | undefined;
                await exportStore(source.store, async (line) => {
                  const record = JSON.parse(line) as DumpRecord;
                  if (record.table !== table && record.table) await writer.next(record.table as (typeof TABLES)[number]['name']);
                  table = record.table;
                  lines.push(line);
                });
                await importStore(store, async function* () {
                  yield* lines;
                });
              } else {
                await copyStore(source.store, store, (table) => writer.next(table));
              }
            } finally {
              await store.close();
            }
          }

          const copy = await openStore(target.options);
          try {
            expect(writer.states.has(sha256(await snapshotDatabase(copy.db))), `${how} #${iteration} is no state the source has been in`).toBe(true);
            await expectHeadsAtTheirLastVersions(copy.db);
            const app = await buildApp({ config: { bodyLimitBytes: 1 << 21, logLevel: 'silent' }, store: copy, logger: false });
            try {
              for (const branch of await copy.db.selectFrom('branches').select(['id', 'agent_id']).where('is_archived', '=', 0).execute()) {
                const response = await app.server.inject({
                  method: 'PATCH',
                  url: `/v1/convai/agents/${branch.agent_id}?branch_id=${branch.id}`,
                  headers: { 'xi-api-key': source.keys.admin, 'content-type': 'application/json' },
                  payload: JSON.stringify({ conversation_config: { agent: { first_message: `after the ${how}` } } }),
                });
                expect(response.statusCode, response.body.slice(0, 300)).toBe(200);
              }
              await expectHeadsAtTheirLastVersions(copy.db);
            } finally {
              await app.server.close();
            }
          } finally {
            await copy.close();
          }
        } finally {
          await target.drop();
        }
      }
    } finally {
      await writer.stop();
      await source.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
