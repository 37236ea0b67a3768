import net from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DEFAULT_HTTP_TIMEOUTS, loadConfig } from '../src/config.js';
import { listen, startTestApp, type TestApp } from './support/test-app.js';
import { patient } from './support/patience.js';

// A slow client cannot hold the server (issue 9, item 5): node:http's headers, request and
// keep-alive timeouts, set under Fastify's serverFactory, close such connections while other
// clients are answered. Short timeouts here; the defaults are in the README.

const TIMEOUTS = { headersMs: 300, requestMs: 700, keepAliveMs: 400, connectionMs: 5_000 };

let testApp: TestApp;
let port: number;
let agentId: string;

beforeAll(async () => {
  testApp = await startTestApp({ config: { httpTimeouts: TIMEOUTS } });
  port = Number(new URL(await listen(testApp)).port);
  const created = await testApp.app.server.inject({
    method: 'POST',
    url: '/v1/convai/agents/create',
    headers: { 'xi-api-key': testApp.keys.editor, 'content-type': 'application/json' },
    payload: JSON.stringify({ name: 'Patient', conversation_config: {} }),
  });
  agentId = (created.json() as { agent_id: string }).agent_id;
});
afterAll(() => testApp.close());

interface Ending {
  afterMs: number;
  received: string;
}

/**
 * A raw connection that runs `drive` (which may write slowly for as long as the socket lives) and
 * resolves when the server closes it. Gives up after 5 s: a server that never closes fails the test.
 */
function connection(drive: (socket: net.Socket) => void): Promise<Ending> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${patient(5_000)} ms; received ${JSON.stringify(received)}`));
    }, patient(5_000));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(giveUp);
      resolve({ afterMs: Date.now() - started, received });
    });
    socket.on('connect', () => drive(socket));
  });
}

/** Writes `text` a byte every 50 ms, then keeps writing it again, until the socket closes. */
function dribble(socket: net.Socket, text: string): void {
  let index = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || !socket.writable) return clearInterval(timer);
    socket.write(text[index % text.length]!);
    index++;
  }, 50);
  socket.on('close', () => clearInterval(timer));
}

/**
 * Normal requests, one after another, for as long as `until` is pending: every one must succeed.
 * `whileHeld` counts the answers that arrived before `until` settled.
 */
async function normalTrafficDuring(until: Promise<unknown>): Promise<{ statuses: number[]; whileHeld: number }> {
  let done = false;
  void until.finally(() => {
    done = true;
  });
  const statuses: number[] = [];
  let whileHeld = 0;
  while (!done) {
    const response = await fetch(`http://127.0.0.1:${port}/v1/convai/agents/${agentId}`, { headers: { 'xi-api-key': testApp.keys.viewer } });
    await response.arrayBuffer();
    statuses.push(response.status);
    if (!done) whileHeld++;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { statuses, whileHeld };
}

describe('slow clients', () => {
  it('cuts off a client that sends its headers a byte at a time (408 after HEADERS_TIMEOUT_MS) while others are answered', async () => {
    const slow = connection((socket) => dribble(socket, `GET /v1/convai/agents/${agentId} HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(1_000)}`));
    const [ending, { statuses, whileHeld }] = await Promise.all([slow, normalTrafficDuring(slow)]);
    expect(ending.received).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    expect(ending.afterMs).toBeGreaterThanOrEqual(TIMEOUTS.headersMs - 50);
    expect(ending.afterMs).toBeLessThan(TIMEOUTS.headersMs + patient(2_000));
    // Others were answered while it was held (how many fit in 300 ms depends on the machine's load).
    expect(whileHeld).toBeGreaterThan(0);
    expect(new Set(statuses)).toEqual(new Set([200]));
  });

  it('closes a connection that never sends anything', async () => {
    const ending = await connection(() => undefined);
    expect(ending.afterMs).toBeLessThan(TIMEOUTS.headersMs + patient(2_000));
  });

  it('cuts off a body sent a byte at a time (408 after REQUEST_TIMEOUT_MS), and nothing is written', async () => {
    const agentsBefore = await testApp.store.db.selectFrom('agents').select('id').execute();
    const body = JSON.stringify({ name: 'Never', conversation_config: {} });
    const slow = connection((socket) => {
      socket.write(
        'POST /v1/convai/agents/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          `xi-api-key: ${testApp.keys.editor}\r\nContent-Length: ${body.length + 10_000}\r\n\r\n`,
      );
      dribble(socket, body);
    });
    const [ending, { statuses, whileHeld }] = await Promise.all([slow, normalTrafficDuring(slow)]);
    expect(ending.received).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    expect(whileHeld).toBeGreaterThan(0);
    expect(ending.afterMs).toBeGreaterThanOrEqual(TIMEOUTS.requestMs - 50);
    expect(ending.afterMs).toBeLessThan(TIMEOUTS.requestMs + patient(2_000));
    expect(new Set(statuses)).toEqual(new Set([200]));
    expect(await testApp.store.db.selectFrom('agents').select('id').execute()).toEqual(agentsBefore);
  });

  it('closes an idle keep-alive connection after KEEP_ALIVE_TIMEOUT_MS (node:http adds up to a second of grace)', async () => {
    const ending = await connection((socket) => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n'));
    expect(ending.received).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(ending.received).toMatch(/Keep-Alive: timeout=/i);
    expect(ending.afterMs).toBeGreaterThanOrEqual(TIMEOUTS.keepAliveMs - 50);
    expect(ending.afterMs).toBeLessThan(TIMEOUTS.keepAliveMs + 2_500);
  });
});

describe('timeout configuration', () => {
  it('has documented defaults, reads the environment and refuses a headers timeout longer than the request timeout', () => {
    expect(loadConfig({}).httpTimeouts).toEqual(DEFAULT_HTTP_TIMEOUTS);
    expect(DEFAULT_HTTP_TIMEOUTS).toEqual({ headersMs: 10_000, requestMs: 30_000, keepAliveMs: 72_000, connectionMs: 120_000 });
    expect(
      loadConfig({ HEADERS_TIMEOUT_MS: '5000', REQUEST_TIMEOUT_MS: '20000', KEEP_ALIVE_TIMEOUT_MS: '65000', CONNECTION_TIMEOUT_MS: '0' }).httpTimeouts,
    ).toEqual({ headersMs: 5_000, requestMs: 20_000, keepAliveMs: 65_000, connectionMs: 0 });
    expect(() => loadConfig({ HEADERS_TIMEOUT_MS: '40000' })).toThrow(/HEADERS_TIMEOUT_MS/);
    expect(() => loadConfig({ KEEP_ALIVE_TIMEOUT_MS: 'soon' })).toThrow(/KEEP_ALIVE_TIMEOUT_MS/);
  });

  it('sets them on the server the app listens with', () => {
    const server = testApp.app.server.server;
    expect(server.headersTimeout).toBe(TIMEOUTS.headersMs);
    expect(server.requestTimeout).toBe(TIMEOUTS.requestMs);
    expect(server.keepAliveTimeout).toBe(TIMEOUTS.keepAliveMs);
    expect(server.timeout).toBe(TIMEOUTS.connectionMs);
  });
});
