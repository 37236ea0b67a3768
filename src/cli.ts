import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { loadConfig } from './config.js';
import { isPostgresUrl, openStore, type StoreOptions } from './db/connect.js';
import { auditStore } from './features/audit/audit.store.js';
import { copyStore, exportStore, importStore, type TableDigest } from './features/portability/portability.js';
import { type Role, ROLES } from './domain/caller.js';
import {
  type CreatedKey,
  DEFAULT_ROLE,
  DEFAULT_WORKSPACE,
  type WorkspacesService,
  workspacesService,
} from './features/workspaces/workspaces.service.js';
import { serve } from './main.js';

const USAGE = `branchwise: a self-hostable server for the ElevenLabs Agents API

Usage:
  branchwise [serve]                                  run the server (HOST, PORT, DATA_DIR, DATABASE_URL)
  branchwise keys create --user NAME [--role ROLE] [--change-role] [--workspace NAME]
  branchwise keys list [--workspace NAME]
  branchwise keys revoke KEY_ID                      whichever workspace the key is in
  branchwise workspaces create NAME
  branchwise workspaces list
  branchwise audit [--agent ID] [--limit N] [--workspace NAME]   who changed what, newest first
  branchwise copy --to postgres://…|sqlite:DIR     copy this store into an empty database, then verify it
  branchwise export [--out FILE]                      write a portable dump (JSON lines; stdout by default)
  branchwise import FILE                              read a dump into this (empty) store, then verify it

The store is DATABASE_URL when set, else SQLite in DATA_DIR (default ./data).

Roles: ${ROLES.join(', ')}. A new user gets --role (default ${DEFAULT_ROLE}); an existing user keeps
theirs: a user's keys share one role, so changing it (for all their keys) needs --change-role.
The workspace defaults to "${DEFAULT_WORKSPACE}". A new key is printed once; only its hash is stored.
Run from the project folder: node bin/branchwise.mjs …, npm exec --no -- branchwise … or npx branchwise ….
`;

/**
 * `branchwise keys list | head`: the reader is gone, which is no error of ours. Node would
 * otherwise report the failed write (EPIPE) as an uncaught exception with a stack trace.
 */
function endQuietlyOnClosedPipe(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(0);
  });
}

export async function runCli(argv: string[]): Promise<number> {
  const [command = 'serve', sub, ...rest] = argv;
  if (command !== 'serve') endQuietlyOnClosedPipe();
  if (command === 'serve') {
    await serve();
    return 0;
  }
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command === 'copy' || command === 'export' || command === 'import') {
    return runPortability(command, [sub, ...rest].filter((arg): arg is string => arg !== undefined));
  }
  if (command === 'audit') {
    return runAudit([sub, ...rest].filter((arg): arg is string => arg !== undefined));
  }
  if (command !== 'keys' && command !== 'workspaces') {
    process.stderr.write(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      user: { type: 'string' },
      role: { type: 'string' },
      'change-role': { type: 'boolean', default: false },
      workspace: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const workspaceName = values.workspace ?? DEFAULT_WORKSPACE;
  const config = loadConfig();
  const store = await openStore(config);
  const workspaces = workspacesService(store);
  try {
    if (command === 'workspaces' && sub === 'create' && positionals[0]) {
      const created = await workspaces.createWorkspace(positionals[0]);
      process.stdout.write(`Created workspace "${created.workspace}" with user "admin" (role admin).\nAPI key (shown once): ${created.key}\n`);
      return 0;
    }
    if (command === 'workspaces' && sub === 'list') {
      for (const workspace of await workspaces.listWorkspaces()) process.stdout.write(`${workspace.name}\t${workspace.id}\n`);
      return 0;
    }
    if (command === 'keys' && sub === 'create' && values.user) {
      if (values.role !== undefined && !(ROLES as string[]).includes(values.role)) {
        process.stderr.write(`--role must be one of ${ROLES.join(', ')}\n`);
        return 2;
      }
      if (values['change-role'] && values.role === undefined) {
        process.stderr.write('--change-role needs --role: the role to give the user and all their keys\n');
        return 2;
      }
      const created = await workspaces.createKey(workspaceName, values.user, values.role as Role | undefined, { changeRole: values['change-role'] });
      if (values.json) process.stdout.write(`${JSON.stringify(created)}\n`);
      else process.stdout.write(`${describeCreatedKey(created)}API key (shown once): ${created.key}\n`);
      return 0;
    }
    if (command === 'keys' && sub === 'list') {
      const keys = await workspaces.listKeys(workspaceName);
      for (const key of keys) {
        const state = key.revoked_at_ms ? `revoked ${new Date(key.revoked_at_ms).toISOString()}` : 'active';
        process.stdout.write(`${key.id}\t${key.key_prefix}…\t${key.user_name}\t${key.role}\t${state}\t${key.user_id}\n`);
      }
      return 0;
    }
    if (command === 'keys' && sub === 'revoke' && positionals[0]) {
      return await revokeKey(workspaces, positionals[0], values.workspace);
    }
    process.stderr.write(USAGE);
    return 2;
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

/** What `keys create` did, in words: a new user, another key of theirs, or a role change for all their keys. */
function describeCreatedKey(created: CreatedKey): string {
  const where = `in "${created.workspace}"`;
  if (created.previousRole === null) return `Created user ${created.user} (${created.role}) and key ${created.keyId} ${where}.\n`;
  const keys = `${created.activeKeys} active key${created.activeKeys === 1 ? '' : 's'}`;
  if (created.previousRole === created.role) {
    return `Created key ${created.keyId} for the existing user ${created.user} (${created.role}) ${where}; ${created.user} now has ${keys}.\n`;
  }
  return (
    `Changed the role of ${created.user} ${where} from ${created.previousRole} to ${created.role}: all ${keys} of ${created.user} ` +
    `(this new one included) are now ${created.role}.\nCreated key ${created.keyId} for ${created.user}.\n`
  );
}

/** A key id is unique across workspaces: find it wherever it is; `--workspace`, when given, must match. */
async function revokeKey(workspaces: WorkspacesService, keyId: string, workspace: string | undefined): Promise<number> {
  const found = await workspaces.locateKey(keyId);
  if (!found || (workspace !== undefined && found.workspace !== workspace)) {
    process.stderr.write(`No key ${keyId} in ${workspace === undefined ? 'any workspace' : `"${workspace}"`}; \`branchwise keys list --workspace NAME\` lists a workspace's keys.\n`);
    return 1;
  }
  const owner = `${found.userName} in "${found.workspace}"`;
  if (found.revokedAtMs !== null) {
    process.stdout.write(`Key ${keyId} (${owner}) was already revoked at ${new Date(found.revokedAtMs).toISOString()}; nothing changed.\n`);
    return 0;
  }
  await workspaces.revokeKey(found.workspace, keyId);
  process.stdout.write(`Revoked ${keyId} (${owner}).\n`);
  return 0;
}

/** The workspace's audit events as lines: time, action, actor, agent, resource, details. */
async function runAudit(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { agent: { type: 'string' }, limit: { type: 'string', default: '50' }, workspace: { type: 'string', default: DEFAULT_WORKSPACE } },
  });
  const limit = Number(values.limit);
  if (!Number.isSafeInteger(limit) || limit < 1) {
    process.stderr.write('--limit must be a positive integer\n');
    return 2;
  }
  const store = await openStore(loadConfig());
  try {
    const workspace = await store.db.selectFrom('workspaces').select('id').where('name', '=', values.workspace as string).executeTakeFirst();
    if (!workspace) throw new Error(`workspace ${JSON.stringify(values.workspace)} does not exist`);
    const events = await auditStore(store.db).list({ workspaceId: workspace.id, agentId: values.agent, limit });
    const userIds = [...new Set(events.flatMap((event) => (event.actor_user_id ? [event.actor_user_id] : [])))];
    const users = userIds.length ? await store.db.selectFrom('users').select(['id', 'name']).where('id', 'in', userIds).execute() : [];
    const names = new Map(users.map((user) => [user.id, user.name]));
    for (const event of events) {
      const actor = event.actor_user_id ? `${names.get(event.actor_user_id) ?? '?'} (${event.actor_user_id})` : event.actor_kind;
      const line = [new Date(event.at_ms).toISOString(), event.action, actor, event.agent_id ?? '-', event.resource_id ?? '-', event.details];
      process.stdout.write(`${line.join('\t')}\n`);
    }
    return 0;
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

async function runPortability(command: 'copy' | 'export' | 'import', args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { to: { type: 'string' }, out: { type: 'string' } },
  });
  const config = loadConfig();
  const source = await openStore(config);
  try {
    if (command === 'copy') {
      if (!values.to) {
        process.stderr.write('copy needs --to postgres://… or --to sqlite:DIR\n');
        return 2;
      }
      const target = await openStore(targetOptions(values.to));
      try {
        report('copied and verified', await copyStore(source, target, (table) => void process.stderr.write(`copying ${table}…\n`)));
      } finally {
        await target.close();
      }
      return 0;
    }
    if (command === 'export') {
      const out = values.out ? createWriteStream(values.out) : process.stdout;
      const digests = await exportStore(source, async (line) => {
        if (!out.write(`${line}\n`)) await once(out, 'drain');
      });
      if (values.out) {
        out.end();
        await once(out, 'finish');
        report(`exported to ${values.out}`, digests);
      }
      return 0;
    }
    const file = positionals[0];
    if (!file) {
      process.stderr.write('import needs a dump file\n');
      return 2;
    }
    const openLines = () => createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    report('imported and verified', await importStore(source, openLines));
    return 0;
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    await source.close();
  }
}

function targetOptions(target: string): StoreOptions {
  if (isPostgresUrl(target)) return { databaseUrl: target, dataDir: '' };
  if (target.startsWith('sqlite:')) return { dataDir: target.slice('sqlite:'.length) };
  throw new Error(`--to must be a postgres:// URL or sqlite:DIR, not ${JSON.stringify(target)}`);
}

function report(what: string, digests: TableDigest[]): void {
  process.stderr.write(`${what}:\n`);
  for (const digest of digests) process.stderr.write(`  ${digest.table.padEnd(12)} ${String(digest.rows).padStart(8)} rows  sha256 ${digest.sha256.slice(0, 16)}\n`);
}
