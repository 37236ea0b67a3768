import { connect } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { detailOf, failure } from './support/sdk-errors.js';
import { type ServerProcess, startServerProcess } from './support/server-process.js';
import { injectAs, okJson, sdk, startTestApp, type TestApp } from './support/test-app.js';

// A body over the limit gets its 413, in the documented shape, in every client: the server reads
// and discards what the client still sends (up to a bound, as nginx's lingering close) instead of
// closing at once, which made Node's fetch fail with EPIPE before it read the answer. The server
// runs in its own process, as in production: in the test's process, client and server would take
// turns on one event loop and hide the race.

const LIMIT = 2 * 1024 * 1024;
let testApp: TestApp;
let server: ServerProcess;
let base: string;
let agentId: string;

beforeAll(async () => {
  testApp = await startTestApp({ config: { bodyLimitBytes: LIMIT } });
  agentId = okJson<{ agent_id: string }>(
    await injectAs(testApp, 'POST', '/v1/convai/agents/create', testApp.keys.admin, { conversation_config: {}, name: 'Big bodies' }),
  ).agent_id;
  await testApp.app.server.close();
  await testApp.store.close();
  server = await startServerProcess({
    DATA_DIR: testApp.database.options.dataDir,
    DATABASE_URL: testApp.database.options.databaseUrl ?? '',
    BODY_LIMIT_BYTES: String(LIMIT),
  });
  base = server.url;
});
afterAll(async () => {
  await server?.stop();
  await testApp.database.drop();
});

/** A PATCH body of about `bytes` bytes (a long first message). */
function bodyOf(bytes: number): string {
  const wrapper = JSON.stringify({ conversation_config: { agent: { first_message: '' } } });
  return JSON.stringify({ conversation_config: { agent: { first_message: 'x'.repeat(bytes - wrapper.length) } } });
}

const SIZES: [string, number][] = [
  ['just over the limit', LIMIT + 1],
  ['3× the limit', 3 * LIMIT],
];

describe('a body over the limit', () => {
  it.each(SIZES)('%s, through fetch: 10 of 10 tries see the 413 in the documented shape', async (_, size) => {
    const body = bodyOf(size);
    expect(Buffer.byteLength(body)).toBe(size);
    const seen: (number | string)[] = [];
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        const response = await fetch(`${base}/v1/convai/agents/${agentId}`, {
          method: 'PATCH',
          headers: { 'xi-api-key': testApp.keys.admin, 'content-type': 'application/json' },
          body,
        });
        const answer = (await response.json()) as { detail: Record<string, unknown> };
        expect(answer.detail).toMatchObject({ status: 'payload_too_large', code: 'payload_too_large', type: 'invalid_request' });
        seen.push(response.status);
      } catch (error) {
        seen.push(String((error as { cause?: unknown }).cause ?? error));
      }
    }
    expect(seen).toEqual(Array(10).fill(413));
  });

  it.each(SIZES)('%s, through the official SDK: 10 of 10 tries fail with the 413', async (_, size) => {
    const client = sdk(base, testApp.keys.admin);
    const seen: (number | string | undefined)[] = [];
    for (let attempt = 0; attempt < 10; attempt++) {
      const error = await failure(client.conversationalAi.agents.update(agentId, { conversationConfig: { agent: { firstMessage: 'x'.repeat(size) } } }));
      seen.push(error.statusCode ?? String(error.message));
      if (error.statusCode === 413) expect(detailOf(error)).toMatchObject({ code: 'payload_too_large', type: 'invalid_request' });
    }
    expect(seen).toEqual(Array(10).fill(413));
  });

  it('a connection that keeps sending after the 413 is answered and then cut off, long before it has sent everything', async () => {
    const result = await sendEndlessBody(0);
    expect(result.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(result.answer).toContain('"code":"payload_too_large"');
    // Cut off within a few times the limit (plus what the socket buffers held), far from 1 GiB.
    expect(result.sent).toBeLessThan(64 * LIMIT);
  });

  it('a client busy writing that reads its answer only later still gets the 413, not a reset that discards it', async () => {
    // Closing a connection with bytes unread makes the kernel reset it, and a reset makes the
    // client's kernel drop what the client has not read yet: here, the 413. A client whose event
    // loop is busy (or, as here, that reads late) must still find it.
    const result = await sendEndlessBody(300);
    expect(result.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(result.answer).toContain('"code":"payload_too_large"');
    expect(result.sent).toBeLessThan(64 * LIMIT);
  });
});

/**
 * Declares a 1 GiB PATCH body and sends it as fast as the socket takes it, reading what the server
 * answers from `readAfterMs` on, until the connection closes: the answer read and how much was sent.
 */
function sendEndlessBody(readAfterMs: number): Promise<{ answer: string; sent: number }> {
  const declared = 1024 * 1024 * 1024;
  const url = new URL(base);
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname);
    let answer = '';
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const pump = () => {
      while (!socket.destroyed && sent < declared) {
        sent += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
    };
    socket.on('connect', () => {
      if (readAfterMs > 0) {
        socket.pause();
        setTimeout(() => socket.resume(), readAfterMs);
      }
      socket.write(
        `PATCH /v1/convai/agents/${agentId} HTTP/1.1\r\nHost: ${url.host}\r\nxi-api-key: ${testApp.keys.admin}\r\n` +
          `content-type: application/json\r\ncontent-length: ${declared}\r\n\r\n`,
      );
      pump();
    });
    socket.on('data', (data) => (answer += data.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => resolve({ answer, sent }));
  });
}
