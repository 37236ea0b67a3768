import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { type Dashboard, signIn, startDashboard } from './support.js';

// The edit screen, merge and rebase, and merge proposals, in a real browser against a real server:
// each flow asserted on what the page shows and on what the API then holds.

let dashboard: Dashboard;
beforeAll(async () => {
  dashboard = await startDashboard();
});
afterAll(async () => {
  await dashboard?.close();
});

interface AgentAnswer {
  version_id: string;
  main_branch_id: string;
  name: string;
  conversation_config: { agent: { first_message?: string | null; language?: string | null; prompt: { prompt?: string; temperature?: number | null } } };
}

/** A call to the public API as `key` (the admin's unless told); throws on any non-2xx answer. */
async function call<T>(method: string, path: string, body?: unknown, key = dashboard.testApp.keys.admin): Promise<T> {
  const response = await fetch(`${dashboard.url}${path}`, {
    method,
    headers: { 'xi-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

async function createAgent(name: string, agent: { first_message: string; prompt: string }) {
  const { agent_id } = await call<{ agent_id: string }>('POST', '/v1/convai/agents/create', {
    name,
    conversation_config: { agent: { first_message: agent.first_message, prompt: { prompt: agent.prompt } } },
  });
  const head = await call<AgentAnswer>('GET', `/v1/convai/agents/${agent_id}`);
  return { agentId: agent_id, mainBranchId: head.main_branch_id, versionId: head.version_id };
}

async function createBranch(agentId: string, parentVersionId: string, name: string) {
  const created = await call<{ created_branch_id: string; created_version_id: string }>('POST', `/v1/convai/agents/${agentId}/branches`, {
    parent_version_id: parentVersionId,
    name,
    description: `${name} for a browser test`,
  });
  return { branchId: created.created_branch_id, versionId: created.created_version_id };
}

function commit(agentId: string, branchId: string, agent: Record<string, unknown>, key?: string) {
  return call<AgentAnswer>('PATCH', `/v1/convai/agents/${agentId}?branch_id=${branchId}`, { conversation_config: { agent } }, key);
}

const head = (agentId: string, branchId: string, key?: string) => call<AgentAnswer>('GET', `/v1/convai/agents/${agentId}?branch_id=${branchId}`, undefined, key);
const editUrl = (agentId: string, branchId: string) => `/agents/${agentId}/branches/${branchId}/edit`;

/** Opens the edit screen and waits until the form holds the branch's config. */
async function openEditor(page: Page, agentId: string, branchId: string) {
  await page.goto(editUrl(agentId, branchId));
  await page.getByLabel('System prompt').waitFor();
}

const statusTexts = (page: Page) => page.getByRole('status').allTextContents().then((texts) => texts.join(' | '));

describe('the edit screen', () => {
  test('a change made in the form is committed with its description, as a new version against the head it started from', async () => {
    const { agentId, mainBranchId, versionId } = await createAgent('Edited by form', { first_message: 'Hello', prompt: 'Be brief.' });
    const page = await dashboard.signedInPage('editor');
    await openEditor(page, agentId, mainBranchId);
    expect(await page.getByLabel('System prompt').inputValue()).toBe('Be brief.');
    expect(await page.getByLabel('First message').inputValue()).toBe('Hello');

    await page.getByLabel('System prompt').fill('Be brief and kind.');
    await page.getByLabel('Description').fill('Kinder prompt');
    // The JSON editor follows the form.
    expect(JSON.parse(await page.getByLabel('The whole config (JSON)').inputValue()).conversation_config.agent.prompt.prompt).toBe('Be brief and kind.');
    // Before committing, the change can be reviewed against the version the edit started from.
    await page.getByText('Review your changes').click();
    const review = page.getByRole('table', { name: 'Your changes from the version you started from' });
    expect(await review.getByRole('row').count()).toBe(2);
    expect(await review.getByRole('row').nth(1).textContent()).toBe('conversation_config.agent.prompt.promptBe brief.Be brief and kind.');
    await page.getByRole('button', { name: 'Commit' }).click();
    await expect.poll(() => statusTexts(page)).toMatch(/Committed version agtvrsn_\w+/);

    const after = await head(agentId, mainBranchId);
    expect(after.version_id).not.toBe(versionId);
    expect(after.conversation_config.agent.prompt.prompt).toBe('Be brief and kind.');
    expect(after.conversation_config.agent.first_message).toBe('Hello');
    const metadata = await call<{ version_description?: string; description?: string }>('GET', `/v1/convai/agents/${agentId}/versions/${after.version_id}`);
    expect(JSON.stringify(metadata)).toContain('Kinder prompt');
    // The screen now edits from the new head: nothing is left to commit.
    expect(await page.getByRole('button', { name: 'Commit' }).isDisabled()).toBe(true);
    expect(await page.getByText(`based on version ${after.version_id}`).count()).toBe(1);
  });

  test("the server's 422 is shown at the field it names, and nothing is committed", async () => {
    const { agentId, mainBranchId, versionId } = await createAgent('Refused edit', { first_message: 'Hi', prompt: 'Stay calm.' });
    const page = await dashboard.signedInPage('editor');
    await openEditor(page, agentId, mainBranchId);
    const json = page.getByLabel('The whole config (JSON)');
    const config = JSON.parse(await json.inputValue());
    config.conversation_config.agent.prompt.temperature = 'warm';
    await json.fill(JSON.stringify(config, null, 2));
    await page.getByRole('button', { name: 'Commit' }).click();

    const temperature = page.getByLabel('Temperature');
    await expect.poll(() => temperature.getAttribute('aria-invalid')).toBe('true');
    const describedBy = (await temperature.getAttribute('aria-describedby'))!;
    const message = await page.locator(`#${describedBy}`).textContent();
    expect(message).toMatch(/number/i);
    expect(await page.getByLabel('System prompt').getAttribute('aria-invalid')).toBe('false');
    expect((await head(agentId, mainBranchId)).version_id).toBe(versionId);
  });

  test('a draft is saved (only for its author), resumed after a reload, and discarded', async () => {
    const { agentId, mainBranchId, versionId } = await createAgent('Drafted', { first_message: 'Hello there', prompt: 'Answer questions.' });
    const page = await dashboard.signedInPage('editor');
    await openEditor(page, agentId, mainBranchId);
    await page.getByLabel('First message').fill('Hello from a draft');
    await page.getByRole('button', { name: 'Save as draft' }).click();
    await expect.poll(() => statusTexts(page)).toContain('Draft saved');

    const draftUrl = `/v1/convai/agents/${agentId}/drafts?branch_id=${mainBranchId}`;
    const saved = await call<{ draft: { conversation_config: AgentAnswer['conversation_config']; based_on_version_id: string } | null }>('GET', draftUrl, undefined, dashboard.testApp.keys.editor);
    expect(saved.draft?.conversation_config.agent.first_message).toBe('Hello from a draft');
    expect(saved.draft?.based_on_version_id).toBe(versionId);
    expect((await call<{ draft: unknown }>('GET', draftUrl)).draft).toBeNull();
    expect((await head(agentId, mainBranchId)).conversation_config.agent.first_message).toBe('Hello there');

    await page.reload();
    await page.getByLabel('First message').waitFor();
    expect(await page.getByLabel('First message').inputValue()).toBe('Hello from a draft');
    expect(await page.getByText('You are editing your draft').count()).toBe(1);

    await page.getByRole('button', { name: 'Discard draft' }).click();
    // Asked first: cancelling keeps it.
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    expect(await page.getByLabel('First message').inputValue()).toBe('Hello from a draft');
    await page.getByRole('button', { name: 'Discard draft' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Discard draft' }).click();
    await expect.poll(() => statusTexts(page)).toContain('Draft discarded');
    expect(await page.getByLabel('First message').inputValue()).toBe('Hello there');
    expect((await call<{ draft: unknown }>('GET', draftUrl, undefined, dashboard.testApp.keys.editor)).draft).toBeNull();
    expect(await page.getByText('You are editing your draft').count()).toBe(0);
  });

  test('a draft saved before someone else committed says it is behind the tip', async () => {
    const { agentId, mainBranchId } = await createAgent('Behind', { first_message: 'One', prompt: 'P' });
    const page = await dashboard.signedInPage('editor');
    await openEditor(page, agentId, mainBranchId);
    await page.getByLabel('System prompt').fill('P, drafted');
    await page.getByRole('button', { name: 'Save as draft' }).click();
    await expect.poll(() => statusTexts(page)).toContain('Draft saved');
    await commit(agentId, mainBranchId, { first_message: 'Two' });
    await page.reload();
    await page.getByText('You are editing your draft').waitFor();
    expect(await page.getByText('The branch has new versions since').count()).toBe(1);
  });

  const ORIGINAL_GREETING = 'Hello, thanks for calling the support line of Acme Incorporated today.';
  const ADMIN_GREETING = 'Hello, thanks for calling the friendly support line of Acme Incorporated today.';
  test('two people editing the same branch: the second commit shows the first one’s change, and re-applies on top of it', async () => {
    const { agentId, mainBranchId } = await createAgent('Edited twice', { first_message: ORIGINAL_GREETING, prompt: 'Original prompt' });
    const first = await dashboard.signedInPage('admin');
    const second = await dashboard.signedInPage('editor');
    await openEditor(first, agentId, mainBranchId);
    await openEditor(second, agentId, mainBranchId);

    await first.getByLabel('First message').fill(ADMIN_GREETING);
    await first.getByRole('button', { name: 'Commit' }).click();
    await expect.poll(() => statusTexts(first)).toMatch(/Committed version/);
    const theirs = await head(agentId, mainBranchId);

    await second.getByLabel('System prompt').fill('Prompt from the editor');
    await second.getByRole('button', { name: 'Commit' }).click();
    const conflict = second.getByRole('alert').filter({ hasText: 'Someone else committed to this branch' });
    await conflict.waitFor();
    expect(await conflict.textContent()).toContain(theirs.version_id);
    const theirRow = conflict.getByRole('row').filter({ hasText: 'conversation_config.agent.first_message' });
    // A long text's change reads as a word diff: the words they added are marked.
    expect(await theirRow.locator('ins').allTextContents()).toEqual(['friendly ']);
    expect(await theirRow.locator('del').count()).toBe(0);
    expect(await theirRow.getByRole('cell').first().textContent()).toBe(ORIGINAL_GREETING);
    // Nothing of the second edit was written.
    expect((await head(agentId, mainBranchId)).conversation_config.agent.prompt.prompt).toBe('Original prompt');

    await second.getByRole('button', { name: 'Re-apply my changes on top' }).click();
    expect(await second.getByLabel('First message').inputValue()).toBe(ADMIN_GREETING);
    expect(await second.getByLabel('System prompt').inputValue()).toBe('Prompt from the editor');
    await second.getByRole('button', { name: 'Commit' }).click();
    await expect.poll(() => statusTexts(second)).toMatch(/Committed version/);
    const both = await head(agentId, mainBranchId);
    expect(both.conversation_config.agent.first_message).toBe(ADMIN_GREETING);
    expect(both.conversation_config.agent.prompt.prompt).toBe('Prompt from the editor');
  });

  test('after a conflict, one can drop one’s changes and load the latest version instead', async () => {
    const { agentId, mainBranchId } = await createAgent('Dropped', { first_message: 'Start', prompt: 'Start prompt' });
    const page = await dashboard.signedInPage('editor');
    await openEditor(page, agentId, mainBranchId);
    const theirs = await commit(agentId, mainBranchId, { first_message: 'Theirs' });
    await page.getByLabel('System prompt').fill('Mine');
    await page.getByRole('button', { name: 'Commit' }).click();
    await page.getByRole('alert').filter({ hasText: 'Someone else committed to this branch' }).waitFor();
    await page.getByRole('button', { name: 'Drop mine, load theirs' }).click();
    expect(await page.getByLabel('First message').inputValue()).toBe('Theirs');
    expect(await page.getByLabel('System prompt').inputValue()).toBe('Start prompt');
    expect(await page.getByRole('button', { name: 'Commit' }).isDisabled()).toBe(true);
    expect(await page.getByText(`based on version ${theirs.version_id}`).count()).toBe(1);
    expect((await head(agentId, mainBranchId)).version_id).toBe(theirs.version_id);
  });

  test('a viewer reads the config but is offered nothing to change', async () => {
    const { agentId, mainBranchId } = await createAgent('Read only', { first_message: 'Hi', prompt: 'Read me.' });
    const page = await dashboard.signedInPage('viewer');
    await openEditor(page, agentId, mainBranchId);
    expect(await page.getByLabel('System prompt').inputValue()).toBe('Read me.');
    expect(await page.getByLabel('System prompt').isDisabled()).toBe(true);
    expect(await page.getByLabel('The whole config (JSON)').isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'Commit' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Save as draft' }).count()).toBe(0);
    await page.getByText('Your role can read this branch but not change it.').waitFor();
  });

  test('every screen of this part is readable at phone width: no sideways scroll of the page', async () => {
    const { agentId, mainBranchId, versionId } = await createAgent('Phone', { first_message: 'Hi', prompt: 'A prompt long enough to wrap on a phone, and then some more words.' });
    const { branchId } = await createBranch(agentId, versionId, 'Phone branch');
    await commit(agentId, branchId, { first_message: 'Branch hi', prompt: { prompt: 'The branch prompt, which is also long enough to wrap on a phone screen.' } });
    await commit(agentId, mainBranchId, { first_message: 'Main hi' });
    const { created_merge_proposal_id: proposalId } = await call<{ created_merge_proposal_id: string }>('POST', `/v1/convai/agents/${agentId}/merge-proposals`, {
      source_branch_id: branchId,
      target_branch_id: mainBranchId,
      title: 'A proposal with a title long enough to wrap on a phone screen',
    });
    const page = await dashboard.signedInPage('editor', { width: 390, height: 800 });
    const screens: [string, string][] = [
      [editUrl(agentId, branchId), 'System prompt'],
      [`/agents/${agentId}/branches/${branchId}/merge?into=${mainBranchId}`, 'What changes on Main'],
      [`/agents/${agentId}/branches/${branchId}/rebase`, 'What changes on Phone branch'],
      [`/agents/${agentId}/proposals`, 'Propose a merge'],
      [`/agents/${agentId}/proposals/${proposalId}`, 'What it would change on Main'],
    ];
    for (const [url, shown] of screens) {
      await page.goto(url);
      await page.getByText(shown, { exact: true }).first().waitFor();
      expect(await page.evaluate(() => document.documentElement.scrollWidth), url).toBeLessThanOrEqual(390);
    }
  });
});

describe('merge and rebase', () => {
  test('a conflicting merge resolved per field (one to the source, one typed) lands exactly those values', async () => {
    const { agentId, mainBranchId, versionId } = await createAgent('Merged', { first_message: 'Base hello', prompt: 'Base prompt' });
    const { branchId } = await createBranch(agentId, versionId, 'Feature');
    await commit(agentId, branchId, { first_message: 'Feature hello', prompt: { prompt: 'Feature prompt' } });
    await commit(agentId, mainBranchId, { first_message: 'Main hello', prompt: { prompt: 'Main prompt' } });

    const page = await dashboard.signedInPage('editor');
    await page.goto(`/agents/${agentId}/branches/${branchId}/merge?into=${mainBranchId}&archive=false`);
    const prompt = page.getByRole('listitem').filter({ has: page.getByText('agent.prompt.prompt', { exact: true }) });
    await prompt.waitFor();
    expect(await prompt.textContent()).toContain('Base prompt');
    expect(await prompt.textContent()).toContain('Feature prompt');
    expect(await prompt.textContent()).toContain('Main prompt');
    await prompt.getByLabel('Source').check();

    const greeting = page.getByRole('listitem').filter({ has: page.getByText('agent.first_message', { exact: true }) });
    await greeting.getByLabel('Type a value').check();
    await greeting.getByLabel('Value for agent.first_message').fill('Typed hello');
    // The preview follows the choices: what changes on main.
    const changes = page.getByRole('table', { name: 'What the merge changes on the target' });
    await expect.poll(() => changes.textContent()).toContain('Typed hello');
    expect(await changes.textContent()).toContain('Feature prompt');
    expect(await page.getByLabel('Archive the source after merging (its live traffic moves to the target)').isChecked()).toBe(false);

    await page.getByRole('button', { name: 'Merge into Main' }).click();
    const result = page.getByRole('status').filter({ hasText: 'New version' });
    await result.waitFor();
    const merged = await head(agentId, mainBranchId);
    expect(await result.textContent()).toContain(merged.version_id);
    expect(merged.conversation_config.agent.prompt.prompt).toBe('Feature prompt');
    expect(merged.conversation_config.agent.first_message).toBe('Typed hello');
    const branches = await call<{ results: { id: string; is_archived: boolean }[] }>('GET', `/v1/convai/agents/${agentId}/branches?include_archived=true`);
    expect(branches.results.find((each) => each.id === branchId)?.is_archived).toBe(false);
  });

  test('a merge the server refuses shows its reason beside the button and nothing lands; forced, the source wins and is archived', async () => {
    const { agentId, mainBranchId, versionId } = await createAgent('Refused merge', { first_message: 'Base hello', prompt: 'Base prompt' });
    const { branchId } = await createBranch(agentId, versionId, 'Older');
    await commit(agentId, branchId, { prompt: { prompt: 'Older prompt' } });
    // Main's later commit wins the only conflict by default: the merge would change nothing.
    const later = await commit(agentId, mainBranchId, { prompt: { prompt: 'Later prompt' } });

    const page = await dashboard.signedInPage('editor');
    await page.goto(`/agents/${agentId}/branches/${branchId}/merge`);
    await page.waitForURL((url) => url.searchParams.get('into') === mainBranchId);
    await page.getByText('As previewed, this merge would change nothing on the target').waitFor();
    await page.getByRole('button', { name: 'Merge into Main' }).click();
    const refusal = page.getByRole('alert').filter({ hasText: 'Not merged' });
    await refusal.waitFor();
    expect(await refusal.textContent()).toContain('agent.prompt.prompt');
    expect((await head(agentId, mainBranchId)).version_id).toBe(later.version_id);

    // Forced, the source wins the conflict: the preview shows it, in the URL too, and the merge lands it.
    await page.getByLabel('Force: the source wins every conflict not settled below').check();
    await page.waitForURL((url) => url.searchParams.get('force') === 'true');
    const changes = page.getByRole('table', { name: 'What the merge changes on the target' });
    await expect.poll(() => changes.textContent()).toContain('Older prompt');
    await page.getByRole('button', { name: 'Merge into Main' }).click();
    await page.getByRole('status').filter({ hasText: 'New version' }).waitFor();
    expect((await head(agentId, mainBranchId)).conversation_config.agent.prompt.prompt).toBe('Older prompt');
    const branches = await call<{ results: { id: string; is_archived: boolean }[] }>('GET', `/v1/convai/agents/${agentId}/branches?include_archived=true`);
    expect(branches.results.find((each) => each.id === branchId)?.is_archived).toBe(true);
  });

  test("a rebase shows main's changes coming onto the branch, then lands them", async () => {
    const { agentId, mainBranchId, versionId } = await createAgent('Rebased', { first_message: 'Hello', prompt: 'Base prompt' });
    const { branchId } = await createBranch(agentId, versionId, 'Behind main');
    await commit(agentId, branchId, { prompt: { prompt: 'Branch prompt' } });
    await commit(agentId, mainBranchId, { first_message: 'Hello from main', language: 'de' });

    const page = await dashboard.signedInPage('editor');
    await page.goto(`/agents/${agentId}/branches/${branchId}/rebase`);
    const changes = page.getByRole('table', { name: 'What the rebase changes on the branch' });
    await changes.waitFor();
    await expect.poll(() => changes.textContent()).toContain('Hello from main');
    await page.getByRole('button', { name: 'Rebase onto main' }).click();
    const result = page.getByRole('status').filter({ hasText: 'New version' });
    await result.waitFor();
    const rebased = await head(agentId, branchId);
    expect(await result.textContent()).toContain(rebased.version_id);
    expect(rebased.conversation_config.agent.first_message).toBe('Hello from main');
    expect(rebased.conversation_config.agent.language).toBe('de');
    expect(rebased.conversation_config.agent.prompt.prompt).toBe('Branch prompt');
  });
});

describe('merge proposals', () => {
  test('one user proposes, the merge is refused with the server’s reason, a second user approves, and it merges', async () => {
    const { agentId, mainBranchId, versionId } = await createAgent('Proposed', { first_message: 'Hello', prompt: 'Base prompt' });
    const { branchId } = await createBranch(agentId, versionId, 'Proposal source');
    await commit(agentId, branchId, { prompt: { prompt: 'Reviewed prompt' } });
    // The second user: another editor, made with the workspace admin API the tests use.
    const reviewer = await dashboard.testApp.app.workspaces.createKey('default', 'reviewer-user', 'editor');

    // Started from the merge screen: "Propose it for review instead" fills the branches in.
    const author = await dashboard.signedInPage('editor');
    await author.goto(`/agents/${agentId}/branches/${branchId}/merge?into=${mainBranchId}`);
    await author.getByRole('link', { name: 'Propose it for review instead' }).click();
    await author.waitForURL(/\/proposals\?/);
    await author.getByLabel('Title').waitFor();
    expect(await author.getByLabel('From (source)').inputValue()).toBe(branchId);
    expect(await author.getByLabel('Into (target)').inputValue()).toBe(mainBranchId);
    await author.getByLabel('Title').fill('Use the reviewed prompt');
    await author.getByLabel('Description').fill('The prompt the team agreed on.');
    // Reviewers are offered by name (the workspace's users who may review, not the author).
    const reviewers = author.getByRole('group', { name: 'Reviewers' });
    expect(await reviewers.getByRole('checkbox').count()).toBe(3);
    expect(await reviewers.getByLabel(/editor-user/).count()).toBe(0);
    await reviewers.getByLabel(/reviewer-user/).check();
    await author.getByRole('button', { name: 'Open proposal' }).click();
    await author.waitForURL(/\/proposals\/[^/]+$/);
    await author.getByRole('heading', { level: 1, name: 'Use the reviewed prompt' }).waitFor();
    const proposalPath = new URL(author.url()).pathname;
    const proposalId = proposalPath.split('/').at(-1)!;
    // The diff it would merge.
    const diff = author.getByRole('table', { name: 'What the proposal would change on the target' });
    await expect.poll(() => diff.textContent()).toContain('Reviewed prompt');

    // Not approved yet: the server's reason is shown, nothing merges.
    await author.getByRole('button', { name: 'Merge proposal' }).click();
    const refusal = author.getByRole('alert').filter({ hasText: 'Not merged' });
    await refusal.waitFor();
    expect(await refusal.textContent()).toMatch(/approv/i);
    expect((await head(agentId, mainBranchId)).conversation_config.agent.prompt.prompt).toBe('Base prompt');

    const second = await dashboard.newPage();
    await second.goto('/sign-in');
    await signIn(second, reviewer.key);
    await second.waitForURL('**/agents');
    await second.goto(proposalPath);
    await second.getByLabel('Review comment').fill('Looks right.');
    await second.getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => statusTexts(second)).toContain('You approved this proposal');
    await second.getByLabel('Comment', { exact: true }).fill('Ship it after lunch.');
    await second.getByRole('button', { name: 'Add comment' }).click();
    await second.getByText('Ship it after lunch.').waitFor();

    const stored = await call<{ reviews: { state: string; comment: string; user_id: string }[]; comments: { body: string }[]; requested_reviewer_user_ids: string[] }>(
      'GET',
      `/v1/convai/agents/${agentId}/merge-proposals/${proposalId}`,
    );
    const reviewerId = (await call<{ users: { user_id: string; name: string }[] }>('GET', '/v1/convai/workspace/users')).users.find((user) => user.name === 'reviewer-user')!.user_id;
    expect(stored.requested_reviewer_user_ids).toEqual([reviewerId]);
    expect(stored.reviews[0].user_id).toBe(reviewerId);
    expect(stored.reviews).toEqual([expect.objectContaining({ state: 'approved', comment: 'Looks right.' })]);
    expect(stored.comments).toEqual([expect.objectContaining({ body: 'Ship it after lunch.' })]);

    // The users' names arrive last: the proposal waits for them rather than show ids first.
    await author.route('**/v1/convai/workspace/users', async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 800));
      await route.fallback();
    });
    await author.reload();
    await author.getByText('Looks right.').waitFor();
    expect(await author.getByRole('listitem').filter({ hasText: 'Looks right.' }).textContent()).toMatch(/Approved by reviewer-user/);
    await author.getByRole('button', { name: 'Merge proposal' }).click();
    await author.getByRole('status').filter({ hasText: 'Merged' }).first().waitFor();
    expect((await head(agentId, mainBranchId)).conversation_config.agent.prompt.prompt).toBe('Reviewed prompt');
    const merged = await call<{ outcome: { status: string; version_id: string } }>('GET', `/v1/convai/agents/${agentId}/merge-proposals/${proposalId}`);
    expect(merged.outcome.status).toBe('merged');
    expect(merged.outcome.version_id).toBe((await head(agentId, mainBranchId)).version_id);

    // The list, filtered by state, shows it where it belongs.
    await author.goto(`/agents/${agentId}/proposals?state=merged`);
    await author.getByRole('link', { name: 'Use the reviewed prompt' }).waitFor();
    await author.goto(`/agents/${agentId}/proposals?state=open`);
    await author.getByText('No open proposals.').waitFor();
  });

  test('a proposal is closed from its page', async () => {
    const { agentId, mainBranchId, versionId } = await createAgent('Closed', { first_message: 'Hello', prompt: 'Base' });
    const { branchId } = await createBranch(agentId, versionId, 'Abandoned');
    await commit(agentId, branchId, { prompt: { prompt: 'Abandoned prompt' } });
    const { created_merge_proposal_id: proposalId } = await call<{ created_merge_proposal_id: string }>(
      'POST',
      `/v1/convai/agents/${agentId}/merge-proposals`,
      { source_branch_id: branchId, target_branch_id: mainBranchId, title: 'Not this one' },
      dashboard.testApp.keys.editor,
    );
    const page = await dashboard.signedInPage('editor');
    await page.goto(`/agents/${agentId}/proposals/${proposalId}`);
    await page.getByRole('button', { name: 'Close proposal' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Close proposal' }).click();
    await page.getByText(/^Closed .* \(withdrawn\)/).waitFor();
    const closed = await call<{ outcome: { status: string } }>('GET', `/v1/convai/agents/${agentId}/merge-proposals/${proposalId}`);
    expect(closed.outcome.status).toBe('closed');
  });
});
