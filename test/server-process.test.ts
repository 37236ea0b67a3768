import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The server and the key commands as a user runs them: `npm start` (bin/branchwise.mjs) and
// `npx branchwise keys …`, as real processes on a fresh data directory.

const bin = path.resolve('bin/branchwise.mjs');
const run = promisify(execFile);
let dataDir: string;
let server: ChildProcess;
let output = '';
let baseUrl: string;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}; server output:\n${output}`);
}

function cli(...args: string[]) {
  return run(process.execPath, [bin, ...args], { env: { ...process.env, DATA_DIR: dataDir } });
}

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'branchwise-proc-'));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1' };
  delete env.BRANCHWISE_BOOTSTRAP_API_KEY;
  server = spawn(process.execPath, [bin], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout?.on('data', (chunk) => (output += chunk));
  server.stderr?.on('data', (chunk) => (output += chunk));
  await waitFor(async () => (await fetch(`${baseUrl}/healthz`).catch(() => undefined))?.ok === true, 'the server to listen');
});

afterAll(async () => {
  if (server.exitCode === null) server.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('a server started as `npm start` does', () => {
  it('bootstrap an admin key, shown once and written to DATA_DIR/admin-api-key with mode 0600', async () => {
    const keyFile = path.join(dataDir, 'admin-api-key');
    const key = readFileSync(keyFile, 'utf8').trim();
    expect(key).toMatch(/^sk_[0-9a-f]{48}$/);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(output.split(key).length - 1).toBe(1);

    const client = new ElevenLabsClient({ apiKey: key, baseUrl, maxRetries: 0 });
    const { agentId } = await client.conversationalAi.agents.create({ name: 'From a process', conversationConfig: {} });
    expect((await client.conversationalAi.agents.get(agentId)).name).toBe('From a process');
  });

  it('answer health, readiness and the OpenAPI document without a key', async () => {
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${baseUrl}/readyz`)).json()).toEqual({ status: 'ok' });
    const openapi = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining([
        '/v1/convai/agents/create',
        '/v1/convai/agents/{agent_id}',
        '/v1/convai/agents/{agent_id}/branches/{branch_id}',
        '/v1/convai/agents/{agent_id}/versions/{version_id}',
      ]),
    );
    expect(Object.keys(openapi.paths['/v1/convai/agents/{agent_id}']).sort()).toEqual(['delete', 'get', 'patch']);
    const docs = await fetch(`${baseUrl}/docs`, { redirect: 'follow' });
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger');
  });

  it('manage keys from the command line: create prints the key once, list never shows it, revoke locks it out', async () => {
    const created = await cli('keys', 'create', '--user', 'alice', '--role', 'editor');
    const key = /API key \(shown once\): (sk_[0-9a-f]+)/.exec(created.stdout)?.[1];
    expect(key).toBeDefined();
    const client = new ElevenLabsClient({ apiKey: key!, baseUrl, maxRetries: 0 });
    const mine = await client.conversationalAi.agents.create({ name: 'alice agent', conversationConfig: {} });
    const agent = await client.conversationalAi.agents.get(mine.agentId);
    expect(agent.accessInfo).toMatchObject({ creatorName: 'alice', role: 'editor', isCreator: true });

    const listed = await cli('keys', 'list');
    expect(listed.stdout).toContain('alice');
    expect(listed.stdout).not.toContain(key!);
    const keyId = listed.stdout.split('\n').find((line) => line.includes('alice'))!.split('\t')[0];

    await cli('keys', 'revoke', keyId);
    // Key lookups may be cached for up to 1 s (DESIGN §12.2).
    await waitFor(async () => {
      const response = await fetch(`${baseUrl}/v1/convai/agents`, { headers: { 'xi-api-key': key! } });
      return response.status === 401;
    }, 'the revoked key to be refused', 2_000);
    expect((await cli('keys', 'list')).stdout).toMatch(/alice\teditor\trevoked/);

    const workspace = await cli('workspaces', 'create', 'acme');
    const acmeKey = /API key \(shown once\): (sk_[0-9a-f]+)/.exec(workspace.stdout)?.[1];
    const acme = new ElevenLabsClient({ apiKey: acmeKey!, baseUrl, maxRetries: 0 });
    expect((await acme.conversationalAi.agents.list()).agents).toEqual([]);
  });

  it('keep only hashes of keys in the database', async () => {
    const keys = [readFileSync(path.join(dataDir, 'admin-api-key'), 'utf8').trim()];
    const sqlite = new Database(path.join(dataDir, 'branchwise.sqlite'), { readonly: true });
    try {
      const tables = sqlite.prepare("select name from sqlite_master where type = 'table'").all() as { name: string }[];
      const everything = tables.map(({ name }) => JSON.stringify(sqlite.prepare(`select * from "${name}"`).all())).join('\n');
      expect(everything).toContain('sk_'); // the key prefix kept for `keys list`
      for (const key of keys) expect(everything).not.toContain(key);
    } finally {
      sqlite.close();
    }
    expect(output).not.toMatch(/xi-api-key/i);
  });

  it('drain and exit cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
    server.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
