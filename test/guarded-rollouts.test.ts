import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { snapshotDatabase } from './support/db-snapshot.js';
import { injectAs, listen, okJson, sdk, startTestApp, type TestApp } from './support/test-app.js';

// Guarded rollouts through the API (issue 20, item 5): starting one deploys its first step, the
// rollout owns the split while it runs or is paused (409 `guarded_rollout_in_progress` for anything
// else that would move traffic), pause/resume/rollback, and what the deployment history and the
// audit log show. The evaluator's decisions are in guarded-rollouts-evaluator.test.ts.

let testApp: TestApp;
let clock = Date.UTC(2026, 11, 1, 9, 0, 0, 500);

beforeAll(async () => {
  testApp = await startTestApp({ now: () => clock });
});

afterAll(async () => {
  await testApp.close();
});

const AGENTS = '/v1/convai/agents';
type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
const send = (method: Method, url: string, payload?: unknown, key = testApp.keys.admin) => injectAs(testApp, method, url, key, payload);

interface Agent {
  agentId: string;
  main: string;
  canary: string;
  beta: string;
}

async function agentWithBranches(): Promise<Agent> {
  const agentId = okJson<{ agent_id: string }>(await send('POST', `${AGENTS}/create`, { conversation_config: {} })).agent_id;
  const head = okJson<{ version_id: string; main_branch_id: string }>(await send('GET', `${AGENTS}/${agentId}`));
  const branch = async (name: string) =>
    okJson<{ created_branch_id: string }>(await send('POST', `${AGENTS}/${agentId}/branches`, { parent_version_id: head.version_id, name, description: '' }))
      .created_branch_id;
  return { agentId, main: head.main_branch_id, canary: await branch('Canary'), beta: await branch('Beta') };
}

function split(shares: [string, number][]) {
  return { deployment_request: { requests: shares.map(([branch_id, traffic_percentage]) => ({ branch_id, deployment_strategy: { type: 'percentage', traffic_percentage } })) } };
}

const STEPS = [
  { traffic_percentage: 10, min_duration_secs: 600, min_outcomes_per_branch: 100 },
  { traffic_percentage: 50, min_duration_secs: 600, min_outcomes_per_branch: 300 },
  { traffic_percentage: 100, min_duration_secs: 600, min_outcomes_per_branch: 500 },
];
const GUARDS = [{ metric_key: 'call_successful', max_regression: 0.02 }];

function rolloutBody(branchId: string, extra: Record<string, unknown> = {}) {
  return { branch_id: branchId, steps: STEPS, guard_metrics: GUARDS, ...extra };
}

interface HistoryItem {
  id: string;
  traffic_percentage_branch_id_map: Record<string, number>;
  is_active: boolean;
  source: string;
  guarded_rollout_id?: string;
  reason?: string | null;
}

async function history(agentId: string): Promise<HistoryItem[]> {
  return okJson<{ results: HistoryItem[] }>(await send('GET', `${AGENTS}/${agentId}/deployments`)).results;
}

interface RolloutWire {
  guarded_rollout_id: string;
  status: string;
  current_step: number;
  before_split: Record<string, number>;
  before_deployment_id: string;
  started_at_unix_secs: number;
  ended_at_unix_secs: number | null;
  events: { type: string; at_unix_secs: number; step: number; deployment_id?: string; reason: string; actor_kind: string; actor_user_id: string | null; numbers: unknown }[];
}

async function expectRefusedUnchanged(method: Method, url: string, payload: unknown, status: number, code?: string, key = testApp.keys.admin) {
  const before = await snapshotDatabase(testApp.store.db);
  const response = await send(method, url, payload, key);
  expect(response.statusCode, response.body.slice(0, 400)).toBe(status);
  if (code) expect(response.json().detail.code).toBe(code);
  expect(await snapshotDatabase(testApp.store.db)).toBe(before);
  return response;
}

describe('starting a guarded rollout', () => {
  it('deploys step 0 at once, taking the share from the baseline, and the history says why', async () => {
    const { agentId, main, canary, beta } = await agentWithBranches();
    okJson(await send('POST', `${AGENTS}/${agentId}/deployments`, split([[main, 80], [beta, 20]])));
    const [before] = await history(agentId);
    clock += 1_000;
    const created = okJson<{ guarded_rollout_id: string; status: string; current_step: number; deployment_id: string }>(
      await send('POST', `${AGENTS}/${agentId}/guarded-rollouts`, rolloutBody(canary, { steps: STEPS.slice(0, 2) })),
    );
    expect(created).toEqual({ guarded_rollout_id: expect.stringMatching(/^agtgrol_/), status: 'running', current_step: 0, deployment_id: expect.any(String) });

    const [active, previous] = await history(agentId);
    expect(previous.id).toBe(before.id);
    expect(active).toMatchObject({
      id: created.deployment_id,
      is_active: true,
      source: 'manual',
      traffic_percentage_branch_id_map: { [main]: 70, [beta]: 20, [canary]: 10 },
      guarded_rollout_id: created.guarded_rollout_id,
    });
    expect(active.reason).toContain(created.guarded_rollout_id);
    expect(active.reason).toContain('step 1 of 2 sends 10%');
    // Other deployments carry no extension fields.
    expect(previous).not.toHaveProperty('guarded_rollout_id');

    const rollout = okJson<RolloutWire>(await send('GET', `${AGENTS}/${agentId}/guarded-rollouts/${created.guarded_rollout_id}`));
    expect(rollout).toMatchObject({
      guarded_rollout_id: created.guarded_rollout_id,
      agent_id: agentId,
      branch_id: canary,
      baseline_branch_id: main,
      steps: STEPS.slice(0, 2),
      guard_metrics: GUARDS,
      alpha: 0.05,
      status: 'running',
      current_step: 0,
      started_at_unix_secs: Math.floor(clock / 1000),
      step_started_at_unix_secs: Math.floor(clock / 1000),
      ended_at_unix_secs: null,
      before_split: { [main]: 80, [beta]: 20 },
      before_deployment_id: before.id,
    });
    expect(rollout.events).toEqual([
      expect.objectContaining({ type: 'started', step: 0, deployment_id: created.deployment_id, actor_kind: 'user', numbers: null }),
    ]);
    const listed = okJson<{ guarded_rollouts: RolloutWire[] }>(await send('GET', `${AGENTS}/${agentId}/guarded-rollouts`, undefined, testApp.keys.viewer));
    expect(listed.guarded_rollouts.map((item) => item.guarded_rollout_id)).toEqual([created.guarded_rollout_id]);
  });

  it('refuses what it cannot do with a 422 at the field, and writes nothing', async () => {
    const { agentId, main, canary, beta } = await agentWithBranches();
    okJson(await send('POST', `${AGENTS}/${agentId}/deployments`, split([[main, 40], [beta, 60]])));
    const url = `${AGENTS}/${agentId}/guarded-rollouts`;
    const cases: [Record<string, unknown>, (string | number)[]][] = [
      [rolloutBody('agtbrch_nope'), ['body', 'branch_id']],
      [rolloutBody(canary, { baseline_branch_id: canary }), ['body', 'baseline_branch_id']],
      [rolloutBody(canary, { baseline_branch_id: 'agtbrch_nope' }), ['body', 'baseline_branch_id']],
      // Main has 40%: the last step (100%) is more than it can give.
      [rolloutBody(canary), ['body', 'steps', 2, 'traffic_percentage']],
      [rolloutBody(canary, { steps: [STEPS[0], STEPS[0]] }), ['body', 'steps', 1, 'traffic_percentage']],
      [rolloutBody(canary, { steps: [STEPS[0]], guard_metrics: [{ metric_key: 'no_such_metric', max_regression: 0 }] }), ['body', 'guard_metrics', 0, 'metric_key']],
      [rolloutBody(canary, { steps: [STEPS[0]], guard_metrics: [GUARDS[0], GUARDS[0]] }), ['body', 'guard_metrics', 1, 'metric_key']],
      [rolloutBody(canary, { steps: [{ ...STEPS[0], traffic_percentage: 0 }] }), ['body', 'steps', 0, 'traffic_percentage']],
      [rolloutBody(canary, { steps: [] }), ['body', 'steps']],
      [rolloutBody(canary, { guard_metrics: [{ metric_key: 'call_successful', max_regression: -1 }] }), ['body', 'guard_metrics', 0, 'max_regression']],
      [rolloutBody(canary, { alpha: 0.6 }), ['body', 'alpha']],
    ];
    for (const [body, loc] of cases) {
      const response = await expectRefusedUnchanged('POST', url, body, 422);
      expect((response.json() as { detail: { loc: unknown[] }[] }).detail.map((issue) => issue.loc), JSON.stringify(body)).toContainEqual(loc);
    }
    // With beta as the baseline (60%), the same steps up to 100% fit: 40 + 60.
    okJson(await send('POST', url, rolloutBody(canary, { baseline_branch_id: beta, steps: [STEPS[0], { ...STEPS[1], traffic_percentage: 60 }] })));
    const [active] = await history(agentId);
    expect(active.traffic_percentage_branch_id_map).toEqual({ [main]: 40, [beta]: 50, [canary]: 10 });
  });

  it('needs admin to change a protected branch\'s share; 404 for another workspace\'s agent and an unknown rollout', async () => {
    const { agentId, main, canary } = await agentWithBranches();
    okJson(await send('PATCH', `${AGENTS}/${agentId}/branches/${main}`, { protection_status: 'admin_perms_required' }));
    await expectRefusedUnchanged('POST', `${AGENTS}/${agentId}/guarded-rollouts`, rolloutBody(canary), 403, undefined, testApp.keys.editor);
    await expectRefusedUnchanged('POST', `${AGENTS}/${agentId}/guarded-rollouts`, rolloutBody(canary), 404, undefined, testApp.foreignKey);
    await expectRefusedUnchanged('GET', `${AGENTS}/${agentId}/guarded-rollouts`, undefined, 404, undefined, testApp.foreignKey);
    const { guarded_rollout_id: id } = okJson<{ guarded_rollout_id: string }>(await send('POST', `${AGENTS}/${agentId}/guarded-rollouts`, rolloutBody(canary)));
    await expectRefusedUnchanged('GET', `${AGENTS}/${agentId}/guarded-rollouts/${id}`, undefined, 404, undefined, testApp.foreignKey);
    await expectRefusedUnchanged('POST', `${AGENTS}/${agentId}/guarded-rollouts/${id}/rollback`, undefined, 404, undefined, testApp.foreignKey);
    await expectRefusedUnchanged('GET', `${AGENTS}/${agentId}/guarded-rollouts/agtgrol_nope`, undefined, 404);
    // Rolling back changes main's share too: the editor may not, the admin may.
    await expectRefusedUnchanged('POST', `${AGENTS}/${agentId}/guarded-rollouts/${id}/rollback`, undefined, 403, undefined, testApp.keys.editor);
    okJson(await send('POST', `${AGENTS}/${agentId}/guarded-rollouts/${id}/rollback`));
  });
});

describe('while a rollout runs or is paused, it owns the split', () => {
  it('refuses manual deployments, rollbacks, their previews, another rollout and merges that move traffic: 409 guarded_rollout_in_progress', async () => {
    const { agentId, main, canary, beta } = await agentWithBranches();
    const [first] = await history(agentId);
    const base = `${AGENTS}/${agentId}`;
    okJson(await send('PATCH', `${base}?branch_id=${canary}`, { conversation_config: { agent: { first_message: 'canary' } } }));
    const { guarded_rollout_id: id } = okJson<{ guarded_rollout_id: string }>(await send('POST', `${base}/guarded-rollouts`, rolloutBody(canary)));
    const refusals: [Method, string, unknown][] = [
      ['POST', `${base}/deployments`, split([[main, 50], [canary, 50]])],
      ['POST', `${base}/deployments/preview`, split([[main, 50], [canary, 50]])],
      ['POST', `${base}/deployments/${first.id}/rollback`, undefined],
      ['POST', `${base}/deployments/${first.id}/rollback/preview`, undefined],
      ['POST', `${base}/guarded-rollouts`, rolloutBody(beta)],
      // Archiving the canary would move its 10% to main.
      ['POST', `${base}/branches/${canary}/merge?target_branch_id=${main}`, { archive_source_branch: true, force: true }],
    ];
    for (const status of ['running', 'paused']) {
      if (status === 'paused') okJson(await send('POST', `${base}/guarded-rollouts/${id}/pause`));
      for (const [method, url, payload] of refusals) {
        const response = await expectRefusedUnchanged(method, url, payload, 409, 'guarded_rollout_in_progress');
        expect(response.json().detail.message, `${url} while ${status}`).toContain(id);
      }
    }
    // A merge that moves no traffic (beta has none) goes through.
    okJson(await send('PATCH', `${base}?branch_id=${beta}`, { conversation_config: { agent: { first_message: 'beta' } } }));
    okJson(await send('POST', `${base}/branches/${beta}/merge?target_branch_id=${main}`, { archive_source_branch: true }));

    okJson(await send('POST', `${base}/guarded-rollouts/${id}/rollback`));
    // Free again.
    okJson(await send('POST', `${base}/deployments`, split([[main, 50], [canary, 50]])));
  });
});

describe('pause, resume and rollback', () => {
  it('move the status, record events and audit events, and a rollback restores the split from before at once', async () => {
    const { agentId, main, canary, beta } = await agentWithBranches();
    okJson(await send('POST', `${AGENTS}/${agentId}/deployments`, split([[main, 90], [beta, 10]])));
    const [before] = await history(agentId);
    const base = `${AGENTS}/${agentId}/guarded-rollouts`;
    const { guarded_rollout_id: id } = okJson<{ guarded_rollout_id: string }>(
      await send('POST', base, rolloutBody(canary, { steps: STEPS.slice(0, 2) }), testApp.keys.editor),
    );

    clock += 60_000;
    const paused = okJson<RolloutWire>(await send('POST', `${base}/${id}/pause`, undefined, testApp.keys.editor));
    expect(paused.status).toBe('paused');
    await expectRefusedUnchanged('POST', `${base}/${id}/pause`, undefined, 409, 'guarded_rollout_not_running');
    // The split is kept while paused.
    expect((await history(agentId))[0].traffic_percentage_branch_id_map).toEqual({ [main]: 80, [beta]: 10, [canary]: 10 });

    clock += 60_000;
    const resumed = okJson<RolloutWire>(await send('POST', `${base}/${id}/resume`));
    expect(resumed.status).toBe('running');
    await expectRefusedUnchanged('POST', `${base}/${id}/resume`, undefined, 409, 'guarded_rollout_not_paused');

    clock += 60_000;
    const rolledBack = okJson<RolloutWire>(await send('POST', `${base}/${id}/rollback`, undefined, testApp.keys.editor));
    expect(rolledBack.status).toBe('rolled_back');
    expect(rolledBack.ended_at_unix_secs).toBe(Math.floor(clock / 1000));
    expect(rolledBack.events.map((event) => [event.type, event.actor_kind, event.step])).toEqual([
      ['started', 'user', 0],
      ['paused', 'user', 0],
      ['resumed', 'user', 0],
      ['rolled_back', 'user', 0],
    ]);
    const [active] = await history(agentId);
    expect(rolledBack.events[3].deployment_id).toBe(active.id);
    expect(active).toMatchObject({ is_active: true, traffic_percentage_branch_id_map: { [main]: 90, [beta]: 10 }, guarded_rollout_id: id });
    expect(active.reason).toContain('rolled back');
    // Conversations go back where they were under the deployment from before (same bucket table).
    const tables = await testApp.store.db.selectFrom('deployments').select(['id', 'bucket_table', 'branch_ids']).where('id', 'in', [before.id, active.id]).execute();
    expect(tables[0].bucket_table).toBe(tables[1].bucket_table);
    expect(tables[0].branch_ids).toBe(tables[1].branch_ids);

    for (const action of ['pause', 'resume', 'rollback']) {
      await expectRefusedUnchanged('POST', `${base}/${id}/${action}`, undefined, 409);
    }
    const audit = okJson<{ events: { action: string; actor_kind: string; resource_id: string }[] }>(
      await send('GET', `/v1/convai/audit-events?agent_id=${agentId}`),
    );
    expect(audit.events.filter((event) => event.resource_id === id).map((event) => [event.action, event.actor_kind])).toEqual([
      ['guarded_rollout.rollback', 'user'],
      ['guarded_rollout.resume', 'user'],
      ['guarded_rollout.pause', 'user'],
      ['guarded_rollout.create', 'user'],
    ]);
  });

  it('the official SDK reads a deployment history with a rollout\'s deployments in it', async () => {
    const { agentId, canary } = await agentWithBranches();
    const { guarded_rollout_id: id } = okJson<{ guarded_rollout_id: string }>(await send('POST', `${AGENTS}/${agentId}/guarded-rollouts`, rolloutBody(canary)));
    okJson(await send('POST', `${AGENTS}/${agentId}/guarded-rollouts/${id}/rollback`));
    const client = sdk(await listen(testApp), testApp.keys.admin);
    const listed = await client.conversationalAi.agents.deployments.list(agentId);
    expect(listed.results).toHaveLength(3);
    expect(listed.results.map((item) => item.source)).toEqual(['manual', 'manual', 'manual']);
    expect((listed.results[0] as unknown as Record<string, unknown>).guarded_rollout_id).toBe(id);
  });
});
