import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import type { Role } from '../../src/domain/caller.js';
import { injectAs, okJson } from '../support/test-app.js';
import { type Dashboard, startDashboard } from './support.js';

// The agent page (branches table and its row actions), the version graph, a version's page
// (restore, branch from here) and the diff of two versions, in chromium against a real server.

let dashboard: Dashboard;
beforeAll(async () => {
  dashboard = await startDashboard();
});
afterAll(async () => {
  await dashboard?.close();
});

interface ListedBranch {
  id: string;
  name: string;
  is_archived: boolean;
  protection_status: string;
  current_live_percentage: number;
  commits_ahead: number | null;
  commits_behind: number | null;
  draft_exists: boolean;
  draft_is_behind_tip: boolean;
  head_version_id: string;
  head_seq_no_in_branch: number;
}
interface Version {
  id: string;
  branch_id: string;
  seq_no_in_branch: number;
  parents: { in_branch_parent_id: string | null; out_of_branch_parent_id: string | null; merged_from_version_id: string | null };
}

/** A call through the public API as `role` (setup, and what the API holds after a flow). */
async function call<T>(role: Role, method: 'GET' | 'POST' | 'PATCH', url: string, body?: unknown): Promise<T> {
  return okJson<T>(await injectAs(dashboard.testApp, method, url, dashboard.testApp.keys[role], body));
}

async function createAgent(name: string, prompt = 'You are a support agent.'): Promise<{ agentId: string; mainId: string; firstVersionId: string }> {
  const { agent_id: agentId } = await call<{ agent_id: string }>('admin', 'POST', '/v1/convai/agents/create', {
    name,
    conversation_config: { agent: { first_message: 'Hello', prompt: { prompt } } },
  });
  const agent = await call<{ main_branch_id: string; version_id: string }>('admin', 'GET', `/v1/convai/agents/${agentId}`);
  return { agentId, mainId: agent.main_branch_id, firstVersionId: agent.version_id };
}

async function branchFrom(agentId: string, versionId: string, name: string): Promise<string> {
  const created = await call<{ created_branch_id: string }>('admin', 'POST', `/v1/convai/agents/${agentId}/branches`, { parent_version_id: versionId, name, description: '' });
  return created.created_branch_id;
}

async function commit(agentId: string, branchId: string, agent: Record<string, unknown>, role: Role = 'admin'): Promise<string> {
  const committed = await call<{ version_id: string }>(role, 'PATCH', `/v1/convai/agents/${agentId}?branch_id=${branchId}`, { conversation_config: { agent } });
  return committed.version_id;
}

async function branchList(agentId: string, role: Role = 'admin'): Promise<ListedBranch[]> {
  return (await call<{ results: ListedBranch[] }>(role, 'GET', `/v1/convai/agents/${agentId}/branches?include_archived=true&include_commit_status=true`)).results;
}

async function pageAt(role: Role, url: string, viewport?: { width: number; height: number }): Promise<Page> {
  const page = await dashboard.signedInPage(role, viewport);
  await page.goto(url);
  return page;
}

/** Where an SVG path of the graph (M, V and C commands) starts and ends. */
function startOf(d: string): number[] {
  return [...d.matchAll(/-?\d+(?:\.\d+)?/g)].slice(0, 2).map(Number);
}
function endOf(d: string): number[] {
  let x = 0;
  let y = 0;
  for (const [, command, args] of d.matchAll(/([MVC])([^MVC]*)/g)) {
    const numbers = args.trim().split(/[\s,]+/).map(Number);
    if (command === 'V') y = numbers[0];
    else [x, y] = numbers.slice(-2);
  }
  return [x, y];
}

const rowOf = (page: Page, name: string) => page.getByRole('row').filter({ has: page.getByText(name, { exact: true }) });
const notices = (page: Page) => page.locator('.notices');

describe('the agent page', () => {
  test('the branches table shows live %, ahead/behind and your draft as the API reports them, readable at phone width', async () => {
    const { agentId, mainId, firstVersionId } = await createAgent('Table agent');
    const feature = await branchFrom(agentId, firstVersionId, 'feature');
    const stale = await branchFrom(agentId, firstVersionId, 'stale');
    await commit(agentId, feature, { first_message: 'Feature hello' });
    await commit(agentId, mainId, { first_message: 'Main hello 2' });
    await commit(agentId, mainId, { first_message: 'Main hello 3' });
    // The admin's drafts: on feature (up to date), on stale (then a commit lands on stale: behind).
    const draft = { conversation_config: { agent: { first_message: 'draft' } }, platform_settings: {}, workflow: {}, name: 'Table agent' };
    await call('admin', 'POST', `/v1/convai/agents/${agentId}/drafts?branch_id=${feature}`, draft);
    await call('admin', 'POST', `/v1/convai/agents/${agentId}/drafts?branch_id=${stale}`, draft);
    await commit(agentId, stale, { first_message: 'Stale 2' }, 'editor');
    const split = (branchId: string, share: number) => ({ branch_id: branchId, deployment_strategy: { type: 'percentage', traffic_percentage: share } });
    await call('admin', 'POST', `/v1/convai/agents/${agentId}/deployments`, { deployment_request: { requests: [split(mainId, 90), split(feature, 10)] } });

    const listed = new Map((await branchList(agentId)).map((branch) => [branch.name, branch]));
    // A branch's first version counts as ahead (as `git rev-list --count`).
    expect(listed.get('feature')).toMatchObject({ current_live_percentage: 10, commits_ahead: 2, commits_behind: 2, draft_exists: true, draft_is_behind_tip: false });
    expect(listed.get('stale')).toMatchObject({ current_live_percentage: 0, commits_ahead: 2, commits_behind: 2, draft_exists: true, draft_is_behind_tip: true });

    const page = await pageAt('admin', `/agents/${agentId}`);
    await page.getByRole('heading', { name: 'Table agent' }).waitFor();
    const cell = (name: string, column: string) => rowOf(page, name).locator(`[data-cell="${column}"]`);
    await expect.poll(() => cell('feature', 'live').textContent()).toBe('10%');
    expect(await rowOf(page, 'Main').locator('[data-cell="live"]').textContent()).toBe('90%');
    expect(await cell('stale', 'live').textContent()).toBe('0%');
    expect(await cell('feature', 'ahead-behind').textContent()).toBe('2 ahead · 2 behind');
    expect(await cell('stale', 'ahead-behind').textContent()).toBe('2 ahead · 2 behind');
    expect(await cell('feature', 'draft').textContent()).toBe('up to date');
    expect(await cell('stale', 'draft').textContent()).toBe('behind the head');
    expect(await rowOf(page, 'Main').locator('[data-cell="draft"]').textContent()).toBe('none');
    // The head and Compare: the feature's head against main's head.
    expect(await rowOf(page, 'feature').getByRole('link', { name: '#2' }).getAttribute('href')).toBe(`/agents/${agentId}/versions/${listed.get('feature')!.head_version_id}`);
    expect(await rowOf(page, 'feature').getByRole('link', { name: 'Compare feature with main' }).getAttribute('href')).toBe(
      `/agents/${agentId}/diff?from=${listed.get('Main')!.head_version_id}&to=${listed.get('feature')!.head_version_id}`,
    );
    expect(await rowOf(page, 'feature').getByRole('link', { name: 'Merge feature into main' }).getAttribute('href')).toBe(`/agents/${agentId}/branches/${feature}/merge?into=${mainId}`);
    // The feature serves 10%: archiving it is off, and says why.
    const archiveFeature = rowOf(page, 'feature').getByRole('button', { name: /^Archive feature/ });
    expect(await archiveFeature.isDisabled()).toBe(true);
    expect(await archiveFeature.getAttribute('title')).toBe('It serves live traffic: deploy it to 0% first.');

    const phone = await pageAt('admin', `/agents/${agentId}`, { width: 390, height: 800 });
    await phone.getByRole('heading', { name: 'Table agent' }).waitFor();
    await expect.poll(() => phone.locator('[data-cell="live"]').count()).toBe(3);
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  });

  test('archive and protect through the row actions; an editor sees why Protect is off and the refusal of a protected branch', async () => {
    const { agentId, firstVersionId } = await createAgent('Actions agent');
    const stale = await branchFrom(agentId, firstVersionId, 'stale');
    const page = await pageAt('admin', `/agents/${agentId}`);
    await rowOf(page, 'stale').getByRole('button', { name: 'Protect stale' }).click();
    await expect.poll(() => notices(page).textContent()).toContain('Branch “stale” protected');
    await expect.poll(() => rowOf(page, 'stale').locator('[data-cell="protection"]').textContent()).toBe('admins only');
    expect((await branchList(agentId)).find((branch) => branch.id === stale)!.protection_status).toBe('admin_perms_required');

    // An editor: Protect is off and says why; archiving the protected branch is refused by the server.
    const editorPage = await pageAt('editor', `/agents/${agentId}`);
    const unprotect = rowOf(editorPage, 'stale').getByRole('button', { name: 'Unprotect stale (only an admin can change protection)' });
    await unprotect.waitFor();
    expect(await unprotect.isDisabled()).toBe(true);
    await rowOf(editorPage, 'stale').getByRole('button', { name: 'Archive stale' }).click();
    await expect.poll(() => notices(editorPage).locator('.notice-error').textContent()).toContain('“stale” was not archived:');
    const refusal = await injectAs(dashboard.testApp, 'PATCH', `/v1/convai/agents/${agentId}/branches/${stale}`, dashboard.testApp.keys.editor, { is_archived: true });
    expect(await notices(editorPage).locator('.notice-error').textContent()).toContain(refusal.json().detail.message);
    expect((await branchList(agentId)).find((branch) => branch.id === stale)!.is_archived).toBe(false);

    // The admin archives it: it leaves the table, comes back with "Show archived", and is unarchived.
    await rowOf(page, 'stale').getByRole('button', { name: 'Archive stale' }).click();
    await expect.poll(() => notices(page).textContent()).toContain('Branch “stale” archived');
    await expect.poll(() => rowOf(page, 'stale').count()).toBe(0);
    expect((await branchList(agentId)).find((branch) => branch.id === stale)!.is_archived).toBe(true);
    await page.getByLabel('Show archived branches').check();
    await page.waitForURL(`**/agents/${agentId}?archived=1`);
    await rowOf(page, 'stale').getByRole('button', { name: 'Unarchive stale' }).click();
    await expect.poll(() => notices(page).textContent()).toContain('Branch “stale” unarchived');
    expect((await branchList(agentId)).find((branch) => branch.id === stale)!.is_archived).toBe(false);
    // Main cannot be archived, and the button says so.
    expect(await rowOf(page, 'Main').getByRole('button', { name: 'Archive Main (Main cannot be archived.)' }).isDisabled()).toBe(true);
  });
});

describe('history, diff, restore', () => {
  test('the graph draws a merge with both parents, newest first', async () => {
    const { agentId, mainId, firstVersionId } = await createAgent('Graph agent');
    const feature = await branchFrom(agentId, firstVersionId, 'feature');
    const featureHead = await commit(agentId, feature, { first_message: 'Feature hello' });
    const mainParent = await commit(agentId, mainId, { language: 'fr' });
    await call('admin', 'POST', `/v1/convai/agents/${agentId}/branches/${feature}/merge?target_branch_id=${mainId}`, { archive_source_branch: false });
    const merge = (await call<{ versions: Version[] }>('admin', 'GET', `/v1/convai/agents/${agentId}/versions`)).versions[0];
    expect(merge.parents).toMatchObject({ in_branch_parent_id: mainParent, merged_from_version_id: featureHead });

    const page = await pageAt('viewer', `/agents/${agentId}/history`);
    const rows = page.locator('.graph-row');
    await expect.poll(() => rows.count()).toBe(5);
    const mergeRow = rows.nth(0);
    expect(await mergeRow.getAttribute('data-version-id')).toBe(merge.id);
    expect(await mergeRow.textContent()).toContain('merge of feature');
    expect(await mergeRow.locator('circle.node-merge').count()).toBe(1);
    // Both parents' edges leave the merge, and each reaches its parent's row.
    expect(await mergeRow.locator('path.edge-in-branch').count()).toBe(1);
    expect(await mergeRow.locator('path.edge-merge').count()).toBe(1);
    const rowFor = (versionId: string) => page.locator(`.graph-row[data-version-id="${versionId}"]`);
    const mergeEdge = await mergeRow.locator('path.edge-merge').getAttribute('d');
    expect(await rowFor(featureHead).locator('path.edge-merge').getAttribute('d')).toBe(mergeEdge);
    const mainEdge = await mergeRow.locator('path.edge-in-branch').getAttribute('d');
    expect(await rowFor(mainParent).locator('path.edge-in-branch').first().getAttribute('d')).toBe(mainEdge);
    // The merge edge ends on the feature head's node; the main edge on main's parent's node.
    const nodeCentre = async (versionId: string) => {
      const circle = rowFor(versionId).locator('circle');
      return [Number(await circle.getAttribute('cx')), Number(await circle.getAttribute('cy'))];
    };
    expect(endOf(mergeEdge!)).toEqual(await nodeCentre(featureHead));
    expect(endOf(mainEdge!)).toEqual(await nodeCentre(mainParent));
    expect(startOf(mergeEdge!)).toEqual(await nodeCentre(merge.id));
    // The feature's first version is drawn as a branch point from main's first version.
    const featureFirst = (await call<{ versions: Version[] }>('admin', 'GET', `/v1/convai/agents/${agentId}/versions`)).versions.find(
      (version) => version.branch_id === feature && version.seq_no_in_branch === 1,
    )!;
    const branchPoint = await rowFor(featureFirst.id).locator('path.edge-branch-point').getAttribute('d');
    expect(endOf(branchPoint!)).toEqual(await nodeCentre(firstVersionId));
    expect(startOf(branchPoint!)).toEqual(await nodeCentre(featureFirst.id));
    // A version opens its page.
    await mergeRow.getByRole('link', { name: '#3' }).click();
    await page.waitForURL(`**/agents/${agentId}/versions/${merge.id}`);
    await page.getByRole('heading', { name: 'Version #3 on Main' }).waitFor();
  });

  test('two versions picked in the history open their diff, the changed prompt words side by side', async () => {
    const { agentId, mainId, firstVersionId } = await createAgent('Diff agent', 'You are a helpful support agent for Acme bikes. Answer every question briefly and in plain words.');
    const second = await commit(agentId, mainId, {
      prompt: { prompt: 'You are a friendly support agent for Acme bikes. Answer every question briefly, politely and in plain words.' },
    });
    const page = await pageAt('editor', `/agents/${agentId}/history`);
    await page.getByRole('checkbox', { name: 'Pick #1 on Main to compare' }).check();
    await page.getByRole('checkbox', { name: 'Pick #2 on Main to compare' }).check();
    await page.getByRole('link', { name: 'Compare picked versions' }).click();
    await page.waitForURL(`**/agents/${agentId}/diff?from=${firstVersionId}&to=${second}`);
    await page.getByText('1 change in 1 section').waitFor();
    const section = page.getByRole('region', { name: /Conversation config/ });
    expect(await section.locator('.change-path').textContent()).toBe('agent.prompt.prompt');
    expect(await section.locator('del').allTextContents()).toEqual(['helpful']);
    expect((await section.locator('ins').allTextContents()).join('|')).toMatch(/^friendly\|.*politely/);
    // Each side shows its whole text.
    expect(await section.locator('.side').nth(0).locator('pre').textContent()).toBe('You are a helpful support agent for Acme bikes. Answer every question briefly and in plain words.');
    expect(await section.locator('.side').nth(1).locator('pre').textContent()).toBe('You are a friendly support agent for Acme bikes. Answer every question briefly, politely and in plain words.');
    // The same two stored versions, whatever happens to the branch later.
    await commit(agentId, mainId, { first_message: 'Later' });
    await page.reload();
    await page.getByText('1 change in 1 section').waitFor();
  });

  test('restore makes a new version on the branch, then is off because the branch has that config', async () => {
    const { agentId, mainId, firstVersionId } = await createAgent('Restore agent');
    await commit(agentId, mainId, { first_message: 'Changed hello' });
    const page = await pageAt('editor', `/agents/${agentId}/versions/${firstVersionId}`);
    const restore = page.getByRole('button', { name: 'Restore onto Main' });
    await expect.poll(() => page.locator('#restore-reason').textContent()).toBe('Restoring changes 1 field of “Main”.');
    expect(await restore.isEnabled()).toBe(true);
    await restore.click();
    await expect.poll(() => notices(page).textContent()).toContain('Restored #1 on Main onto “Main” as a new version');
    const main = (await branchList(agentId)).find((branch) => branch.id === mainId)!;
    expect(main.head_seq_no_in_branch).toBe(3);
    const head = await call<{ conversation_config: { agent: { first_message: string } } }>('admin', 'GET', `/v1/convai/agents/${agentId}`);
    expect(head.conversation_config.agent.first_message).toBe('Hello');
    await expect.poll(() => page.locator('#restore-reason').textContent()).toBe('The head of “Main” already has this config: restoring it would change nothing.');
    expect(await restore.isDisabled()).toBe(true);
    // The head itself: nothing to restore.
    await page.goto(`/agents/${agentId}/versions/${main.head_version_id}`);
    await expect.poll(() => page.locator('#restore-reason').textContent()).toBe('This is the head of “Main”: restoring it would change nothing.');
    expect(await page.getByRole('button', { name: 'Restore onto Main' }).isDisabled()).toBe(true);
  });

  test('branch from an old version, from the history', async () => {
    const { agentId, mainId, firstVersionId } = await createAgent('Branching agent');
    await commit(agentId, mainId, { first_message: 'Newer hello' });
    const page = await pageAt('editor', `/agents/${agentId}/history`);
    await page.getByRole('button', { name: 'Branch from #1 on Main' }).click();
    // The branches' new list arrives after the new history: the new lane is still named, not shown by its id first.
    await page.route(`**/v1/convai/agents/${agentId}/branches?*`, async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 800));
      await route.fallback();
    });
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Branch name').fill('from-the-start');
    await dialog.getByRole('button', { name: 'Create branch' }).click();
    await expect.poll(() => notices(page).textContent()).toContain('Branch “from-the-start” created from #1 on Main');
    const created = (await branchList(agentId)).find((branch) => branch.name === 'from-the-start')!;
    const first = await call<Version>('admin', 'GET', `/v1/convai/agents/${agentId}/versions/${created.head_version_id}`);
    expect(first.parents.out_of_branch_parent_id).toBe(firstVersionId);
    // The history shows its first version at the top, in its own lane.
    await expect.poll(() => page.locator('.graph-row').first().getAttribute('data-version-id')).toBe(created.head_version_id);
    expect(await page.locator('.graph-row').first().locator('.lane-badge').textContent()).toBe('from-the-start');
  });

  test('a long history loads a page at a time as it is scrolled, draws only the rows in view, and works from the keyboard', async () => {
    const { agentId, mainId } = await createAgent('Long agent');
    for (let index = 2; index <= 230; index++) await commit(agentId, mainId, { first_message: `Hello ${index}` });
    const page = await pageAt('viewer', `/agents/${agentId}/history`);
    await page.getByText('100 versions shown').waitFor();
    const drawn = page.locator('.graph-row');
    expect(await drawn.count()).toBeLessThan(60);
    expect(await drawn.first().getAttribute('data-version-id')).toBe((await branchList(agentId))[0].head_version_id);
    // Scrolled to the end of what is loaded, the next pages load by themselves.
    for (const shown of ['200 versions shown', '230 versions shown (all of them)']) {
      await page.locator('.graph-scroll').evaluate((scroller) => scroller.scrollTo(0, scroller.scrollHeight));
      await page.getByText(shown).waitFor();
    }
    await page.locator('.graph-scroll').evaluate((scroller) => scroller.scrollTo(0, scroller.scrollHeight));
    await expect.poll(() => drawn.last().textContent()).toContain('#1 Initial version');
    expect(await drawn.count()).toBeLessThan(60);
    // Keyboard: Tab reaches a version's checkbox, Space picks it, and the pick is in the URL.
    await page.locator('.graph-scroll').evaluate((scroller) => scroller.scrollTo(0, 0));
    await page.getByRole('link', { name: 'Branches' }).focus();
    const focused = () => page.evaluate(() => `${document.activeElement?.tagName} ${document.activeElement?.getAttribute('aria-label')}`);
    const path: string[] = [];
    for (let presses = 0; presses < 4 && !path.at(-1)?.startsWith('INPUT'); presses++) {
      await page.keyboard.press('Tab');
      path.push(await focused());
    }
    // The next stop after the heading's links is the newest version (the scroller itself may come first).
    expect(path.at(-1), path.join(' → ')).toBe('INPUT Pick #230 on Main to compare');
    await page.keyboard.press('Space');
    await page.getByText('1 of 2 picked').waitFor();
    expect(new URL(page.url()).searchParams.get('a')).toBe((await branchList(agentId))[0].head_version_id);
  });
});
