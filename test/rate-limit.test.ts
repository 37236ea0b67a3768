import type { IncomingMessage } from 'node:http';

import { ElevenLabsClient, ElevenLabsError } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadConfig } from '../src/config.js';
import { RateLimiter } from '../src/http/rate-limit.js';
import { createAgentId } from './support/fixtures.js';
import { detailOf, failure } from './support/sdk-errors.js';
import { injectAs, listen, sdk, startTestApp, type TestApp } from './support/test-app.js';

// Per-key rate limiting (issue 9, item 5): off by default (the official SDK retries 429s), a token
// bucket per API key when configured, on the Fastify routes and the GET agent fast path alike.

const send = injectAs;

const createAgent = (app: TestApp, key: string) => createAgentId(app, { key, name: 'Limited', conversationConfig: { agent: { first_message: 'hi' } } });

function expectRateLimited(response: { statusCode: number; headers: Record<string, unknown>; body: string }, retryAfter: string) {
  expect(response.statusCode, response.body).toBe(429);
  expect(response.headers['retry-after']).toBe(retryAfter);
  const body = JSON.parse(response.body) as { detail: Record<string, unknown> };
  expect(body.detail).toEqual({
    status: 'rate_limit_exceeded',
    code: 'rate_limit_exceeded',
    type: 'rate_limit_error',
    message: expect.stringContaining(`retry after ${retryAfter} second`),
    request_id: expect.stringMatching(/^req_[0-9a-f]{24}$/),
  });
}

describe('configuration', () => {
  it('is off unless RATE_LIMIT_RPS is set; the burst defaults to one second of requests', () => {
    expect(loadConfig({}).rateLimit).toBeUndefined();
    expect(loadConfig({ RATE_LIMIT_RPS: '0' }).rateLimit).toBeUndefined();
    expect(loadConfig({ RATE_LIMIT_RPS: '20' }).rateLimit).toEqual({ perSecond: 20, burst: 20 });
    expect(loadConfig({ RATE_LIMIT_RPS: '0.5' }).rateLimit).toEqual({ perSecond: 0.5, burst: 1 });
    expect(loadConfig({ RATE_LIMIT_RPS: '5', RATE_LIMIT_BURST: '50' }).rateLimit).toEqual({ perSecond: 5, burst: 50 });
    expect(() => loadConfig({ RATE_LIMIT_RPS: 'lots' })).toThrow(/RATE_LIMIT_RPS/);
    expect(() => loadConfig({ RATE_LIMIT_RPS: '5', RATE_LIMIT_BURST: '0' })).toThrow(/RATE_LIMIT_BURST/);
  });
});

describe('the token bucket', () => {
  const request = () => ({}) as IncomingMessage;

  it('allows a burst, then one request per 1/rate seconds, and says how many whole seconds to wait', () => {
    let now = 1_000_000;
    const limiter = new RateLimiter({ perSecond: 0.25, burst: 2 }, () => now);
    expect(limiter.check(request(), 'sk_alice')).toBe(0);
    expect(limiter.check(request(), 'sk_alice')).toBe(0);
    expect(limiter.check(request(), 'sk_alice')).toBe(4);
    now += 2_000;
    expect(limiter.check(request(), 'sk_alice')).toBe(2);
    now += 2_000;
    expect(limiter.check(request(), 'sk_alice')).toBe(0);
    expect(limiter.check(request(), 'sk_alice')).toBe(4);
    // Idle for an hour: the bucket holds at most the burst.
    now += 3_600_000;
    expect([1, 2, 3].map(() => limiter.check(request(), 'sk_alice'))).toEqual([0, 0, 4]);
    // A clock that steps back refills nothing and breaks nothing.
    now -= 60_000;
    expect(limiter.check(request(), 'sk_alice')).toBe(4);
    expect(limiter.rejected).toBe(5);
  });

  it('keeps a bucket per key, and judges a request once however many times it is checked', () => {
    const limiter = new RateLimiter({ perSecond: 1, burst: 1 }, () => 0);
    const judged = request();
    expect(limiter.check(judged, 'sk_a')).toBe(0);
    // The fast path judged it, then handed it to the route: not charged again.
    expect(limiter.check(judged, 'sk_a')).toBe(0);
    expect(limiter.check(request(), 'sk_a')).toBe(1);
    expect(limiter.check(request(), 'sk_b')).toBe(0);
    // One key, whichever Caller the key cache resolved it to (the bucket is the key's hash's): still one bucket.
    expect(limiter.check(request(), 'sk_a')).toBe(1);
  });
});

describe('rate limiting off (the default)', () => {
  let testApp: TestApp;
  let baseUrl: string;
  beforeAll(async () => {
    testApp = await startTestApp();
    baseUrl = await listen(testApp);
  });
  afterAll(() => testApp.close());

  it('lets 200 requests in a burst through, on the routes and on the fast path', async () => {
    expect(testApp.app.limiter).toBeUndefined();
    const agentId = await createAgent(testApp, testApp.keys.editor);
    const routed = await Promise.all(Array.from({ length: 200 }, () => send(testApp, 'GET', `/v1/convai/agents/${agentId}`, testApp.keys.editor)));
    expect(routed.map((response) => response.statusCode)).toEqual(Array(200).fill(200));
    const served = testApp.app.fastPath.served;
    const fast = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const response = await fetch(`${baseUrl}/v1/convai/agents/${agentId}`, { headers: { 'xi-api-key': testApp.keys.editor } });
        await response.arrayBuffer();
        return response.status;
      }),
    );
    expect(fast).toEqual(Array(200).fill(200));
    expect(testApp.app.fastPath.served - served).toBeGreaterThan(100);
  });
});

describe('rate limiting on (RATE_LIMIT_RPS=1, RATE_LIMIT_BURST=3)', () => {
  let testApp: TestApp;
  let baseUrl: string;
  let agentId: string;
  /** The app's clock: the tests move it instead of sleeping. */
  let now = Date.UTC(2026, 0, 1);
  /** A full bucket for every key (and fresh key-cache entries to be made). */
  const refill = () => {
    now += 60_000;
  };

  beforeAll(async () => {
    testApp = await startTestApp({ config: { rateLimit: { perSecond: 1, burst: 3 } }, now: () => now });
    baseUrl = await listen(testApp);
    agentId = await createAgent(testApp, testApp.keys.admin);
  });
  afterAll(() => testApp.close());

  it('limits each key on its own, answers 429 rate_limit_error with Retry-After, and recovers as time passes', async () => {
    refill();
    const { editor, viewer } = testApp.keys;
    const url = `/v1/convai/agents/${agentId}`;
    for (let i = 0; i < 3; i++) expect((await send(testApp, 'GET', url, editor)).statusCode).toBe(200);
    expectRateLimited(await send(testApp, 'GET', url, editor), '1');
    // Writes are limited too, and a refused write changes nothing.
    expectRateLimited(await send(testApp, 'PATCH', url, editor, { conversation_config: { agent: { first_message: 'refused' } } }), '1');
    // Another key of the same workspace has its own bucket.
    const asViewer = await send(testApp, 'GET', url, viewer);
    expect(asViewer.statusCode).toBe(200);
    expect((asViewer.json() as { conversation_config: { agent: { first_message: string } } }).conversation_config.agent.first_message).toBe('hi');

    // One second later: one request's worth.
    now += 1_000;
    expect((await send(testApp, 'GET', url, editor)).statusCode).toBe(200);
    expectRateLimited(await send(testApp, 'GET', url, editor), '1');
    // Long idle: a full burst, never more.
    now += 30_000;
    const burst = await Promise.all(Array.from({ length: 5 }, () => send(testApp, 'GET', url, editor)));
    expect(burst.map((response) => response.statusCode).sort()).toEqual([200, 200, 200, 429, 429]);
  });

  it('never limits GET /metrics, whose scrapes neither count against the key nor are refused', async () => {
    refill();
    const { admin } = testApp.keys;
    const url = `/v1/convai/agents/${agentId}`;
    for (let i = 0; i < 3; i++) expect((await send(testApp, 'GET', url, admin)).statusCode).toBe(200);
    expectRateLimited(await send(testApp, 'GET', url, admin), '1');
    // The key's bucket is empty, and a scrape every time is still answered.
    for (let i = 0; i < 10; i++) {
      const scrape = await send(testApp, 'GET', '/metrics', admin);
      expect(scrape.statusCode, scrape.body).toBe(200);
      expect(scrape.body).toContain('branchwise_rate_limited_requests_total');
    }
    expectRateLimited(await send(testApp, 'GET', url, admin), '1');
    // After one second, one request's worth: the scrapes took none of it.
    now += 1_000;
    expect((await send(testApp, 'GET', url, admin)).statusCode).toBe(200);
    expectRateLimited(await send(testApp, 'GET', url, admin), '1');
  });

  it('refuses a missing or unknown key with 401 before limiting, and never limits public routes', async () => {
    refill();
    for (let i = 0; i < 10; i++) {
      expect((await send(testApp, 'GET', `/v1/convai/agents/${agentId}`, 'sk_unknown')).statusCode).toBe(401);
      expect((await send(testApp, 'GET', `/v1/convai/agents/${agentId}`, null)).statusCode).toBe(401);
      expect((await send(testApp, 'GET', '/healthz', null)).statusCode).toBe(200);
    }
  });

  it('applies the same limit to GET agent answered on the fast path, charging each request once', async () => {
    refill();
    const url = `${baseUrl}/v1/convai/agents/${agentId}`;
    const read = async (key: string) => {
      const response = await fetch(url, { headers: { 'xi-api-key': key } });
      return { statusCode: response.status, headers: Object.fromEntries(response.headers), body: await response.text() };
    };
    // The admin's read fills the rendered-bytes cache; the commenter's first request (a route) caches its key.
    expect((await read(testApp.keys.admin)).statusCode).toBe(200);
    expect((await send(testApp, 'GET', `/v1/convai/agents/${agentId}`, testApp.keys.commenter)).statusCode).toBe(200);
    const served = testApp.app.fastPath.served;
    expect((await read(testApp.keys.commenter)).statusCode).toBe(200);
    expect((await read(testApp.keys.commenter)).statusCode).toBe(200);
    expect(testApp.app.fastPath.served - served).toBe(2);
    // The fourth request of the burst of three: judged on the fast path, refused in the route's shape.
    expectRateLimited(await read(testApp.keys.commenter), '1');
    expect(testApp.app.fastPath.served - served).toBe(2);

    // Counted in the metrics (scraped with a key of its own bucket).
    const metrics = await send(testApp, 'GET', '/metrics', testApp.keys.admin);
    expect(metrics.body).toMatch(new RegExp(`^branchwise_rate_limited_requests_total ${testApp.app.limiter!.rejected}$`, 'm'));
    expect(testApp.app.limiter!.rejected).toBeGreaterThan(0);
    expect(metrics.body).toMatch(/^branchwise_http_requests_total\{method="GET",route="\/v1\/convai\/agents\/:agent_id",status_code="429"\} \d+$/m);
  });

  it('reaches the official SDK as an ElevenLabsError with status 429 (it has no subclass for it), and the SDK retries after Retry-After', async () => {
    refill();
    const editor = sdk(baseUrl, testApp.keys.editor);
    for (let i = 0; i < 3; i++) await editor.conversationalAi.agents.get(agentId);
    const error = await failure(editor.conversationalAi.agents.get(agentId));
    expect(Object.getPrototypeOf(error)).toBe(ElevenLabsError.prototype);
    expect(error.statusCode).toBe(429);
    expect(detailOf(error)).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    expect(error.rawResponse?.headers.get('retry-after')).toBe('1');

    // With retries (the SDK's default is 2), it waits the Retry-After second and gets through.
    const retrying = new ElevenLabsClient({ apiKey: testApp.keys.editor, baseUrl, maxRetries: 1 });
    const started = Date.now();
    const moveClock = setTimeout(() => {
      now += 1_000;
    }, 300);
    const agent = await retrying.conversationalAi.agents.get(agentId);
    clearTimeout(moveClock);
    expect(agent.agentId).toBe(agentId);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });
});
