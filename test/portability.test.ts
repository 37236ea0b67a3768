import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import type { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { describe, expect, it } from 'vitest';

import { buildApp } from '../src/app.js';
import { openStore, type Store } from '../src/db/connect.js';
import { TABLES } from '../src/db/tables.js';
import { digestStore } from '../src/features/portability/portability.js';
import { createTestDatabase, dialect, sdk, type TestDatabase } from './support/test-app.js';

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
      const { readFileSync, writeFileSync } = await import('node:fs');
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
