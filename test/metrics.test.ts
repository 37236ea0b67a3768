import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FAST_PATH_ROUTE } from '../src/http/fast-path.js';
import { createAgentId } from './support/fixtures.js';
import { dialect, injectAs, listen, okJson, startTestApp, type TestApp } from './support/test-app.js';

// GET /metrics (issue 9, item 7): Prometheus text from prom-client, one registry per app, admin
// keys of the default workspace only. Counts by route pattern, write counters, caches, the pool.

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

let testApp: TestApp;
let baseUrl: string;

beforeAll(async () => {
  testApp = await startTestApp();
  baseUrl = await listen(testApp);
});
afterAll(() => testApp.close());

const send = (method: 'GET' | 'POST' | 'PATCH', url: string, key: string | null, payload?: unknown, app = testApp) =>
  injectAs(app, method, url, key, payload);

const ok = okJson;

/** The Prometheus text format, parsed into samples. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

async function scrape(app = testApp): Promise<Sample[]> {
  const response = await send('GET', '/metrics', app.keys.admin, undefined, app);
  expect(response.statusCode).toBe(200);
  return parse(response.body);
}

/** The one sample of `name` whose labels include `labels` (0 when there is none yet). */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  expect(found.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return found[0]?.value ?? 0;
}

const createAgent = (name = 'Metered') => createAgentId(testApp, { key: testApp.keys.editor, name, conversationConfig: { agent: { first_message: 'hello' } } });

describe('GET /metrics access', () => {
  it('is for admin keys of the default workspace only, in the Prometheus text format, and not in the OpenAPI document', async () => {
    expect((await send('GET', '/metrics', null)).statusCode).toBe(401);
    expect((await send('GET', '/metrics', 'sk_not_a_key')).statusCode).toBe(401);
    for (const role of ['editor', 'commenter', 'viewer'] as const) {
      const refused = await send('GET', '/metrics', testApp.keys[role]);
      expect(refused.statusCode, role).toBe(403);
      expect(refused.json().detail.type).toBe('authorization_error');
    }
    // Another workspace's admin: the counts cover every workspace, so not theirs to read.
    const foreign = await send('GET', '/metrics', testApp.foreignKey);
    expect(foreign.statusCode).toBe(403);
    expect(foreign.body).not.toContain('branchwise_');

    const response = await send('GET', '/metrics', testApp.keys.admin);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(response.body).toContain('# TYPE branchwise_http_requests_total counter');
    expect(response.body).toContain('# TYPE branchwise_http_request_duration_seconds histogram');
    // prom-client's default process metrics, on this app's own registry.
    expect(response.body).toContain('process_cpu_user_seconds_total');
    expect(response.body).toContain('nodejs_heap_size_used_bytes');

    const openapi = (await send('GET', '/openapi.json', null)).json() as { paths: Record<string, unknown> };
    expect(Object.keys(openapi.paths)).not.toContain('/metrics');
  });
});

describe('request metrics', () => {
  it('counts responses by method, route pattern and status code, never by raw URL', async () => {
    const before = await scrape();
    const agentId = await createAgent();
    await ok(await send('GET', `/v1/convai/agents/${agentId}`, testApp.keys.viewer));
    expect((await send('GET', '/v1/convai/agents/agent_missing', testApp.keys.viewer)).statusCode).toBe(404);
    expect((await send('GET', `/v1/convai/no/such/route/${agentId}`, testApp.keys.viewer)).statusCode).toBe(404);
    const after = await scrape();

    const delta = (name: string, labels: Record<string, string>) => valueOf(after, name, labels) - valueOf(before, name, labels);
    expect(delta('branchwise_http_requests_total', { method: 'POST', route: '/v1/convai/agents/create', status_code: '200' })).toBe(1);
    expect(delta('branchwise_http_request_duration_seconds_count', { method: 'POST', route: '/v1/convai/agents/create', status_code: '200' })).toBe(1);
    // inject() never reaches the fast path: the read was Fastify's.
    expect(delta('branchwise_http_requests_total', { method: 'GET', route: FAST_PATH_ROUTE, status_code: '200' })).toBe(1);
    expect(delta('branchwise_http_requests_total', { method: 'GET', route: FAST_PATH_ROUTE, status_code: '404' })).toBe(1);
    expect(delta('branchwise_http_requests_total', { method: 'GET', route: 'unmatched', status_code: '404' })).toBe(1);

    // Every route label is a declared route pattern: no ids, no label per agent.
    const known = new Set([...testApp.app.routes.map((route) => route.url), '/metrics', '/healthz', '/readyz', '/openapi.json', 'unmatched']);
    const routeLabels = new Set(after.filter((sample) => sample.name.startsWith('branchwise_http_')).map((sample) => sample.labels.route));
    expect(routeLabels.size).toBeGreaterThan(2);
    for (const route of routeLabels) expect(known, String(route)).toContain(route);
    expect(after.some((sample) => Object.values(sample.labels).some((value) => value.includes(agentId)))).toBe(false);

    // Buckets are cumulative and end at the count.
    const labels = { method: 'POST', route: '/v1/convai/agents/create', status_code: '200' };
    const buckets = after.filter((sample) => sample.name === 'branchwise_http_request_duration_seconds_bucket' && sample.labels.route === labels.route && sample.labels.method === 'POST');
    expect(buckets.length).toBeGreaterThan(10);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    expect(buckets.at(-1)!.labels.le).toBe('+Inf');
    expect(buckets.at(-1)!.value).toBe(valueOf(after, 'branchwise_http_request_duration_seconds_count', labels));
  });

  it('counts GET agent answered on the fast path under the same route, with its own latency histogram and no log line', async () => {
    const agentId = await createAgent('Fast');
    const read = async () => {
      const response = await fetch(`${baseUrl}/v1/convai/agents/${agentId}`, { headers: { 'xi-api-key': testApp.keys.editor } });
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    };
    await read();
    const before = await scrape();
    const served = testApp.app.fastPath.served;
    for (let i = 0; i < 5; i++) await read();
    const fastAnswers = testApp.app.fastPath.served - served;
    expect(fastAnswers).toBeGreaterThanOrEqual(4);
    const after = await scrape();

    const labels = { method: 'GET', route: FAST_PATH_ROUTE, status_code: '200' };
    // All five, whichever path answered each.
    expect(valueOf(after, 'branchwise_http_requests_total', labels) - valueOf(before, 'branchwise_http_requests_total', labels)).toBe(5);
    expect(valueOf(after, 'branchwise_fast_path_responses_total')).toBe(testApp.app.fastPath.served);
    expect(valueOf(after, 'branchwise_fast_path_responses_total') - valueOf(before, 'branchwise_fast_path_responses_total')).toBe(fastAnswers);
    expect(valueOf(after, 'branchwise_fast_path_duration_seconds_count')).toBe(testApp.app.fastPath.served);
    expect(valueOf(after, 'branchwise_fast_path_duration_seconds_bucket', { le: '+Inf' })).toBe(testApp.app.fastPath.served);
    expect(valueOf(after, 'branchwise_fast_path_duration_seconds_sum')).toBeGreaterThan(0);
    const fastBuckets = after.filter((sample) => sample.name === 'branchwise_fast_path_duration_seconds_bucket');
    for (let i = 1; i < fastBuckets.length; i++) expect(fastBuckets[i]!.value).toBeGreaterThanOrEqual(fastBuckets[i - 1]!.value);
    // Fastify timed only the reads it answered itself.
    const fastifyTimed =
      valueOf(after, 'branchwise_http_request_duration_seconds_count', labels) - valueOf(before, 'branchwise_http_request_duration_seconds_count', labels);
    expect(fastifyTimed).toBe(5 - fastAnswers);
    // The JSON form (prom-client's get()) reads the same recorder.
    const json = await testApp.app.metrics.registry.getSingleMetric('branchwise_fast_path_duration_seconds')!.get();
    expect(json.values.find((value) => value.labels.le === '+Inf')?.value).toBe(testApp.app.fastPath.served);
  });
});

describe('write metrics', () => {
  it('counts commits, merges, rebases and deployments once they commit, and nothing for refused or no-op writes', async () => {
    const { editor, admin } = testApp.keys;
    const agentId = await createAgent('Writes');
    const agentUrl = `/v1/convai/agents/${agentId}`;
    const head = await ok<{ version_id: string; main_branch_id: string }>(await send('GET', agentUrl, editor));
    const mainId = head.main_branch_id;
    const branch = async (name: string) =>
      (
        await ok<{ created_branch_id: string }>(
          await send('POST', `${agentUrl}/branches`, editor, { parent_version_id: head.version_id, name, description: '', conversation_config: { agent: { language: 'de' } } }),
        )
      ).created_branch_id;
    const featureId = await branch('feature');
    const autoId = await branch('automatic');
    await ok(await send('PATCH', `${agentUrl}/branches/${autoId}`, editor, { auto_rebase: true }));
    const before = await scrape();
    const delta = (after: Sample[], name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels);

    // A commit to main: one commit, and the auto-rebase branch follows main.
    await ok(await send('PATCH', agentUrl, editor, { conversation_config: { agent: { first_message: 'changed' } } }));
    // A commit that changes nothing makes no version, so it is not counted.
    await ok(await send('PATCH', agentUrl, editor, { conversation_config: { agent: { first_message: 'changed' } } }));
    // A refused commit (viewer) is not counted either.
    expect((await send('PATCH', agentUrl, testApp.keys.viewer, { conversation_config: { agent: { first_message: 'no' } } })).statusCode).toBe(403);
    await ok(await send('PATCH', `${agentUrl}?branch_id=${featureId}`, editor, { conversation_config: { agent: { first_message: 'feature' } } }));
    let after = await scrape();
    expect(delta(after, 'branchwise_commits_total')).toBe(2);
    expect(delta(after, 'branchwise_rebases_total', { trigger: 'auto' })).toBe(1);

    await ok(await send('POST', `${agentUrl}/branches/${featureId}/rebase`, editor));
    const deployed = { deployment_request: { requests: [mainId, featureId].map((branch_id) => ({ branch_id, deployment_strategy: { type: 'percentage', traffic_percentage: 50 } })) } };
    await ok(await send('POST', `${agentUrl}/deployments`, admin, deployed));
    // The merge archives the source and moves its 50% to main: a branch_merge deployment.
    await ok(await send('POST', `${agentUrl}/branches/${featureId}/merge?target_branch_id=${mainId}`, admin, {}));
    // Nothing left to merge: refused, not counted.
    expect((await send('POST', `${agentUrl}/branches/${featureId}/merge?target_branch_id=${mainId}`, admin, {})).statusCode).toBe(409);
    const history = await ok<{ results: { id: string }[] }>(await send('GET', `${agentUrl}/deployments?page_size=100`, editor));
    await ok(await send('POST', `${agentUrl}/deployments/${history.results.at(-1)!.id}/rollback`, admin));
    after = await scrape();
    expect(delta(after, 'branchwise_commits_total')).toBe(2);
    expect(delta(after, 'branchwise_rebases_total', { trigger: 'manual' })).toBe(1);
    expect(delta(after, 'branchwise_merges_total')).toBe(1);
    // The merge into main made a new main version: the auto-rebase branch followed again.
    expect(delta(after, 'branchwise_rebases_total', { trigger: 'auto' })).toBe(2);
    // The rollback is a "manual" deployment, as its history item says, and a rollback.
    const rolledBack = await ok<{ results: { source: string }[] }>(await send('GET', `${agentUrl}/deployments?page_size=1`, editor));
    expect(rolledBack.results[0].source).toBe('manual');
    expect(delta(after, 'branchwise_deployments_total', { source: 'manual' })).toBe(2);
    expect(delta(after, 'branchwise_deployments_total', { source: 'branch_merge' })).toBe(1);
    expect(delta(after, 'branchwise_deployment_rollbacks_total')).toBe(1);
    expect(after.filter((sample) => sample.name === 'branchwise_deployments_total').map((sample) => sample.labels.source).sort()).toEqual(['branch_merge', 'manual']);
  });
});

describe('cache, database and rate-limit metrics', () => {
  it('reports every cache (hits, misses, bytes, entries), read at scrape time', async () => {
    const agentId = await createAgent('Cached');
    const before = await scrape();
    for (let i = 0; i < 3; i++) {
      await ok(await send('GET', `/v1/convai/agents/${agentId}`, testApp.keys.editor));
      await ok(await send('GET', `/v1/convai/agents/${agentId}?conversation_id=conv_${i}`, testApp.keys.editor));
    }
    const after = await scrape();
    const caches = ['routing', 'rendered', 'sections', 'documents'];
    const hits = (samples: Sample[]) => caches.reduce((sum, cache) => sum + valueOf(samples, 'branchwise_cache_hits_total', { cache }), 0);
    for (const cache of caches) {
      for (const name of ['branchwise_cache_hits_total', 'branchwise_cache_misses_total', 'branchwise_cache_bytes', 'branchwise_cache_entries']) {
        expect(after.some((sample) => sample.name === name && sample.labels.cache === cache), `${name} ${cache}`).toBe(true);
      }
    }
    expect(hits(after)).toBeGreaterThan(hits(before));
    expect(valueOf(after, 'branchwise_cache_entries', { cache: 'routing' })).toBe(testApp.app.context.routing.size);
    expect(valueOf(after, 'branchwise_cache_bytes', { cache: 'rendered' })).toBe(testApp.app.context.caches.rendered.bytes);
    expect(valueOf(after, 'branchwise_cache_hits_total', { cache: 'documents' })).toBe(testApp.app.context.documents.cache.hits);
  });

  it(`reports the database (${dialect}): the PostgreSQL pool's use, or only the dialect on SQLite`, async () => {
    const samples = await scrape();
    expect(valueOf(samples, 'branchwise_db_info', { dialect })).toBe(1);
    const pool = testApp.store.pool;
    if (dialect === 'postgres') {
      expect(pool).toBeDefined();
      expect(valueOf(samples, 'branchwise_db_pool_max_connections')).toBe(4);
      const idle = valueOf(samples, 'branchwise_db_pool_connections', { state: 'idle' });
      const busy = valueOf(samples, 'branchwise_db_pool_connections', { state: 'busy' });
      expect(idle + busy).toBeGreaterThan(0);
      expect(idle + busy).toBeLessThanOrEqual(4);
      expect(samples.some((sample) => sample.name === 'branchwise_db_pool_waiting_requests')).toBe(true);
    } else {
      expect(pool).toBeUndefined();
      expect(samples.some((sample) => sample.name.startsWith('branchwise_db_pool_'))).toBe(false);
    }
  });

  it('reports no rate-limited requests while rate limiting is off (the default)', async () => {
    expect(testApp.app.limiter).toBeUndefined();
    expect(valueOf(await scrape(), 'branchwise_rate_limited_requests_total')).toBe(0);
  });

  it('keeps one registry per app: another app in the same process counts only its own', async () => {
    const other = await startTestApp();
    try {
      const mine = await scrape();
      expect(valueOf(mine, 'branchwise_commits_total')).toBeGreaterThan(0);
      const theirs = await scrape(other);
      expect(valueOf(theirs, 'branchwise_commits_total')).toBe(0);
      expect(valueOf(theirs, 'branchwise_http_requests_total', { method: 'POST', route: '/v1/convai/agents/create', status_code: '200' })).toBe(0);
      expect(other.app.metrics.registry).not.toBe(testApp.app.metrics.registry);
    } finally {
      await other.close();
    }
  });
});
