import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { experimentScope } from '../src/features/experiments/experiments.runtime.js';
import { experimentsStore } from '../src/features/experiments/experiments.store.js';

import { snapshotDatabase } from './support/db-snapshot.js';
import { recountedCells, storedCells } from './support/experiments.js';
import { createAgent } from './support/fixtures.js';
import { expectApiError, expectValidationError, locs } from './support/route-requests.js';
import { injectAs, okJson, startTestApp, type TestApp } from './support/test-app.js';

// Issue 20: metrics, outcome events, reported exposures and the cells kept from them.

let testApp: TestApp;
beforeAll(async () => {
  testApp = await startTestApp();
});
afterAll(() => testApp.close());

interface Agent {
  agentId: string;
  mainBranchId: string;
  versionId: string;
  branchId: string;
  branchVersionId: string;
}

/** An agent with a second branch and a 50/50 split. */
async function splitAgent(key = testApp.keys.admin): Promise<Agent> {
  const { agentId, mainBranchId, versionId } = await createAgent(testApp, { key });
  const branch = okJson<{ created_branch_id: string; created_version_id: string }>(
    await injectAs(testApp, 'POST', `/v1/convai/agents/${agentId}/branches`, key, { parent_version_id: versionId, name: 'B', description: '' }),
  );
  const split = (branchId: string, share: number) => ({ branch_id: branchId, deployment_strategy: { type: 'percentage', traffic_percentage: share } });
  okJson(
    await injectAs(testApp, 'POST', `/v1/convai/agents/${agentId}/deployments`, key, {
      deployment_request: { requests: [split(mainBranchId, 50), split(branch.created_branch_id, 50)] },
    }),
  );
  return { agentId, mainBranchId, versionId, branchId: branch.created_branch_id, branchVersionId: branch.created_version_id };
}

const post = (url: string, payload: unknown, key = testApp.keys.admin) => injectAs(testApp, 'POST', url, key, payload);
const eventMetric = (key: string, kind: 'binary' | 'mean' = 'mean') => ({ metric_key: key, name: key, kind, higher_is_better: true, source: { type: 'event' } });

async function withNothingWritten(run: () => Promise<void>): Promise<void> {
  const before = await snapshotDatabase(testApp.store.db);
  await run();
  expect(await snapshotDatabase(testApp.store.db)).toBe(before);
}

describe('metrics', () => {
  it('lists the built-in metrics, then those defined; a key is taken once; built-ins cannot be deleted', async () => {
    const { agentId } = await splitAgent();
    const base = `/v1/convai/agents/${agentId}/metrics`;
    const listed = okJson<{ metrics: { metric_key: string; built_in: boolean; kind: string; higher_is_better: boolean }[] }>(await injectAs(testApp, 'GET', base, testApp.keys.viewer));
    expect(listed.metrics).toEqual([
      { metric_key: 'call_successful', name: 'Call successful', kind: 'binary', higher_is_better: true, source: { type: 'built_in' }, built_in: true },
      { metric_key: 'call_duration_secs', name: 'Call duration (seconds)', kind: 'mean', higher_is_better: false, source: { type: 'built_in' }, built_in: true },
    ]);
    const created = okJson(await post(base, { metric_key: 'resolved', kind: 'binary', higher_is_better: true, source: { type: 'evaluation_criterion', id: 'resolved' } }));
    expect(created).toEqual({ metric_key: 'resolved', name: 'resolved', kind: 'binary', higher_is_better: true, source: { type: 'evaluation_criterion', id: 'resolved' }, built_in: false });
    await withNothingWritten(async () => {
      expectApiError(await post(base, eventMetric('resolved')), 409, 'conflict', 'metric_exists');
      expectApiError(await post(base, eventMetric('call_successful')), 409, 'conflict', 'metric_exists');
      expect(locs(expectValidationError(await injectAs(testApp, 'DELETE', `${base}/call_successful`, testApp.keys.admin)))).toEqual([['path', 'metric_key']]);
      expectApiError(await injectAs(testApp, 'DELETE', `${base}/nothing_here`, testApp.keys.admin), 404, 'not_found');
      // An event source names nothing; the others name what they read.
      expectValidationError(await post(base, { ...eventMetric('x'), source: { type: 'event', id: 'x' } }));
      expectValidationError(await post(base, { ...eventMetric('x'), source: { type: 'metadata' } }));
      expectValidationError(await post(base, { ...eventMetric('x'), source: { type: 'built_in' } }));
      expectValidationError(await post(base, { ...eventMetric('has space') }));
    });
    expect(okJson(await injectAs(testApp, 'DELETE', `${base}/resolved`, testApp.keys.editor))).toEqual({ metric_key: 'resolved' });
    const after = okJson<{ metrics: { metric_key: string }[] }>(await injectAs(testApp, 'GET', base, testApp.keys.admin));
    expect(after.metrics.map((metric) => metric.metric_key)).toEqual(['call_successful', 'call_duration_secs']);
  });

  it('another workspace\'s agent is a 404, as an agent that exists nowhere', async () => {
    const { agentId } = await splitAgent(testApp.foreignKey);
    await withNothingWritten(async () => {
      expectApiError(await injectAs(testApp, 'GET', `/v1/convai/agents/${agentId}/metrics`, testApp.keys.admin), 404, 'not_found');
      expectApiError(await post(`/v1/convai/agents/${agentId}/metrics`, eventMetric('m')), 404, 'not_found');
      expectApiError(await post(`/v1/convai/agents/${agentId}/outcomes`, { events: [{ conversation_id: 'c', metric_key: 'call_successful', value: 1 }] }), 404, 'not_found');
      expectApiError(await post(`/v1/convai/agents/${agentId}/exposures`, { exposures: [{ conversation_id: 'c', branch_id: 'agtbrch_x' }] }), 404, 'not_found');
    });
  });
});

describe('outcome events', () => {
  it('one value per conversation and metric: the latest by occurred_at wins; a repeated idempotency key is a duplicate', async () => {
    const agent = await splitAgent();
    const base = `/v1/convai/agents/${agent.agentId}`;
    okJson(await post(`${base}/metrics`, eventMetric('csat')));
    const events = (list: unknown[]) => post(`${base}/outcomes`, { events: list });
    expect(okJson(await events([{ conversation_id: 'c1', metric_key: 'csat', value: 3, occurred_at_unix_secs: 100, idempotency_key: 'k1' }]))).toEqual({ accepted: 1, duplicates: 0 });
    expect(okJson(await events([{ conversation_id: 'c1', metric_key: 'csat', value: 3, occurred_at_unix_secs: 100, idempotency_key: 'k1' }]))).toEqual({ accepted: 0, duplicates: 1 });
    // Older than what is stored: accepted, changes nothing.
    expect(okJson(await events([{ conversation_id: 'c1', metric_key: 'csat', value: 1, occurred_at_unix_secs: 50, idempotency_key: 'k0' }]))).toEqual({ accepted: 1, duplicates: 0 });
    const value = () => testApp.store.db.selectFrom('outcome_values').select(['value', 'idempotency_key']).where('agent_id', '=', agent.agentId).where('unit_id', '=', 'c1').executeTakeFirstOrThrow();
    expect(await value()).toEqual({ value: 3, idempotency_key: 'k1' });
    // Newer: replaces it; within one request, in order.
    expect(
      okJson(
        await events([
          { conversation_id: 'c1', metric_key: 'csat', value: 5, occurred_at_unix_secs: 200, idempotency_key: 'k2' },
          { conversation_id: 'c1', metric_key: 'csat', value: 4, occurred_at_unix_secs: 300, idempotency_key: 'k3' },
          { conversation_id: 'c1', metric_key: 'csat', value: 4, occurred_at_unix_secs: 300, idempotency_key: 'k3' },
        ]),
      ),
    ).toEqual({ accepted: 2, duplicates: 1 });
    expect(await value()).toEqual({ value: 4, idempotency_key: 'k3' });
    const rows = await testApp.store.db.selectFrom('outcome_values').selectAll().where('agent_id', '=', agent.agentId).execute();
    expect(rows).toHaveLength(1);
  });

  it('bad input: 422 at the item, 413 over the body limit, nothing written', async () => {
    const agent = await splitAgent();
    const base = `/v1/convai/agents/${agent.agentId}`;
    okJson(await post(`${base}/metrics`, eventMetric('csat')));
    okJson(await post(`${base}/metrics`, eventMetric('converted', 'binary')));
    const ok = { conversation_id: 'c1', metric_key: 'csat', value: 1 };
    await withNothingWritten(async () => {
      const refuse = async (events: unknown, expected: (string | number)[][]) =>
        expect(locs(expectValidationError(await post(`${base}/outcomes`, { events })))).toEqual(expected);
      await refuse([ok, { ...ok, metric_key: 'nope' }], [['body', 'events', 1, 'metric_key']]);
      // Webhook metrics take no events.
      await refuse([{ ...ok, metric_key: 'call_successful' }], [['body', 'events', 0, 'metric_key']]);
      await refuse([{ ...ok, metric_key: 'converted', value: 0.5 }], [['body', 'events', 0, 'value']]);
      // A lone surrogate has no UTF-8 form: the unit could not be stored as it was sent (refused as in every body).
      await refuse([ok, { ...ok, conversation_id: 'c\ud800' }], [['body', 'events', 1, 'conversation_id']]);
      expectValidationError(await post(`${base}/outcomes`, { events: [] }));
      expectValidationError(await post(`${base}/outcomes`, { events: Array.from({ length: 1_001 }, () => ok) }));
      expectValidationError(await post(`${base}/outcomes`, { events: [{ ...ok, value: '1' }] }));
      expectValidationError(await post(`${base}/outcomes`, { events: [{ ...ok, conversation_id: '' }] }));
      expectValidationError(await post(`${base}/outcomes`, { events: [{ ...ok, occurred_at_unix_secs: -1 }] }));
      const huge = await post(`${base}/outcomes`, { events: [{ ...ok, idempotency_key: 'x'.repeat(3 * 1024 * 1024) }] });
      expectApiError(huge, 413, 'invalid_request');
      expectApiError(await post(`/v1/convai/agents/agent_0000000000000000000000000z/outcomes`, { events: [ok] }), 404, 'not_found');
    });
  });
});

describe('reported exposures', () => {
  it('the first exposure of a conversation is kept, with the branch head and its share', async () => {
    const agent = await splitAgent();
    const url = `/v1/convai/agents/${agent.agentId}/exposures`;
    expect(
      okJson(
        await post(url, {
          exposures: [
            { conversation_id: 'r1', branch_id: agent.branchId },
            { conversation_id: 'r2', branch_id: agent.mainBranchId, version_id: agent.versionId },
            { conversation_id: 'r1', branch_id: agent.mainBranchId },
          ],
        }),
      ),
    ).toEqual({ recorded: 2, already_recorded: 1 });
    expect(okJson(await post(url, { exposures: [{ conversation_id: 'r2', branch_id: agent.branchId }] }))).toEqual({ recorded: 0, already_recorded: 1 });
    const rows = (await experimentsStore(testApp.store.db).exposureRows(agent.agentId)).sort((a, b) => a.unit_id.localeCompare(b.unit_id));
    expect(rows.map((row) => [row.unit_id, row.branch_id, row.version_id, row.probability, row.source])).toEqual([
      ['r1', agent.branchId, agent.branchVersionId, 0.5, 'reported'],
      ['r2', agent.mainBranchId, agent.versionId, 0.5, 'reported'],
    ]);
  });

  it('a branch of another agent, a version not on the branch, a unit with a lone surrogate: 422 at the item, nothing written', async () => {
    const agent = await splitAgent();
    const other = await splitAgent();
    const url = `/v1/convai/agents/${agent.agentId}/exposures`;
    await withNothingWritten(async () => {
      const issues = expectValidationError(
        await post(url, {
          exposures: [
            { conversation_id: 'ok', branch_id: agent.branchId },
            { conversation_id: 'x', branch_id: other.branchId },
            { conversation_id: 'y', branch_id: agent.branchId, version_id: agent.versionId },
          ],
        }),
      );
      expect(locs(issues)).toEqual([
        ['body', 'exposures', 1, 'branch_id'],
        ['body', 'exposures', 2, 'version_id'],
      ]);
      const lone = expectValidationError(await post(url, { exposures: [{ conversation_id: 'ok', branch_id: agent.branchId }, { conversation_id: '\udc00z', branch_id: agent.branchId }] }));
      expect(locs(lone)).toEqual([['body', 'exposures', 1, 'conversation_id']]);
    });
  });
});

describe('cells', () => {
  it('a value lands in its exposure\'s cell whichever arrives second; a changed value replaces its contribution', async () => {
    const agent = await splitAgent();
    const base = `/v1/convai/agents/${agent.agentId}`;
    okJson(await post(`${base}/metrics`, eventMetric('csat')));
    // u1: value before exposure; u2: exposure before value; u3: value only; u4: exposure only.
    okJson(await post(`${base}/outcomes`, { events: [{ conversation_id: 'u1', metric_key: 'csat', value: 2, occurred_at_unix_secs: 10 }, { conversation_id: 'u3', metric_key: 'csat', value: 9 }] }));
    okJson(await post(`${base}/exposures`, { exposures: [{ conversation_id: 'u1', branch_id: agent.branchId }, { conversation_id: 'u2', branch_id: agent.branchId }, { conversation_id: 'u4', branch_id: agent.mainBranchId }] }));
    okJson(await post(`${base}/outcomes`, { events: [{ conversation_id: 'u2', metric_key: 'csat', value: 4, occurred_at_unix_secs: 10 }] }));
    let cells = await storedCells(testApp.store, agent.agentId);
    expect(cells.outcome.map(({ branch_id, n, sum, sum_squares }) => ({ branch_id, n, sum, sum_squares }))).toEqual([{ branch_id: agent.branchId, n: 2, sum: 6, sum_squares: 20 }]);
    expect(cells.exposure.map(({ branch_id, exposures, units_with_outcomes }) => ({ branch_id, exposures, units_with_outcomes })).sort((a, b) => a.branch_id.localeCompare(b.branch_id))).toEqual(
      [
        { branch_id: agent.branchId, exposures: 2, units_with_outcomes: 2 },
        { branch_id: agent.mainBranchId, exposures: 1, units_with_outcomes: 0 },
      ].sort((a, b) => a.branch_id.localeCompare(b.branch_id)),
    );
    // u1 changes from 2 to 5: n stays, sum and sum of squares move.
    okJson(await post(`${base}/outcomes`, { events: [{ conversation_id: 'u1', metric_key: 'csat', value: 5, occurred_at_unix_secs: 20 }] }));
    cells = await storedCells(testApp.store, agent.agentId);
    expect(cells.outcome.map(({ n, sum, sum_squares }) => ({ n, sum, sum_squares }))).toEqual([{ n: 2, sum: 9, sum_squares: 41 }]);
    expect(cells).toEqual(await recountedCells(testApp.store, agent.agentId));
    // Deleting the metric takes its values and cells; coverage is counted again.
    okJson(await injectAs(testApp, 'DELETE', `${base}/metrics/csat`, testApp.keys.admin));
    cells = await storedCells(testApp.store, agent.agentId);
    expect(cells.outcome).toEqual([]);
    expect(cells).toEqual(await recountedCells(testApp.store, agent.agentId));
  });

  it('many concurrent outcome and exposure posts: the cells equal a recount from the raw rows', async () => {
    const agent = await splitAgent();
    const base = `/v1/convai/agents/${agent.agentId}`;
    okJson(await post(`${base}/metrics`, eventMetric('score')));
    okJson(await post(`${base}/metrics`, eventMetric('won', 'binary')));
    const units = Array.from({ length: 60 }, (_, i) => `conc-${i}`);
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const requests: Promise<unknown>[] = [];
    for (let round = 0; round < 40; round++) {
      const chosen = units.filter(() => random() < 0.3);
      if (round % 3 === 0) {
        requests.push(post(`${base}/exposures`, { exposures: chosen.map((unit) => ({ conversation_id: unit, branch_id: random() < 0.5 ? agent.branchId : agent.mainBranchId })) }).then(okJson));
      } else {
        const events = chosen.map((unit) => ({
          conversation_id: unit,
          metric_key: random() < 0.5 ? 'score' : 'won',
          value: random() < 0.5 ? 1 : 0,
          occurred_at_unix_secs: Math.floor(random() * 1_000),
        }));
        if (events.length > 0) requests.push(post(`${base}/outcomes`, { events }).then(okJson));
      }
    }
    await Promise.all(requests);
    const cells = await storedCells(testApp.store, agent.agentId);
    expect(cells.exposure.length).toBeGreaterThan(0);
    expect(cells.outcome.length).toBeGreaterThan(0);
    expect(cells).toEqual(await recountedCells(testApp.store, agent.agentId));
  });
});

describe('retention', () => {
  it('drops whole days before the cutoff with their exposures, values, deliveries and cells; the days kept still add up', async () => {
    const { dropExpiredDays, recordExposures, recordValues, DAY_MS } = await import('../src/features/experiments/cells.js');
    const agent = await splitAgent();
    okJson(await post(`/v1/convai/agents/${agent.agentId}/metrics`, eventMetric('csat')));
    const deployment = await testApp.store.db.selectFrom('deployments').select('id').where('agent_id', '=', agent.agentId).where('is_active', '=', 1).executeTakeFirstOrThrow();
    const now = Date.UTC(2026, 11, 3, 12);
    const exposure = (unit: string, daysAgo: number) => ({
      agent_id: agent.agentId,
      unit_id: unit,
      branch_id: agent.branchId,
      version_id: agent.branchVersionId,
      deployment_id: deployment.id,
      probability: 0.5,
      exposed_at_ms: now - daysAgo * DAY_MS,
      source: 'routed' as const,
    });
    await testApp.app.context.write(async (write) => {
      const { trx } = write;
      const scope = experimentScope(testApp.app.context, write);
      await recordExposures(scope, agent.agentId, [exposure('old', 100), exposure('kept', 10)]);
      await recordValues(
        scope,
        agent.agentId,
        [
          { unitId: 'old', metricKey: 'csat', value: 1, occurredAtMs: now - 100 * DAY_MS, idempotencyKey: null },
          { unitId: 'kept', metricKey: 'csat', value: 3, occurredAtMs: now - 10 * DAY_MS, idempotencyKey: null },
        ],
        now - 100 * DAY_MS,
      );
      await trx.insertInto('webhook_deliveries').values([
        { agent_id: agent.agentId, conversation_id: 'old', type: 'post_call_transcription', received_at_ms: now - 100 * DAY_MS, extracted: '{}' },
        { agent_id: agent.agentId, conversation_id: 'kept', type: 'post_call_transcription', received_at_ms: now - DAY_MS, extracted: '{}' },
      ]).execute();
    });
    await testApp.app.context.write((scope) => dropExpiredDays(experimentScope(testApp.app.context, scope), 90, now));
    expect((await experimentsStore(testApp.store.db).exposureRows(agent.agentId)).map((row) => row.unit_id)).toEqual(['kept']);
    expect((await testApp.store.db.selectFrom('outcome_values').select('unit_id').where('agent_id', '=', agent.agentId).execute()).map((row) => row.unit_id)).toEqual(['kept']);
    expect((await testApp.store.db.selectFrom('webhook_deliveries').select('conversation_id').where('agent_id', '=', agent.agentId).execute()).map((row) => row.conversation_id)).toEqual(['kept']);
    const cells = await storedCells(testApp.store, agent.agentId);
    expect(cells.outcome.map((cell) => [cell.n, cell.sum])).toEqual([[1, 3]]);
    expect(cells).toEqual(await recountedCells(testApp.store, agent.agentId));
  });
});

describe('retention under a lease', () => {
  it('two apps on one store: one holds the lease and drops the expired days; the other does nothing', async () => {
    const { experimentRetention } = await import('../src/features/experiments/retention.js');
    const { recordExposures, DAY_MS } = await import('../src/features/experiments/cells.js');
    const { startOtherApp } = await import('./support/test-app.js');
    const agent = await splitAgent();
    const deployment = await testApp.store.db.selectFrom('deployments').select('id').where('agent_id', '=', agent.agentId).where('is_active', '=', 1).executeTakeFirstOrThrow();
    const old = { agent_id: agent.agentId, unit_id: 'expired', branch_id: agent.branchId, version_id: agent.branchVersionId, deployment_id: deployment.id, probability: 0.5, exposed_at_ms: Date.now() - 120 * DAY_MS, source: 'reported' as const };
    await testApp.app.context.write((scope) => recordExposures(experimentScope(testApp.app.context, scope), agent.agentId, [old, { ...old, unit_id: 'recent', exposed_at_ms: Date.now() }]));
    const other = await startOtherApp(testApp);
    try {
      const warn = () => undefined;
      const jobs = [experimentRetention(testApp.app.context, { retentionDays: 90, warn }), experimentRetention(other.app.context, { retentionDays: 90, warn })];
      const held = await Promise.all(jobs.map((job) => job.runOnce()));
      expect(held.filter(Boolean)).toHaveLength(1);
      const units = (await experimentsStore(testApp.store.db).exposureRows(agent.agentId)).map((row) => row.unit_id);
      expect(units).toEqual(['recent']);
      expect(await storedCells(testApp.store, agent.agentId)).toEqual(await recountedCells(testApp.store, agent.agentId));
      // The holder gives the lease up when it stops: the other takes it at once.
      await jobs[held.indexOf(true)].stop();
      expect(await jobs[held.indexOf(false)].runOnce()).toBe(true);
      await jobs[held.indexOf(false)].stop();
    } finally {
      await other.close();
    }
  });
});
