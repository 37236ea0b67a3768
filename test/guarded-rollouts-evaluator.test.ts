import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type App, buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { openStore, type Store } from '../src/db/connect.js';
import type { ExperimentResults, ExperimentResultsSource } from '../src/features/experiments/guarded-rollouts.sources.js';
import { waitFor } from './support/server-process.js';
import { injectAs, okJson, startTestApp, type TestApp } from './support/test-app.js';

// The evaluator (src/features/experiments/guarded-rollouts.evaluator.ts) against a real store on
// both dialects, with the experiment results injected: it advances, extends, completes and rolls
// back by itself, each as a deployment with its reason and numbers; only the holder of the lease
// acts, once per rollout per tick; and the timer runs it on its own.

const T0 = Date.UTC(2026, 11, 2, 8, 0, 0);
let clock = T0;
const now = () => clock;

/** What the injected source answers, per agent; and how often each app asked. */
const answers = new Map<string, ExperimentResults>();
function sourceCounting(calls: { count: number }): ExperimentResultsSource {
  return async (_context, agent) => {
    calls.count++;
    const answer = answers.get(agent.id);
    if (!answer) throw new Error(`no results for agent ${agent.id}`);
    return answer;
  };
}

let testApp: TestApp;
/** How often the app holding the lease (`second`) and the other one asked for results. */
const holderCalls = { count: 0 };
const otherCalls = { count: 0 };

beforeAll(async () => {
  testApp = await startTestApp({ now });
  // The test app's evaluator, with the results source injected (the one startTestApp built has the default).
  await testApp.app.guardedRollouts.stop();
  second = await appOnSameStore(holderCalls);
});

let second: { app: App; store: Store };

/** Another app on the test app's database (another process, as the database sees it), with the injected source. */
async function appOnSameStore(calls: { count: number }, intervalMs = 30_000): Promise<{ app: App; store: Store }> {
  const store = await openStore(testApp.database.options);
  const app = await buildApp({
    config: { bodyLimitBytes: 2 * 1024 * 1024, logLevel: 'silent', experimentEvaluationIntervalMs: intervalMs },
    store,
    now,
    logger: false,
    guardedRolloutSources: { results: sourceCounting(calls) },
  });
  return { app, store };
}

afterAll(async () => {
  if (second) {
    await second.app.server.close();
    await second.store.close();
  }
  await testApp.close();
});

const AGENTS = '/v1/convai/agents';
const send = (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown) => injectAs(testApp, method, url, testApp.keys.admin, payload);

interface Agent {
  agentId: string;
  main: string;
  canary: string;
}

async function agentWithCanary(): Promise<Agent> {
  const agentId = okJson<{ agent_id: string }>(await send('POST', `${AGENTS}/create`, { conversation_config: {} })).agent_id;
  const head = okJson<{ version_id: string; main_branch_id: string }>(await send('GET', `${AGENTS}/${agentId}`));
  const canary = okJson<{ created_branch_id: string }>(
    await send('POST', `${AGENTS}/${agentId}/branches`, { parent_version_id: head.version_id, name: 'Canary', description: '' }),
  ).created_branch_id;
  return { agentId, main: head.main_branch_id, canary };
}

/** Results where the canary's success rate differs from main's by `difference` with `interval`, n values on each. */
function setResults(agent: Agent, spec: { n: [number, number]; difference: number; interval: { lower: number; upper: number }; decision: 'better' | 'worse' | 'inconclusive'; srm?: number }) {
  answers.set(agent.agentId, {
    agent_id: agent.agentId,
    baseline_branch_id: agent.main,
    alpha: 0.05,
    computed_at_unix_secs: Math.floor(clock / 1000),
    sample_ratio_mismatch: { mismatch: (spec.srm ?? 1) >= 1000, e_value: spec.srm ?? 1, alpha: 0.001, observed: {}, expected: {} },
    branches: [],
    metrics: [
      {
        metric_key: 'call_successful',
        name: 'Call successful',
        kind: 'binary',
        higher_is_better: true,
        branches: [
          { branch_id: agent.canary, n: spec.n[0], estimate: 0.7, interval: null },
          { branch_id: agent.main, n: spec.n[1], estimate: 0.75, interval: null },
        ],
        comparisons: [{ branch_id: agent.canary, difference: spec.difference, interval: spec.interval, decision: spec.decision }],
      },
    ],
  });
}

const STEPS = [
  { traffic_percentage: 10, min_duration_secs: 600, min_outcomes_per_branch: 100 },
  { traffic_percentage: 50, min_duration_secs: 600, min_outcomes_per_branch: 200 },
];

async function startRollout(agent: Agent, steps = STEPS): Promise<string> {
  return okJson<{ guarded_rollout_id: string }>(
    await send('POST', `${AGENTS}/${agent.agentId}/guarded-rollouts`, {
      branch_id: agent.canary,
      steps,
      guard_metrics: [{ metric_key: 'call_successful', max_regression: 0.02 }],
    }),
  ).guarded_rollout_id;
}

interface RolloutWire {
  status: string;
  current_step: number;
  events: { type: string; step: number; deployment_id?: string; reason: string; actor_kind: string; numbers: any }[];
}
const rolloutOf = async (agent: Agent, id: string) => okJson<RolloutWire>(await send('GET', `${AGENTS}/${agent.agentId}/guarded-rollouts/${id}`));
const historyOf = async (agent: Agent) =>
  okJson<{ results: { id: string; traffic_percentage_branch_id_map: Record<string, number>; guarded_rollout_id?: string; reason?: string }[] }>(
    await send('GET', `${AGENTS}/${agent.agentId}/deployments`),
  ).results;

/** One tick of the app holding the lease; the other app ticks too and must do nothing. */
async function tick() {
  const report = await second.app.guardedRollouts.evaluateOnce();
  expect(report.failures).toEqual([]);
  return report;
}

describe('the evaluator, on a store with a running rollout', () => {
  it('waits out the step, extends it once while values are missing, advances, and completes; each with its numbers', async () => {
    const agent = await agentWithCanary();
    clock += 1_000;
    const id = await startRollout(agent);
    setResults(agent, { n: [150, 900], difference: 0.01, interval: { lower: -0.01, upper: 0.03 }, decision: 'inconclusive', srm: 1.7 });

    clock += 599_000;
    expect((await tick()).outcomes).toContainEqual({ rolloutId: id, action: 'wait' });
    clock += 1_000;
    expect((await tick()).outcomes).toContainEqual({ rolloutId: id, action: 'advanced', deploymentId: expect.any(String) });
    const [advancedTo] = await historyOf(agent);
    expect(advancedTo.traffic_percentage_branch_id_map).toEqual({ [agent.main]: 50, [agent.canary]: 50 });
    expect(advancedTo.guarded_rollout_id).toBe(id);
    expect(advancedTo.reason).toContain('step 2 sends 50%');

    // Step 1 needs 200 values per branch: 150 on the canary is short.
    clock += 600_000;
    expect((await tick()).outcomes).toContainEqual({ rolloutId: id, action: 'extended' });
    expect((await tick()).outcomes).toContainEqual({ rolloutId: id, action: 'wait' });
    setResults(agent, { n: [250, 1_500], difference: 0.005, interval: { lower: -0.015, upper: 0.025 }, decision: 'inconclusive', srm: 2.1 });
    clock += 1_000;
    expect((await tick()).outcomes).toContainEqual({ rolloutId: id, action: 'completed' });
    expect((await tick()).outcomes).toEqual([]);

    const rollout = await rolloutOf(agent, id);
    expect(rollout.status).toBe('completed');
    expect(rollout.events.map((event) => [event.type, event.step, event.actor_kind])).toEqual([
      ['started', 0, 'user'],
      ['advanced', 1, 'system'],
      ['extended', 1, 'system'],
      ['completed', 1, 'system'],
    ]);
    expect(rollout.events[1].deployment_id).toBe(advancedTo.id);
    expect(rollout.events[1].numbers).toEqual({
      sample_ratio_mismatch: { mismatch: false, e_value: 1.7, alpha: 0.001 },
      guard_metrics: [
        {
          metric_key: 'call_successful',
          higher_is_better: true,
          max_regression: 0.02,
          n: { [agent.canary]: 150, [agent.main]: 900 },
          difference: 0.01,
          interval: { lower: -0.01, upper: 0.03 },
          decision: 'inconclusive',
          regressed: false,
        },
      ],
    });
    expect(rollout.events[3].numbers.guard_metrics[0].n).toEqual({ [agent.canary]: 250, [agent.main]: 1_500 });
    // Completed: the split stays at the last step and is free for manual deployments again.
    expect((await historyOf(agent))[0].id).toBe(advancedTo.id);
    okJson(await send('POST', `${AGENTS}/${agent.agentId}/deployments`, { deployment_request: { requests: [{ branch_id: agent.main, deployment_strategy: { type: 'percentage', traffic_percentage: 100 } }] } }));
  });

  it('rolls a regression back by itself, at once, to the split from before; the history and the audit log show it', async () => {
    const agent = await agentWithCanary();
    const [before] = await historyOf(agent);
    const id = await startRollout(agent);
    setResults(agent, { n: [120, 1_100], difference: -0.12, interval: { lower: -0.2, upper: -0.04 }, decision: 'worse', srm: 3 });
    clock += 1_000;
    const report = await tick();
    expect(report.outcomes).toContainEqual({ rolloutId: id, action: 'rolled_back', deploymentId: expect.any(String) });

    const [active] = await historyOf(agent);
    expect(active).toMatchObject({ traffic_percentage_branch_id_map: { [agent.main]: 100 }, guarded_rollout_id: id });
    expect(active.reason).toMatch(/rolled back: call_successful regressed beyond 0\.02 \(difference -0\.12, interval \[-0\.2, -0\.04\]\)/);
    const tables = await testApp.store.db.selectFrom('deployments').select('bucket_table').where('id', 'in', [before.id, active.id]).execute();
    expect(tables[0].bucket_table).toBe(tables[1].bucket_table);
    const rollout = await rolloutOf(agent, id);
    expect(rollout.status).toBe('rolled_back');
    expect(rollout.events.at(-1)).toMatchObject({ type: 'rolled_back', actor_kind: 'system', deployment_id: active.id });
    expect(rollout.events.at(-1)!.numbers.guard_metrics[0]).toMatchObject({ n: { [agent.canary]: 120, [agent.main]: 1_100 }, difference: -0.12, decision: 'worse', regressed: true });
    const audit = okJson<{ events: { action: string; actor_kind: string; resource_id: string; details: Record<string, unknown> }[] }>(
      await send('GET', `/v1/convai/audit-events?agent_id=${agent.agentId}&action=guarded_rollout.rollback`),
    );
    expect(audit.events).toEqual([expect.objectContaining({ actor_kind: 'system', resource_id: id })]);
    expect(audit.events[0].details.deployment_id).toBe(active.id);
  });

  it('rolls back on a sample-ratio mismatch; leaves a paused rollout alone', async () => {
    const agent = await agentWithCanary();
    const id = await startRollout(agent);
    setResults(agent, { n: [10, 10], difference: 0, interval: { lower: -0.5, upper: 0.5 }, decision: 'inconclusive', srm: 4_321 });
    okJson(await send('POST', `${AGENTS}/${agent.agentId}/guarded-rollouts/${id}/pause`));
    clock += 1_000;
    expect((await tick()).outcomes.map((outcome) => outcome.rolloutId)).not.toContain(id);
    expect((await rolloutOf(agent, id)).status).toBe('paused');
    okJson(await send('POST', `${AGENTS}/${agent.agentId}/guarded-rollouts/${id}/resume`));
    expect((await tick()).outcomes).toContainEqual({ rolloutId: id, action: 'rolled_back', deploymentId: expect.any(String) });
    const rollout = await rolloutOf(agent, id);
    expect(rollout.events.at(-1)!.reason).toContain('sample ratio mismatch');
    expect(rollout.events.at(-1)!.numbers.sample_ratio_mismatch).toEqual({ mismatch: true, e_value: 4_321, alpha: 0.001 });
  });

  it('runs in one process only: the other app on the store does nothing while the lease is held, and takes over once it is given up', async () => {
    const agent = await agentWithCanary();
    const id = await startRollout(agent, [{ traffic_percentage: 10, min_duration_secs: 0, min_outcomes_per_branch: 1_000_000 }, STEPS[1]]);
    setResults(agent, { n: [1, 1], difference: 0, interval: { lower: -1, upper: 1 }, decision: 'inconclusive' });
    const third = await appOnSameStore(otherCalls);
    try {
      // Both tick, by turns and at once: the holder evaluates each rollout once a tick, the other never.
      for (let round = 0; round < 4; round++) {
        clock += 1_000;
        const [held, other] = await Promise.all([second.app.guardedRollouts.evaluateOnce(), third.app.guardedRollouts.evaluateOnce()]);
        expect([held.held, other.held]).toEqual([true, false]);
        expect(held.outcomes.filter((outcome) => outcome.rolloutId === id)).toHaveLength(1);
        expect(other.outcomes).toEqual([]);
      }
      expect(otherCalls.count).toBe(0);
      const events = (await rolloutOf(agent, id)).events.map((event) => event.type);
      expect(events).toEqual(['started', 'extended']);

      // Stopping gives the lease up: the other takes over at its next tick.
      await second.app.guardedRollouts.stop();
      const after = await third.app.guardedRollouts.evaluateOnce();
      expect(after.held).toBe(true);
      expect(after.outcomes).toContainEqual({ rolloutId: id, action: 'wait' });
      expect(otherCalls.count).toBe(1);
      okJson(await send('POST', `${AGENTS}/${agent.agentId}/guarded-rollouts/${id}/rollback`));
    } finally {
      await third.app.server.close();
      await third.store.close();
    }
  });
});

describe('the timer', () => {
  it('runs every 10 s unless EXPERIMENT_EVALUATION_INTERVAL_MS says otherwise, and at least every 30 s', () => {
    expect(loadConfig({}).experimentEvaluationIntervalMs).toBe(10_000);
    expect(loadConfig({ EXPERIMENT_EVALUATION_INTERVAL_MS: '30000' }).experimentEvaluationIntervalMs).toBe(30_000);
    expect(loadConfig({ EXPERIMENT_EVALUATION_INTERVAL_MS: '50' }).experimentEvaluationIntervalMs).toBe(50);
    for (const bad of ['30001', '0', '-5', 'soon']) {
      expect(() => loadConfig({ EXPERIMENT_EVALUATION_INTERVAL_MS: bad }), bad).toThrow(/EXPERIMENT_EVALUATION_INTERVAL_MS/);
    }
  });

  it('evaluates on its own every EXPERIMENT_EVALUATION_INTERVAL_MS', async () => {
    const agent = await agentWithCanary();
    const id = await startRollout(agent, [
      { traffic_percentage: 10, min_duration_secs: 0, min_outcomes_per_branch: 10 },
      { traffic_percentage: 30, min_duration_secs: 0, min_outcomes_per_branch: 10 },
    ]);
    setResults(agent, { n: [20, 20], difference: 0, interval: { lower: -0.3, upper: 0.3 }, decision: 'inconclusive' });
    const calls = { count: 0 };
    const timed = await appOnSameStore(calls, 50);
    try {
      await waitFor(async () => (await rolloutOf(agent, id)).status === 'completed', 'the rollout to complete by the timer');
      expect((await rolloutOf(agent, id)).events.map((event) => event.type)).toEqual(['started', 'advanced', 'completed']);
      expect((await historyOf(agent))[0].traffic_percentage_branch_id_map).toEqual({ [agent.main]: 70, [agent.canary]: 30 });
    } finally {
      await timed.app.server.close();
      await timed.store.close();
    }
    // Closed: it ticks no more.
    const count = calls.count;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(calls.count).toBe(count);
  });
});
