import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { injectAs, okJson } from '../support/test-app.js';
import { type Dashboard, startDashboard } from './support.js';

// The results screen (issue 20) in chromium against a real server: metric tiles with the decision
// the API computed, the traffic check, and a guarded rollout started, paused and rolled back from
// the screen, each checked against what the API then holds.

let dashboard: Dashboard;
beforeAll(async () => {
  dashboard = await startDashboard();
});
afterAll(async () => {
  await dashboard?.close();
});

const AGENTS = '/v1/convai/agents';

async function post<T>(path: string, body: unknown): Promise<T> {
  return okJson<T>(await injectAs(dashboard.testApp, 'POST', path, dashboard.testApp.keys.admin, body));
}

async function get<T>(path: string): Promise<T> {
  return okJson<T>(await injectAs(dashboard.testApp, 'GET', path, dashboard.testApp.keys.admin));
}

/** An agent split 50/50 between main and `variant`, with a binary event metric `converted`. */
async function experiment(name: string): Promise<{ agentId: string; main: string; variant: string }> {
  const agentId = (await post<{ agent_id: string }>(`${AGENTS}/create`, { conversation_config: {}, name })).agent_id;
  const head = await get<{ version_id: string; main_branch_id: string }>(`${AGENTS}/${agentId}`);
  const variant = (await post<{ created_branch_id: string }>(`${AGENTS}/${agentId}/branches`, { parent_version_id: head.version_id, name: 'variant', description: '' })).created_branch_id;
  const share = (branchId: string) => ({ branch_id: branchId, deployment_strategy: { type: 'percentage', traffic_percentage: 50 } });
  await post(`${AGENTS}/${agentId}/deployments`, { deployment_request: { requests: [share(head.main_branch_id), share(variant)] } });
  await post(`${AGENTS}/${agentId}/metrics`, { metric_key: 'converted', name: 'Converted', kind: 'binary', higher_is_better: true, source: { type: 'event' } });
  return { agentId, main: head.main_branch_id, variant };
}

/** 400 conversations per branch, reported by a runtime; `rates` of them convert on main and on the variant. */
async function record(agentId: string, main: string, variant: string, rates: [number, number]) {
  for (const [index, branchId] of [main, variant].entries()) {
    const ids = Array.from({ length: 400 }, (_, i) => `conv_${index}_${i}`);
    await post(`${AGENTS}/${agentId}/exposures`, { exposures: ids.map((conversation_id) => ({ conversation_id, branch_id: branchId })) });
    const events = ids.map((conversation_id, i) => ({ conversation_id, metric_key: 'converted', value: i < rates[index] * 400 ? 1 : 0 }));
    await post(`${AGENTS}/${agentId}/outcomes`, { events });
  }
}

describe('results', () => {
  test('a variant that converts 70% against 30% on main: its tile says better, with the difference and its interval; traffic matches the split', async () => {
    const { agentId, main, variant } = await experiment('Converting');
    await record(agentId, main, variant, [0.3, 0.7]);
    const api = await get<{ metrics: { metric_key: string; comparisons: { branch_id: string; decision: string; difference: number }[] }[] }>(
      `${AGENTS}/${agentId}/experiment-results`,
    );
    const converted = api.metrics.find((metric) => metric.metric_key === 'converted')!;
    expect(converted.comparisons).toEqual([expect.objectContaining({ branch_id: variant, decision: 'better' })]);

    const page = await dashboard.signedInPage('viewer');
    await page.goto(`/agents/${agentId}`);
    await page.getByRole('link', { name: 'Results' }).click();
    await page.getByRole('heading', { name: 'Results', level: 1 }).waitFor();
    const tile = page.getByRole('article', { name: 'Converted' });
    await tile.waitFor();
    await expect.poll(() => tile.locator('.comparison-head').innerText()).toContain('variant vs Main: +40 pts');
    expect(await tile.locator('.decision').innerText()).toBe('better');
    expect(await tile.locator('.band-range').getAttribute('class')).toContain('is-better');
    // Rates per branch, as the API computed them.
    const rows = await tile.locator('tbody tr').allInnerTexts();
    expect(rows.map((row) => row.replace(/\s+/g, ' ').trim())).toEqual([expect.stringMatching(/^Main baseline 400 30% /), expect.stringMatching(/^variant 400 70% /)]);
    // Built-in metrics with nothing recorded say so rather than deciding.
    expect(await page.getByRole('article', { name: 'Call successful' }).locator('.decision').innerText()).toBe('not yet clear');

    const traffic = page.getByRole('table', { name: 'Exposures per branch' });
    expect((await traffic.locator('tbody tr').allInnerTexts()).map((row) => row.replace(/\s+/g, ' ').trim())).toEqual([
      'Main 400 50% 50% 100%',
      'variant 400 50% 50% 100%',
    ]);
    expect(await page.locator('.srm').innerText()).toContain('Traffic matches the deployed split');
  });

  test('a guarded rollout started from the screen deploys its first step; pause and roll back reach the API and the history', async () => {
    const { agentId, main, variant } = await experiment('Guarded');
    await post(`${AGENTS}/${agentId}/deployments`, {
      deployment_request: { requests: [{ branch_id: main, deployment_strategy: { type: 'percentage', traffic_percentage: 100 } }] },
    });

    const page = await dashboard.signedInPage('admin');
    // The branches arrive last: the form must not start with a branch chosen from an empty list.
    await page.route(
      (url) => url.pathname.endsWith('/branches'),
      async (route) => {
        await new Promise((resolve) => setTimeout(resolve, 400));
        await route.fallback();
      },
    );
    await page.goto(`/agents/${agentId}/results`);
    const form = page.getByRole('form', { name: 'Start a guarded rollout' });
    await form.waitFor();
    await form.getByLabel('Steps (% of traffic)').fill('10, 50, 100');
    await form.getByRole('checkbox', { name: 'Converted' }).check();
    await form.getByLabel('Largest regression allowed for Converted').fill('0.02');
    await form.getByRole('button', { name: 'Start' }).click();

    const card = page.getByRole('article', { name: 'Guarded rollout in progress' });
    await card.waitFor();
    expect(await card.locator('[aria-current="step"]').innerText()).toContain('10%');
    const rollouts = await get<{ guarded_rollouts: { guarded_rollout_id: string; status: string; steps: unknown[]; guard_metrics: unknown[] }[] }>(`${AGENTS}/${agentId}/guarded-rollouts`);
    expect(rollouts.guarded_rollouts).toHaveLength(1);
    // Call success is guarded unless unticked; the metric ticked here is added with its tolerance.
    expect(rollouts.guarded_rollouts[0]).toMatchObject({
      status: 'running',
      guard_metrics: [
        { metric_key: 'call_successful', max_regression: 0 },
        { metric_key: 'converted', max_regression: 0.02 },
      ],
    });
    expect(rollouts.guarded_rollouts[0].steps).toHaveLength(3);
    const live = async () =>
      (await get<{ results: { is_active: boolean; traffic_percentage_branch_id_map: Record<string, number> }[] }>(`${AGENTS}/${agentId}/deployments`)).results.find((item) => item.is_active)!
        .traffic_percentage_branch_id_map;
    expect(await live()).toEqual({ [main]: 90, [variant]: 10 });

    await card.getByRole('button', { name: 'Pause' }).click();
    await card.locator('.rollout-paused').waitFor();
    await card.getByRole('button', { name: 'Resume' }).waitFor();
    expect((await get<{ status: string }>(`${AGENTS}/${agentId}/guarded-rollouts/${rollouts.guarded_rollouts[0].guarded_rollout_id}`)).status).toBe('paused');

    await card.getByRole('button', { name: 'Roll back' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Roll back' }).click();
    await page.getByRole('table', { name: 'Earlier guarded rollouts' }).getByText('rolled back').waitFor();
    expect(await live()).toEqual({ [main]: 100 });
    // The form is back: nothing is in progress.
    await page.getByRole('form', { name: 'Start a guarded rollout' }).waitFor();
  });
});
