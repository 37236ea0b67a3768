import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { AUDIT_ACTIONS as SERVER_ACTIONS } from '../../src/features/audit/audit.events.js';
import { AUDIT_ACTIONS as DASHBOARD_ACTIONS } from '../../web/src/api/audit.js';
import { samplingTolerance } from '../support/sampling.js';
import { injectAs, okJson, userIdsByRole } from '../support/test-app.js';
import { type Dashboard, startDashboard } from './support.js';

// The deploy screen (split editor, the server's movement preview, history and rollback), the audit
// log and the procedures screen, in chromium against a real server: each test asserts what the
// user sees and what the API then holds.

let dashboard: Dashboard;
beforeAll(async () => {
  dashboard = await startDashboard();
});
afterAll(async () => {
  await dashboard?.close();
});

const AGENTS = '/v1/convai/agents';

async function agentWithCanary(name: string): Promise<{ agentId: string; main: string; canary: string }> {
  const { testApp } = dashboard;
  const key = testApp.keys.admin;
  const agentId = okJson<{ agent_id: string }>(await injectAs(testApp, 'POST', `${AGENTS}/create`, key, { conversation_config: {}, name })).agent_id;
  const head = okJson<{ version_id: string; main_branch_id: string }>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}`, key));
  const canary = okJson<{ created_branch_id: string }>(
    await injectAs(testApp, 'POST', `${AGENTS}/${agentId}/branches`, key, { parent_version_id: head.version_id, name: 'canary', description: '' }),
  ).created_branch_id;
  return { agentId, main: head.main_branch_id, canary };
}

/** The branch each conversation is routed to, by routed reads through the API. */
async function routed(agentId: string, conversations: string[]): Promise<string[]> {
  const read = async (conversation: string) => {
    const response = await fetch(`${dashboard.url}${AGENTS}/${agentId}?conversation_id=${conversation}`, { headers: { 'xi-api-key': dashboard.testApp.keys.admin } });
    expect(response.status).toBe(200);
    return ((await response.json()) as { branch_id: string }).branch_id;
  };
  const branches: string[] = [];
  for (let start = 0; start < conversations.length; start += 50) branches.push(...(await Promise.all(conversations.slice(start, start + 50).map(read))));
  return branches;
}

async function activeSplit(agentId: string): Promise<Record<string, number>> {
  const history = okJson<{ results: { is_active: boolean; traffic_percentage_branch_id_map: Record<string, number> }[] }>(
    await injectAs(dashboard.testApp, 'GET', `${AGENTS}/${agentId}/deployments`, dashboard.testApp.keys.admin),
  );
  return history.results.find((item) => item.is_active)!.traffic_percentage_branch_id_map;
}

describe('deploy', () => {
  test('a 90/10 deploy: Deploy waits for 100%, the preview says main→canary 10%, routing then moves just that; a rollback restores the split', async () => {
    const { agentId, main, canary } = await agentWithCanary('Deployed');
    const conversations = Array.from({ length: 400 }, (_, index) => `conv_dash_${index}`);
    expect(new Set(await routed(agentId, conversations))).toEqual(new Set([main]));

    const page = await dashboard.signedInPage('admin');
    await page.goto(`/agents/${agentId}/deploy`);
    await page.getByRole('heading', { name: 'Deploy', level: 1 }).waitFor();
    await expect.poll(() => page.getByRole('img', { name: /Live split/ }).getAttribute('aria-label')).toBe('Live split: Main 100%');

    const deployButton = page.getByRole('button', { name: 'Deploy', exact: true });
    expect(await deployButton.isDisabled(), 'the live split is not deployed again').toBe(true);
    // By keyboard: the slider moves a share a point at a time, and the total says what is wrong.
    await page.getByRole('slider', { name: 'canary share slider' }).focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.getByRole('spinbutton', { name: 'canary share (%)' }).inputValue()).toBe('2');
    expect(await page.locator('#deploy-blocked').textContent()).toBe('The shares total 102%: 2% too much. A split must total exactly 100%.');
    expect(await deployButton.isDisabled()).toBe(true);
    await page.getByRole('spinbutton', { name: 'canary share (%)' }).fill('5');
    await page.getByRole('spinbutton', { name: 'Main share (%)' }).fill('90');
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Total' }).textContent()).toContain('95%');
    expect(await deployButton.isDisabled(), 'Deploy at 95%').toBe(true);
    expect(await page.locator('#deploy-blocked').textContent()).toBe('The shares total 95%: 5% is not assigned. A split must total exactly 100%.');
    expect(await deployButton.getAttribute('aria-describedby')).toBe('deploy-blocked');

    await page.getByRole('spinbutton', { name: 'canary share (%)' }).fill('10');
    await expect.poll(() => deployButton.isDisabled()).toBe(false);
    const movement = page.getByRole('region', { name: 'If you deploy this split' });
    await expect.poll(() => movement.locator('.movement-summary').textContent()).toBe('10% of conversations change branch; the rest stay where they are.');
    const rows = await movement.locator('tbody tr').allTextContents();
    expect(rows).toEqual(['Main→ canary10%']);
    // The proposed split is in the URL: a link shows it to someone else.
    expect(new URL(page.url()).searchParams.get('split')).toBe(`${main}:90,${canary}:10`);

    await deployButton.click();
    await expect.poll(() => page.locator('.notice-success').allTextContents()).toContain('Deployed: Main 90%, canary 10%×');
    expect(await activeSplit(agentId)).toEqual({ [main]: 90, [canary]: 10 });
    await expect.poll(() => page.getByRole('img', { name: /Live split/ }).getAttribute('aria-label')).toBe('Live split: Main 90%, canary 10%');
    expect(new URL(page.url()).searchParams.get('split')).toBeNull();

    // What routing does now is what the preview said: only main→canary, about 10% of conversations.
    const after = await routed(agentId, conversations);
    const moved = after.filter((branch, index) => branch !== main);
    expect(new Set(moved)).toEqual(new Set([canary]));
    expect(Math.abs((moved.length / conversations.length) * 100 - 10)).toBeLessThan(samplingTolerance(10, conversations.length));

    // Rollback: one click on the earlier deployment, confirmed.
    const history = page.getByRole('table', { name: 'Deployment history, newest first' });
    await expect.poll(() => history.locator('tbody tr').count()).toBe(2);
    await history.getByRole('button', { name: 'Roll back to Main 100%' }).click();
    const dialog = page.getByRole('dialog', { name: 'Roll back to this split?' });
    const rollbackMovement = dialog.getByRole('region', { name: 'If you roll back' });
    await expect.poll(() => rollbackMovement.locator('.movement-summary').textContent()).toBe('10% of conversations change branch; the rest stay where they are.');
    expect(await rollbackMovement.locator('tbody tr').allTextContents()).toEqual(['canary→ Main10%']);
    await dialog.getByRole('button', { name: 'Roll back' }).click();
    await expect.poll(() => dialog.isVisible()).toBe(false);
    await expect.poll(() => page.locator('.notice-success').allTextContents()).toContain('Rolled back to Main 100%×');
    expect(await activeSplit(agentId)).toEqual({ [main]: 100 });
    await expect.poll(() => history.locator('tbody tr').count()).toBe(3);
    expect(new Set(await routed(agentId, conversations))).toEqual(new Set([main]));
  });

  test('a shared link opens the proposed split; a viewer sees the deployment but no editor', async () => {
    const { agentId, main, canary } = await agentWithCanary('Shared split');
    const page = await dashboard.signedInPage('editor');
    await page.goto(`/agents/${agentId}/deploy?split=${main}:75,${canary}:25`);
    await expect.poll(() => page.getByRole('spinbutton', { name: 'canary share (%)' }).inputValue()).toBe('25');
    const movement = page.getByRole('region', { name: 'If you deploy this split' });
    await expect.poll(() => movement.locator('.movement-summary').textContent()).toBe('25% of conversations change branch; the rest stay where they are.');

    // A protected branch: the preview already says what the deployment would answer the editor.
    okJson(await injectAs(dashboard.testApp, 'PATCH', `${AGENTS}/${agentId}/branches/${canary}`, dashboard.testApp.keys.admin, { protection_status: 'admin_perms_required' }));
    await page.reload();
    await expect.poll(() => movement.getByRole('alert').textContent()).toBe('Branch "canary" is protected: changing its share of traffic requires the admin role.');
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    await expect.poll(() => page.getByRole('alert').filter({ hasText: 'The split was not deployed' }).textContent()).toContain('requires the admin role');
    expect(await activeSplit(agentId)).toEqual({ [main]: 100 });

    const viewer = await dashboard.signedInPage('viewer');
    await viewer.goto(`/agents/${agentId}/deploy`);
    await viewer.getByText('Your role (viewer) can see deployments but not change them').waitFor();
    expect(await viewer.getByRole('button', { name: 'Deploy', exact: true }).count()).toBe(0);
  });

  test('readable at phone width: no sideways scroll of the deploy, audit or procedures page', async () => {
    const { agentId, canary } = await agentWithCanary('Phone');
    const page = await dashboard.signedInPage('admin', { width: 390, height: 844 });
    const pageWidth = () => page.evaluate(() => document.documentElement.scrollWidth);
    await page.goto(`/agents/${agentId}/deploy`);
    await page.getByRole('spinbutton', { name: 'Main share (%)' }).waitFor();
    expect(await pageWidth()).toBeLessThanOrEqual(390);
    await page.goto('/audit');
    await page.getByRole('table', { name: 'Audit events, newest first' }).waitFor();
    expect(await pageWidth()).toBeLessThanOrEqual(390);
    await page.goto(`/agents/${agentId}/branches/${canary}/procedures`);
    await page.getByRole('form', { name: 'New procedure' }).waitFor();
    expect(await pageWidth()).toBeLessThanOrEqual(390);
  });
});

describe('audit log', () => {
  test('lists the deployments and the rollback of an agent, filtered by agent, action and user, as the API does', async () => {
    const { testApp } = dashboard;
    const { agentId, main, canary } = await agentWithCanary('Audited');
    const split = (shares: [string, number][]) => ({
      deployment_request: { requests: shares.map(([branch_id, traffic_percentage]) => ({ branch_id, deployment_strategy: { type: 'percentage', traffic_percentage } })) },
    });
    okJson(await injectAs(testApp, 'POST', `${AGENTS}/${agentId}/deployments`, testApp.keys.admin, split([[main, 90], [canary, 10]])));
    okJson(await injectAs(testApp, 'POST', `${AGENTS}/${agentId}/deployments`, testApp.keys.editor, split([[main, 80], [canary, 20]])));
    const history = okJson<{ results: { id: string }[] }>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}/deployments`, testApp.keys.admin));
    okJson(await injectAs(testApp, 'POST', `${AGENTS}/${agentId}/deployments/${history.results[1].id}/rollback`, testApp.keys.admin));
    const users = await userIdsByRole(testApp);

    const page = await dashboard.signedInPage('admin');
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.waitForURL('**/audit');
    const filters = page.getByRole('search', { name: 'Filter the audit log' });
    await filters.getByRole('textbox', { name: 'Agent' }).fill(agentId);
    await filters.getByRole('button', { name: 'Filter', exact: true }).click();
    await page.waitForURL(`**/audit?agent=${agentId}`);
    const table = page.getByRole('table', { name: 'Audit events, newest first' });
    const actions = () => table.locator('tbody tr td:nth-child(2)').allTextContents();
    await expect.poll(actions).toEqual(['deployment.rollback', 'deployment.create', 'deployment.create', 'branch.create', 'agent.create']);

    await filters.getByRole('combobox', { name: 'Action' }).selectOption('deployment.create');
    await filters.getByRole('button', { name: 'Filter', exact: true }).click();
    await expect.poll(actions).toEqual(['deployment.create', 'deployment.create']);
    expect(new URL(page.url()).searchParams.get('action')).toBe('deployment.create');

    // A user's name filters by that user: the editor's deployment is the one left.
    await table.getByRole('button', { name: 'Show events by editor-user' }).click();
    await expect.poll(actions).toEqual(['deployment.create']);
    expect(new URL(page.url()).searchParams.get('user')).toBe(users.editor);
    const api = okJson<{ events: { action: string }[] }>(
      await injectAs(testApp, 'GET', `/v1/convai/audit-events?agent_id=${agentId}&action=deployment.create&actor_user_id=${users.editor}`, testApp.keys.admin),
    );
    expect(api.events.map((event) => event.action)).toEqual(['deployment.create']);

    // A time after every event: nothing left, and the page says so.
    await filters.getByLabel('Since').fill('2999-01-01T00:00');
    await filters.getByRole('button', { name: 'Filter', exact: true }).click();
    await table.getByText('No event matches these filters.').waitFor();
    await filters.getByRole('button', { name: 'Clear filters' }).click();
    await page.waitForURL('**/audit');
    await expect.poll(async () => (await actions()).length).toBeGreaterThan(5);
  });

  test('pages through the log and through a deployment history, the page in the URL', async () => {
    const { testApp } = dashboard;
    const { agentId, main, canary } = await agentWithCanary('Many deployments');
    for (let index = 0; index < 51; index++) {
      const share = index % 2 === 0 ? 10 : 20;
      okJson(
        await injectAs(testApp, 'POST', `${AGENTS}/${agentId}/deployments`, testApp.keys.admin, {
          deployment_request: {
            requests: [
              { branch_id: main, deployment_strategy: { type: 'percentage', traffic_percentage: 100 - share } },
              { branch_id: canary, deployment_strategy: { type: 'percentage', traffic_percentage: share } },
            ],
          },
        }),
      );
    }
    const page = await dashboard.signedInPage('admin');
    await page.goto(`/audit?agent=${agentId}&action=deployment.create`);
    const table = page.getByRole('table', { name: 'Audit events, newest first' });
    await expect.poll(() => table.locator('tbody tr').count()).toBe(50);
    await page.getByRole('button', { name: 'Older' }).click();
    await expect.poll(() => table.locator('tbody tr').count()).toBe(1);
    expect(new URL(page.url()).searchParams.get('cursor')).toBeTruthy();
    expect(await page.getByRole('button', { name: 'Older' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Newer' }).click();
    await expect.poll(() => table.locator('tbody tr').count()).toBe(50);

    // 52 deployments (the first is the agent's own), 10 a page: the last page holds 2.
    await page.goto(`/agents/${agentId}/deploy?page=6`);
    const history = page.getByRole('table', { name: 'Deployment history, newest first' });
    await expect.poll(() => history.locator('tbody tr').count()).toBe(2);
    await page.getByText('Page 6 of 6 · 52 deployments').waitFor();
    await page.getByRole('button', { name: 'Newer' }).click();
    await page.waitForURL(`**/agents/${agentId}/deploy?page=5`);
    await expect.poll(() => history.locator('tbody tr').count()).toBe(10);
  });

  test('a non-admin is told why the log is not shown', async () => {
    const page = await dashboard.signedInPage('editor');
    await page.goto('/audit');
    await page.getByRole('heading', { name: 'Only admins can read the audit log' }).waitFor();
    expect(await page.getByRole('table').count()).toBe(0);
  });

  test("the dashboard's action filter lists the server's actions", () => {
    expect([...DASHBOARD_ACTIONS]).toEqual([...SERVER_ACTIONS]);
  });
});

describe('procedures', () => {
  test('a procedure created, drafted, published; then a draft discarded and a removal published', async () => {
    const { testApp } = dashboard;
    const { agentId, canary } = await agentWithCanary('With procedures');
    const base = `${AGENTS}/${agentId}/branches/${canary}/procedures`;
    const published = async () =>
      okJson<{ procedures?: Record<string, { version_id: string; name: string }> }>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}?branch_id=${canary}`, testApp.keys.admin)).procedures ?? {};

    const page = await dashboard.signedInPage('editor');
    await page.goto(`/agents/${agentId}/branches/${canary}/procedures`);
    await page.getByText('No procedures on this branch yet.').waitFor();
    const create = page.getByRole('form', { name: 'New procedure' });
    await create.getByRole('textbox', { name: 'Name' }).fill('Refunds');
    await create.getByRole('textbox', { name: 'Trigger' }).fill('The caller wants a refund');
    await create.getByRole('button', { name: 'Create procedure' }).click();
    await expect.poll(() => page.locator('.notice-success').allTextContents()).toContain('Procedure “Refunds” created as your draft×');
    const table = page.getByRole('table', { name: 'Procedures of branch canary' });
    await expect.poll(() => table.locator('tbody tr').allTextContents()).toEqual(['RefundsFree formnew · unpublished draftThe caller wants a refund']);
    const procedureId = new URL(page.url()).searchParams.get('procedure')!;
    expect(procedureId).toMatch(/^agtprc_/);

    const editor = page.getByRole('region', { name: /^Refunds/ });
    await editor.getByRole('textbox', { name: 'Content' }).fill('Ask for the order number, then confirm the amount.');
    await editor.getByRole('button', { name: 'Save draft' }).click();
    await expect.poll(() => page.locator('.notice-success').allTextContents()).toContain('Draft of “Refunds” saved×');
    const draft = okJson<{ content: string }>(await injectAs(testApp, 'GET', `${base}/${procedureId}/draft`, testApp.keys.editor));
    expect(draft.content).toBe('Ask for the order number, then confirm the amount.');
    expect(await published()).toEqual({});

    await page.getByRole('button', { name: 'Publish 1 draft' }).click();
    const dialog = page.getByRole('dialog', { name: 'Publish your drafts on canary?' });
    await dialog.getByRole('textbox', { name: 'Description' }).fill('Refunds procedure');
    await dialog.getByRole('button', { name: 'Publish' }).click();
    await expect.poll(async () => (await page.locator('.notice-success').allTextContents()).some((text) => text.startsWith('Published as version agtvrsn_'))).toBe(true);
    await expect.poll(() => table.locator('tbody tr td:nth-child(3)').allTextContents()).toEqual(['published']);
    const map = await published();
    expect(Object.keys(map)).toEqual([procedureId]);
    const head = okJson<{ content: string }>(await injectAs(testApp, 'GET', `${base}/${procedureId}`, testApp.keys.admin));
    expect(head.content).toBe('Ask for the order number, then confirm the amount.');
    const versions = okJson<{ versions: { version_description?: string }[] }>(
      await injectAs(testApp, 'GET', `${AGENTS}/${agentId}/branches/${canary}/versions`, testApp.keys.admin),
    );
    expect(JSON.stringify(versions)).toContain('Refunds procedure');

    // A second draft, discarded: the published content comes back, on screen and in the API.
    await editor.getByRole('textbox', { name: 'Content' }).fill('Something else');
    await editor.getByRole('button', { name: 'Save draft' }).click();
    await expect.poll(() => table.locator('tbody tr td:nth-child(3)').allTextContents()).toEqual(['your draft']);
    await editor.getByRole('button', { name: 'Discard draft' }).click();
    await page.getByRole('dialog', { name: 'Discard your draft of “Refunds”?' }).getByRole('button', { name: 'Discard draft' }).click();
    await expect.poll(() => table.locator('tbody tr td:nth-child(3)').allTextContents()).toEqual(['published']);
    await expect.poll(() => editor.getByRole('textbox', { name: 'Content' }).inputValue()).toBe('Ask for the order number, then confirm the amount.');
    const afterDiscard = okJson<{ content: string }>(await injectAs(testApp, 'GET', `${base}/${procedureId}/draft`, testApp.keys.editor));
    expect(afterDiscard.content).toBe('Ask for the order number, then confirm the amount.');

    // Removing stages the removal; publishing applies it.
    await editor.getByRole('button', { name: 'Remove' }).click();
    await page.getByRole('dialog', { name: 'Remove “Refunds”?' }).getByRole('button', { name: 'Remove' }).click();
    await expect.poll(() => table.locator('tbody tr td:nth-child(3)').allTextContents()).toEqual(['removal staged']);
    expect(Object.keys(await published())).toEqual([procedureId]);
    await page.getByRole('button', { name: 'Publish 1 draft' }).click();
    await dialog.getByRole('button', { name: 'Publish' }).click();
    await table.getByText('No procedures on this branch yet.').waitFor();
    expect(Object.keys(await published())).toEqual([]);
    expect(await page.getByRole('button', { name: 'Publish', exact: true }).isDisabled()).toBe(true);
  });

  test('a publish the server refuses shows each procedure\'s errors and publishes nothing', async () => {
    const { testApp } = dashboard;
    const { agentId, canary } = await agentWithCanary('Invalid procedure');
    const page = await dashboard.signedInPage('editor');
    await page.goto(`/agents/${agentId}/branches/${canary}/procedures`);
    const create = page.getByRole('form', { name: 'New procedure' });
    await create.getByRole('textbox', { name: 'Name' }).fill('Order status');
    await create.getByRole('combobox', { name: 'Type' }).selectOption('deterministic');
    await create.getByRole('button', { name: 'Create procedure' }).click();
    const editor = page.getByRole('region', { name: /^Order status/ });
    const content = editor.getByRole('textbox', { name: 'Content' });
    await content.fill('{"steps": [');
    await editor.getByText(/^Not valid JSON/).waitFor();
    expect(await content.getAttribute('aria-invalid')).toBe('true');
    await content.fill('{"steps": []}');
    await editor.getByRole('button', { name: 'Save draft' }).click();
    await expect.poll(() => page.locator('.notice-success').allTextContents()).toContain('Draft of “Order status” saved×');

    await page.getByRole('button', { name: 'Publish 1 draft' }).click();
    const dialog = page.getByRole('dialog', { name: 'Publish your drafts on canary?' });
    await dialog.getByRole('button', { name: 'Publish' }).click();
    await expect
      .poll(() => dialog.getByRole('alert').textContent())
      .toBe('Structured procedures failed validation. Order status: Procedure requires at least one step');
    const agent = okJson<{ procedures?: Record<string, unknown> }>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}?branch_id=${canary}`, testApp.keys.admin));
    expect(agent.procedures ?? {}).toEqual({});
  });
});
