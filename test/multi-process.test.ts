import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { migrations as allMigrations, openStore } from '../src/db/connect.js';
import { workspacesService } from '../src/features/workspaces/workspaces.service.js';
import { runCli, type ServerProcess, startServerProcess, waitFor } from './support/server-process.js';
import { createTestDatabase, dialect, type TestDatabase } from './support/test-app.js';
import { patient } from './support/patience.js';

// Scale-out (architecture.md "Two dialects", decisions.md D16): several stateless server processes on one PostgreSQL database.
// SQLite is the single-machine store, so these run in the postgres project only.

const ADMIN_KEY = 'sk_multi_process_admin_key';
let database: TestDatabase;
let servers: ServerProcess[] = [];

async function call(server: ServerProcess, method: string, path: string, body?: unknown, key = ADMIN_KEY) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { 'xi-api-key': key, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

describe.skipIf(dialect !== 'postgres')('several server processes on one PostgreSQL database (postgres project only)', () => {
  beforeAll(async () => {
    database = await createTestDatabase();
    // An empty database: three processes starting together must migrate and bootstrap it once.
    const empty = new pg.Client({ connectionString: database.options.databaseUrl });
    await empty.connect();
    await empty.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
    await empty.end();
    const env = { DATABASE_URL: database.options.databaseUrl, DATA_DIR: database.options.dataDir, BRANCHWISE_BOOTSTRAP_API_KEY: ADMIN_KEY };
    servers = await Promise.all([0, 1, 2].map(() => startServerProcess(env)));
  });

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop('SIGKILL')));
    await database?.drop();
  });

  it('migrated and bootstrapped the empty database exactly once', async () => {
    const store = await openStore(database.options);
    try {
      const applied = (await store.db.selectFrom('kysely_migration' as never).selectAll().execute()) as { name: string }[];
      expect(applied.map((migration) => migration.name).sort()).toEqual(Object.keys(allMigrations).sort());
      expect(await store.db.selectFrom('workspaces').selectAll().execute()).toHaveLength(1);
      expect(await store.db.selectFrom('api_keys').selectAll().execute()).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it('every read through any process sees every write acknowledged before it', async () => {
    const created = await call(servers[0], 'POST', '/v1/convai/agents/create', { conversation_config: {}, name: 'Shared' });
    const agentId = created.body.agent_id as string;
    for (let i = 0; i < 45; i++) {
      const writer = servers[i % 3];
      const commit = await call(writer, 'PATCH', `/v1/convai/agents/${agentId}`, {
        conversation_config: { agent: { first_message: `message ${i}` } },
      });
      expect(commit.status).toBe(200);
      for (const reader of servers.filter((server) => server !== writer)) {
        const read = await call(reader, 'GET', `/v1/convai/agents/${agentId}`);
        expect(read.body.version_id).toBe(commit.body.version_id);
        expect(read.body.conversation_config.agent.first_message).toBe(`message ${i}`);
        const branch = await call(reader, 'GET', `/v1/convai/agents/${agentId}/branches/${read.body.branch_id}`);
        expect(branch.body.most_recent_versions[0].seq_no_in_branch).toBe(i + 2);
      }
    }
  });

  it('serializes commits racing through different processes: seq numbers stay gapless, nothing is lost', async () => {
    const created = await call(servers[1], 'POST', '/v1/convai/agents/create', { conversation_config: {}, name: 'Raced' });
    const agentId = created.body.agent_id as string;
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        call(servers[i % 3], 'PATCH', `/v1/convai/agents/${agentId}`, {
          conversation_config: { agent: { dynamic_variables: { dynamic_variable_placeholders: { [`k${i}`]: i } } } },
        }),
      ),
    );
    expect(results.every((result) => result.status === 200)).toBe(true);
    const store = await openStore(database.options);
    try {
      const versions = await store.db
        .selectFrom('versions')
        .select(['id', 'seq_no_in_branch', 'in_branch_parent_id'])
        .where('agent_id', '=', agentId)
        .orderBy('seq_no_in_branch')
        .execute();
      expect(versions.map((version) => version.seq_no_in_branch)).toEqual(Array.from({ length: 61 }, (_, i) => i + 1));
      for (let i = 1; i < versions.length; i++) expect(versions[i].in_branch_parent_id).toBe(versions[i - 1].id);
      const branch = await store.db.selectFrom('branches').selectAll().where('agent_id', '=', agentId).executeTakeFirstOrThrow();
      expect(branch.head_version_id).toBe(versions.at(-1)!.id);
    } finally {
      await store.close();
    }
    const head = await call(servers[2], 'GET', `/v1/convai/agents/${agentId}`);
    expect(Object.keys(head.body.conversation_config.agent.dynamic_variables.dynamic_variable_placeholders)).toHaveLength(60);
  });

  it('a process that loses its listening connection still refuses a revoked key within 1 s', async () => {
    const env = { DATABASE_URL: database.options.databaseUrl, DATA_DIR: database.options.dataDir };
    const created = await runCli(env, 'keys', 'create', '--user', 'temp', '--role', 'viewer', '--json');
    const { key, keyId } = JSON.parse(created.stdout) as { key: string; keyId: string };
    // Warm every process's key cache.
    for (const server of servers) expect((await call(server, 'GET', '/v1/convai/agents', undefined, key)).status).toBe(200);

    const admin = new pg.Client({ connectionString: database.options.databaseUrl });
    await admin.connect();
    try {
      const killed = await admin.query(
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'branchwise-listener' and datname = current_database()",
      );
      expect(killed.rowCount).toBe(3);
      await runCli(env, 'keys', 'revoke', keyId);
      for (const server of servers) {
        const took = await waitFor(async () => (await call(server, 'GET', '/v1/convai/agents', undefined, key)).status === 401, 'refusal', patient(1_000));
        expect(took).toBeLessThan(patient(1_000));
      }
      // Each process listens again, and notifications flow again.
      await waitFor(async () => {
        const listening = await admin.query(
          "select count(*)::int as n from pg_stat_activity where application_name = 'branchwise-listener' and datname = current_database()",
        );
        return listening.rows[0].n === 3;
      }, 'the listeners to reconnect', patient(5_000));
    } finally {
      await admin.end();
    }
    // A revocation from yet another process, right after every cache was warmed: refused well within
    // the cache's 1 s lifetime, so the notification (not the expiry) invalidated it.
    const store = await openStore(database.options);
    try {
      const keys = workspacesService(store);
      const second = await keys.createKey('default', 'temp2', 'viewer');
      for (const server of servers) expect((await call(server, 'GET', '/v1/convai/agents', undefined, second.key)).status).toBe(200);
      await keys.revokeKey('default', second.keyId);
      for (const server of servers) {
        const took = await waitFor(async () => (await call(server, 'GET', '/v1/convai/agents', undefined, second.key)).status === 401, 'refusal', patient(1_000));
        // On a quiet machine (patience 1) this tells the notification from the expiry; loaded, only the bound holds.
        expect(took).toBeLessThan(patient(300));
      }
    } finally {
      await store.close();
    }
  });
});
