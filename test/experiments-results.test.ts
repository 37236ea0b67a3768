import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ExperimentResults as Results, experimentResultsOf } from '../src/features/experiments/results.service.js';
import { snapshotDatabase } from './support/db-snapshot.js';
import { createAgent } from './support/fixtures.js';
import { expectApiError, expectValidationError, locs } from './support/route-requests.js';
import { injectAs, okJson, startTestApp, type TestApp } from './support/test-app.js';

// Issue 20: the results endpoint reads the cells; the statistics are src/domain/experiment-stats.ts's.

let testApp: TestApp;
beforeAll(async () => {
  testApp = await startTestApp();
});
afterAll(() => testApp.close());

const post = (url: string, payload: unknown) => injectAs(testApp, 'POST', url, testApp.keys.admin, payload);
const split = (branchId: string, share: number) => ({ branch_id: branchId, deployment_strategy: { type: 'percentage', traffic_percentage: share } });

async function splitAgent(shares: [number, number]) {
  const agent = await createAgent(testApp);
  const branch = okJson<{ created_branch_id: string }>(
    await post(`/v1/convai/agents/${agent.agentId}/branches`, { parent_version_id: agent.versionId, name: 'B', description: '' }),
  );
  okJson(await post(`/v1/convai/agents/${agent.agentId}/deployments`, { deployment_request: { requests: [split(agent.mainBranchId, shares[0]), split(branch.created_branch_id, shares[1])] } }));
  return { ...agent, branchId: branch.created_branch_id };
}


describe('experiment results', () => {
  it('an agent with nothing recorded: every branch of the split, no values, nothing decided', async () => {
    const agent = await splitAgent([50, 50]);
    const results = okJson<Results>(await injectAs(testApp, 'GET', `/v1/convai/agents/${agent.agentId}/experiment-results`, testApp.keys.viewer));
    expect(results.agent_id).toBe(agent.agentId);
    expect(results.baseline_branch_id).toBe(agent.mainBranchId);
    expect(results.alpha).toBe(0.05);
    expect(results.computed_at_unix_secs).toBeGreaterThan(1_700_000_000);
    expect(results.branches).toEqual([
      { branch_id: agent.mainBranchId, exposures: 0, expected_share: 0.5, observed_share: null, outcome_coverage: null },
      { branch_id: agent.branchId, exposures: 0, expected_share: 0.5, observed_share: null, outcome_coverage: null },
    ]);
    expect(results.sample_ratio_mismatch.mismatch).toBe(false);
    expect(results.metrics.map((metric) => metric.metric_key)).toEqual(['call_successful', 'call_duration_secs']);
    for (const metric of results.metrics) for (const comparison of metric.comparisons) expect(comparison.decision).toBe('inconclusive');
  });

  it('exposures, coverage and SRM from the cells: a 45/55 imbalance over 10,000 exposures is flagged', async () => {
    const agent = await splitAgent([50, 50]);
    const base = `/v1/convai/agents/${agent.agentId}`;
    okJson(await post(`${base}/metrics`, { metric_key: 'csat', kind: 'mean', higher_is_better: true, source: { type: 'event' } }));
    // Runtimes that pin a branch report exposures themselves: 4,500 on main, 5,500 on the branch.
    for (let start = 0; start < 10_000; start += 1_000) {
      const exposures = Array.from({ length: 1_000 }, (_, i) => ({ conversation_id: `u${start + i}`, branch_id: start + i < 4_500 ? agent.mainBranchId : agent.branchId }));
      okJson(await post(`${base}/exposures`, { exposures }));
    }
    okJson(await post(`${base}/outcomes`, { events: Array.from({ length: 100 }, (_, i) => ({ conversation_id: `u${i}`, metric_key: 'csat', value: 4 })) }));
    const results = okJson<Results>(await injectAs(testApp, 'GET', `${base}/experiment-results`, testApp.keys.viewer));
    expect(results.branches).toEqual([
      { branch_id: agent.mainBranchId, exposures: 4_500, expected_share: 0.5, observed_share: 0.45, outcome_coverage: 100 / 4_500 },
      { branch_id: agent.branchId, exposures: 5_500, expected_share: 0.5, observed_share: 0.55, outcome_coverage: 0 },
    ]);
    expect(results.sample_ratio_mismatch).toMatchObject({ mismatch: true, alpha: 0.001, observed: { [agent.mainBranchId]: 4_500, [agent.branchId]: 5_500 }, expected: { [agent.mainBranchId]: 5_000, [agent.branchId]: 5_000 } });
    expect(results.sample_ratio_mismatch.e_value).toBeGreaterThanOrEqual(1_000);
    const csat = results.metrics.find((metric) => metric.metric_key === 'csat')!;
    expect(csat.branches.find((arm) => arm.branch_id === agent.mainBranchId)).toMatchObject({ n: 100, estimate: 4 });
  });

  it('bad input: alpha outside (0, 0.5] is a 422; a baseline not of the agent, or another workspace\'s agent, a 404', async () => {
    const agent = await splitAgent([90, 10]);
    const other = await splitAgent([50, 50]);
    const foreign = await createAgent(testApp, { key: testApp.foreignKey });
    const url = `/v1/convai/agents/${agent.agentId}/experiment-results`;
    const before = await snapshotDatabase(testApp.store.db);
    for (const alpha of ['0', '0.6', 'abc', '-0.1', '', 'NaN', '1e5']) {
      expect(locs(expectValidationError(await injectAs(testApp, 'GET', `${url}?alpha=${alpha}`, testApp.keys.viewer)))).toEqual([['query', 'alpha']]);
    }
    expect(okJson<Results>(await injectAs(testApp, 'GET', `${url}?alpha=0.5`, testApp.keys.viewer)).alpha).toBe(0.5);
    expect(okJson<Results>(await injectAs(testApp, 'GET', `${url}?alpha=1e-3`, testApp.keys.viewer)).alpha).toBe(0.001);
    expectApiError(await injectAs(testApp, 'GET', `${url}?baseline_branch_id=${other.branchId}`, testApp.keys.viewer), 404, 'not_found');
    expectApiError(await injectAs(testApp, 'GET', `/v1/convai/agents/${foreign.agentId}/experiment-results`, testApp.keys.viewer), 404, 'not_found');
    expect(okJson<Results>(await injectAs(testApp, 'GET', `${url}?baseline_branch_id=${agent.branchId}`, testApp.keys.viewer)).branches[0].branch_id).toBe(agent.branchId);
    expect(await snapshotDatabase(testApp.store.db)).toBe(before);
  });

  it('the internal variant (for the rollout evaluator) answers as the route does', async () => {
    const agent = await splitAgent([50, 50]);
    const row = await testApp.store.db.selectFrom('agents').selectAll().where('id', '=', agent.agentId).executeTakeFirstOrThrow();
    const viaRoute = okJson<Results>(await injectAs(testApp, 'GET', `/v1/convai/agents/${agent.agentId}/experiment-results`, testApp.keys.viewer));
    const direct = await experimentResultsOf(testApp.store.db, row, {}, viaRoute.computed_at_unix_secs * 1000);
    expect(JSON.parse(JSON.stringify(direct))).toEqual(viaRoute);
  });
});
