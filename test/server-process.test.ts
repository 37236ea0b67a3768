import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openStore } from '../src/db/connect.js';
import { TABLES } from '../src/db/tables.js';
import {
  runCli,
  runCliIntoClosedPipe,
  runCliOutcome,
  SERVER_NODE_FLAGS,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from './support/server-process.js';
import { createTestDatabase, type TestDatabase } from './support/test-app.js';
import { patient } from './support/patience.js';

// The server and the key commands as a user runs them: `npm start` (bin/branchwise.mjs) and
// `npx branchwise …`, as real processes on a fresh store of the current dialect.

let database: TestDatabase;
let server: ServerProcess;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  database = await createTestDatabase();
  env = { DATA_DIR: database.options.dataDir, DATABASE_URL: database.options.databaseUrl ?? '', BRANCHWISE_BOOTSTRAP_API_KEY: '' };
  server = await startServerProcess(env);
});

afterAll(async () => {
  await server.stop('SIGKILL');
  await database.drop();
});

const cli = (...args: string[]) => runCli(env, ...args);

// Many of these tests run the CLI several times, a process each (about a second each, more on a
// loaded machine): they get more than the default 30 s.
describe('a server started as `npm start` does', { timeout: patient(120_000) }, () => {
  it('bootstrap an admin key, shown once and written to DATA_DIR/admin-api-key with mode 0600', async () => {
    const keyFile = path.join(database.options.dataDir, 'admin-api-key');
    const key = readFileSync(keyFile, 'utf8').trim();
    expect(key).toMatch(/^sk_[0-9a-f]{48}$/);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(server.output().split(key).length - 1).toBe(1);

    const client = new ElevenLabsClient({ apiKey: key, baseUrl: server.url, maxRetries: 0 });
    const { agentId } = await client.conversationalAi.agents.create({ name: 'From a process', conversationConfig: {} });
    expect((await client.conversationalAi.agents.get(agentId)).name).toBe('From a process');
  });

  it('run with the same node flags from `npm start` and from `npx branchwise` (the bin\'s shebang)', () => {
    expect(SERVER_NODE_FLAGS).toContain('--min-semi-space-size=16');
    expect(SERVER_NODE_FLAGS).toContain('--no-allocation-site-pretenuring');
    const shebang = readFileSync(path.resolve('bin/branchwise.mjs'), 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${SERVER_NODE_FLAGS.join(' ')}`);
  });

  it('answer health, readiness and the OpenAPI document without a key', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${server.url}/readyz`)).json()).toEqual({ status: 'ok' });
    const openapi = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining([
        '/v1/convai/agents/create',
        '/v1/convai/agents/{agent_id}',
        '/v1/convai/agents/{agent_id}/branches/{branch_id}',
        '/v1/convai/agents/{agent_id}/versions/{version_id}',
      ]),
    );
    expect(Object.keys(openapi.paths['/v1/convai/agents/{agent_id}']).sort()).toEqual(['delete', 'get', 'patch']);
    const docs = await fetch(`${server.url}/docs`, { redirect: 'follow' });
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger');
  });

  it('manage keys from the command line: create prints the key once, list never shows it, revoke locks it out', async () => {
    const created = await cli('keys', 'create', '--user', 'alice', '--role', 'editor');
    const key = /API key \(shown once\): (sk_[0-9a-f]+)/.exec(created.stdout)?.[1];
    expect(key).toBeDefined();
    const client = new ElevenLabsClient({ apiKey: key!, baseUrl: server.url, maxRetries: 0 });
    const mine = await client.conversationalAi.agents.create({ name: 'alice agent', conversationConfig: {} });
    const agent = await client.conversationalAi.agents.get(mine.agentId);
    expect(agent.accessInfo).toMatchObject({ creatorName: 'alice', role: 'editor', isCreator: true });

    const listed = await cli('keys', 'list');
    expect(listed.stdout).toContain('alice');
    expect(listed.stdout).not.toContain(key!);
    const keyId = listed.stdout.split('\n').find((line) => line.includes('alice'))!.split('\t')[0];

    await cli('keys', 'revoke', keyId);
    // Another process revoked it: the server's key cache must reflect it within 1 s (decisions.md D16).
    const took = await waitFor(
      async () => (await fetch(`${server.url}/v1/convai/agents`, { headers: { 'xi-api-key': key! } })).status === 401,
      'the revoked key to be refused',
      patient(1_000),
    );
    expect(took).toBeLessThan(patient(1_000));
    expect((await cli('keys', 'list')).stdout).toMatch(/alice\teditor\trevoked/);

    const workspace = await cli('workspaces', 'create', 'acme');
    const acmeKey = /API key \(shown once\): (sk_[0-9a-f]+)/.exec(workspace.stdout)?.[1];
    const acme = new ElevenLabsClient({ apiKey: acmeKey!, baseUrl: server.url, maxRetries: 0 });
    expect((await acme.conversationalAi.agents.list()).agents).toEqual([]);
  });

  it('never change an existing user\'s role as a side effect of a new key: refused unless --change-role, and said when it happens', async () => {
    const first = await cli('keys', 'create', '--user', 'carol', '--role', 'editor');
    expect(first.stdout).toMatch(/^Created user carol \(editor\) and key key_\w+ in "default"\./);
    const carolsRoles = async () =>
      (await cli('keys', 'list')).stdout.split('\n').filter((line) => line.split('\t')[2] === 'carol').map((line) => line.split('\t')[3]);

    const refused = await runCliOutcome(env, 'keys', 'create', '--user', 'carol', '--role', 'admin');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('User "carol" in "default" already exists with role editor');
    expect(refused.stderr).toContain('--change-role');
    expect(refused.stdout).not.toContain('sk_');
    expect(await carolsRoles()).toEqual(['editor']);

    // No --role: another key with the user's own role.
    const another = await cli('keys', 'create', '--user', 'carol');
    expect(another.stdout).toMatch(/^Created key key_\w+ for the existing user carol \(editor\) in "default"; carol now has 2 active keys\./);
    expect(await carolsRoles()).toEqual(['editor', 'editor']);

    const changed = await cli('keys', 'create', '--user', 'carol', '--role', 'admin', '--change-role');
    expect(changed.stdout).toMatch(/^Changed the role of carol in "default" from editor to admin: all 3 active keys of carol \(this new one included\) are now admin\./m);
    expect(await carolsRoles()).toEqual(['admin', 'admin', 'admin']);
  });

  it('revoke a key by its id in whichever workspace it is, and say where; refuse an unknown id or a wrong --workspace', async () => {
    const workspace = await cli('workspaces', 'create', 'elsewhere');
    const key = /API key \(shown once\): (sk_[0-9a-f]+)/.exec(workspace.stdout)![1];
    const created = await cli('keys', 'create', '--user', 'dave', '--role', 'viewer', '--workspace', 'elsewhere');
    const keyId = /key (key_\w+)/.exec(created.stdout)![1];

    const wrongWorkspace = await runCliOutcome(env, 'keys', 'revoke', keyId, '--workspace', 'default');
    expect(wrongWorkspace).toMatchObject({ code: 1, stderr: expect.stringContaining(`No key ${keyId} in "default"`) });
    const unknown = await runCliOutcome(env, 'keys', 'revoke', 'key_unknown');
    expect(unknown).toMatchObject({ code: 1, stderr: expect.stringContaining('No key key_unknown in any workspace') });

    expect((await cli('keys', 'revoke', keyId)).stdout).toBe(`Revoked ${keyId} (dave in "elsewhere").\n`);
    expect((await cli('keys', 'list', '--workspace', 'elsewhere')).stdout).toMatch(/dave\tviewer\trevoked/);
    expect((await cli('keys', 'revoke', keyId)).stdout).toMatch(new RegExp(`^Key ${keyId} \\(dave in "elsewhere"\\) was already revoked at `));
    // The workspace's admin key is untouched.
    const client = new ElevenLabsClient({ apiKey: key, baseUrl: server.url, maxRetries: 0 });
    expect((await client.conversationalAi.agents.list()).agents).toEqual([]);
  });

  it('end quietly when the reader of the output goes away (`keys list | head`)', async () => {
    for (const args of [['keys', 'list'], ['workspaces', 'list'], ['audit'], ['export']]) {
      expect(await runCliIntoClosedPipe(env, ...args), args.join(' ')).toEqual({ code: 0, stderr: '' });
    }
  });

  it('warn at start when BRANCHWISE_BOOTSTRAP_API_KEY is set but keys nothing (the store has data already), never showing it', async () => {
    const unused = 'sk_set_after_the_first_start_0123456789';
    const second = await startServerProcess({ ...env, BRANCHWISE_BOOTSTRAP_API_KEY: unused });
    try {
      expect(second.output()).toContain('BRANCHWISE_BOOTSTRAP_API_KEY is set but was not used');
      expect(second.output()).not.toContain(unused);
      expect((await fetch(`${second.url}/v1/convai/agents`, { headers: { 'xi-api-key': unused } })).status).toBe(401);
    } finally {
      await second.stop('SIGKILL');
    }
    // A key of this store (the same variable on every restart after the first) is no reason to warn.
    const adminKey = readFileSync(path.join(database.options.dataDir, 'admin-api-key'), 'utf8').trim();
    const third = await startServerProcess({ ...env, BRANCHWISE_BOOTSTRAP_API_KEY: adminKey });
    try {
      expect(third.output()).not.toContain('BRANCHWISE_BOOTSTRAP_API_KEY');
    } finally {
      await third.stop('SIGKILL');
    }
  });

  it('keep only hashes of keys in the database, and no key in the logs', async () => {
    const key = readFileSync(path.join(database.options.dataDir, 'admin-api-key'), 'utf8').trim();
    const store = await openStore(database.options);
    try {
      let everything = '';
      for (const table of TABLES) everything += JSON.stringify(await store.db.selectFrom(table.name).selectAll().execute());
      expect(everything).toContain('sk_'); // the key prefix kept for `keys list`
      expect(everything).not.toContain(key);
    } finally {
      await store.close();
    }
    // The key was printed once at bootstrap (checked above) and never again.
    expect(server.output().split(key).length - 1).toBe(1);
    expect(server.output()).not.toMatch(/xi-api-key/i);
  });

  it('drain and exit cleanly on SIGTERM', async () => {
    expect(await server.stop('SIGTERM')).toBe(0);
  });
});
