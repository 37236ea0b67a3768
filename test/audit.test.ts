import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Role } from '../src/domain/caller.js';
import { recordUserAction } from '../src/features/audit/audit.events.js';
import { zAuditEventsPage } from '../src/features/audit/audit.routes.js';
import { hashApiKey } from '../src/features/workspaces/workspaces.service.js';
import { snapshotDatabase } from './support/db-snapshot.js';
import { createAgent as createSharedAgent } from './support/fixtures.js';
import { runCli } from './support/server-process.js';
import { injectAs, okJson, startTestApp, type TestApp, userIdsByRole } from './support/test-app.js';

// The audit log (issue 9, item 6): every write that versions and deployments do not already
// attribute records who, when and what, in the write's own transaction; admins read it, per workspace.

interface AuditEvent {
  id: string;
  at_unix_secs: number;
  action: string;
  actor_kind: 'user' | 'cli' | 'system';
  actor_user_id: string | null;
  actor_name: string | null;
  agent_id: string | null;
  resource_id: string | null;
  details: Record<string, unknown>;
}

interface Page {
  events: AuditEvent[];
  has_more: boolean;
  next_cursor: string | null;
}

const EVENTS_URL = '/v1/convai/audit-events';

let testApp: TestApp;
let keys: Record<Role, string>;
/** User ids by role: the users behind `keys`. */
const userId = {} as Record<Role, string>;

beforeAll(async () => {
  testApp = await startTestApp();
  keys = testApp.keys;
  Object.assign(userId, await userIdsByRole(testApp));
});
afterAll(() => testApp.close());

const send = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, key: string | null, payload?: unknown) =>
  injectAs(testApp, method, url, key, payload);

const ok = okJson;

async function page(query: Record<string, string> = {}, key = keys.admin): Promise<Page> {
  return ok<Page>(await send('GET', `${EVENTS_URL}?${new URLSearchParams(query).toString()}`, key));
}

/** Every event the key's admin may see, newest first, walking the pages. */
async function allEvents(query: Record<string, string> = {}, key = keys.admin, pageSize = 100): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  let cursor: string | null = null;
  do {
    const current: Page = await page({ ...query, page_size: String(pageSize), ...(cursor ? { cursor } : {}) }, key);
    events.push(...current.events);
    cursor = current.next_cursor;
    expect(current.has_more).toBe(cursor !== null);
  } while (cursor);
  return events;
}

/** The newest event of an action. */
async function newest(action: string, query: Record<string, string> = {}): Promise<AuditEvent> {
  const [event] = (await page({ action, page_size: '1', ...query })).events;
  expect(event, `no ${action} event`).toBeDefined();
  return event;
}

async function eventCount(): Promise<number> {
  const row = await testApp.store.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Runs a request that must be refused; asserts it wrote nothing at all, audit log included. */
async function refusedWithoutTrace(status: number, method: 'POST' | 'PATCH' | 'DELETE', url: string, key: string, payload?: unknown) {
  const before = await snapshotDatabase(testApp.store.db);
  const count = await eventCount();
  const response = await send(method, url, key, payload);
  expect(response.statusCode, response.body.slice(0, 500)).toBe(status);
  expect(await eventCount()).toBe(count);
  expect(await snapshotDatabase(testApp.store.db)).toBe(before);
}

async function createAgent(key: string, name: string) {
  const conversationConfig = { agent: { first_message: 'Hello', prompt: { prompt: 'Be kind.' } } };
  const { agentId, mainBranchId, versionId } = await createSharedAgent(testApp, { key, name, conversationConfig });
  return { agentId, mainBranchId, mainVersionId: versionId };
}

async function createBranch(key: string, agentId: string, parentVersionId: string, name: string, firstMessage: string) {
  return ok<{ created_branch_id: string; created_version_id: string }>(
    await send('POST', `/v1/convai/agents/${agentId}/branches`, key, {
      parent_version_id: parentVersionId,
      name,
      description: `${name} branch`,
      conversation_config: { agent: { first_message: firstMessage } },
    }),
  );
}

function split(entries: [string, number][]) {
  return {
    deployment_request: {
      requests: entries.map(([branchId, percentage]) => ({ branch_id: branchId, deployment_strategy: { type: 'percentage', traffic_percentage: percentage } })),
    },
  };
}

describe('workspace and key management', () => {
  it('the first start records the workspace and its admin key as the system; keys made later as the CLI', async () => {
    const events = await allEvents();
    const oldestFirst = [...events].reverse();
    expect(oldestFirst[0]).toMatchObject({ action: 'workspace.create', actor_kind: 'system', actor_user_id: null, actor_name: null, agent_id: null, details: { name: 'default' } });
    const adminKey = await testApp.store.db.selectFrom('api_keys').select('id').where('user_id', '=', userId.admin).executeTakeFirstOrThrow();
    expect(oldestFirst[1]).toMatchObject({
      action: 'key.create',
      actor_kind: 'system',
      resource_id: adminKey.id,
      details: { key_id: adminKey.id, user_id: userId.admin, user_name: 'admin', role: 'admin', previous_role: null, user_created: true },
    });
    const editorKey = events.find((event) => event.action === 'key.create' && event.details.user_id === userId.editor);
    expect(editorKey).toMatchObject({ actor_kind: 'cli', actor_user_id: null, details: { role: 'editor', user_name: 'editor-user', user_created: true } });
  });

  it('a new key for an existing user records the role it replaced; a revocation records the key and its user', async () => {
    // Another role for an existing user only on request: refused, nothing written or recorded.
    const before = await eventCount();
    await expect(testApp.app.workspaces.createKey('default', 'commenter-user', 'editor')).rejects.toThrow(/already exists with role commenter.*--change-role/);
    expect(await eventCount()).toBe(before);
    // The user's own role, or none given, is another key of theirs.
    const same = await testApp.app.workspaces.createKey('default', 'commenter-user');
    expect(same).toMatchObject({ role: 'commenter', previousRole: 'commenter' });
    expect(await newest('key.create')).toMatchObject({ details: { role: 'commenter', previous_role: 'commenter', user_created: false } });
    expect(await testApp.app.workspaces.revokeKey('default', same.keyId)).toBe(true);

    const created = await testApp.app.workspaces.createKey('default', 'commenter-user', 'editor', { changeRole: true });
    expect(await newest('key.create')).toMatchObject({
      actor_kind: 'cli',
      resource_id: created.keyId,
      details: { key_id: created.keyId, user_id: userId.commenter, role: 'editor', previous_role: 'commenter', user_created: false },
    });
    // Back to commenter, so the other tests see the role they expect.
    const restored = await testApp.app.workspaces.createKey('default', 'commenter-user', 'commenter', { changeRole: true });
    for (const keyId of [created.keyId, restored.keyId]) {
      expect(await testApp.app.workspaces.revokeKey('default', keyId)).toBe(true);
      expect(await newest('key.revoke')).toMatchObject({ actor_kind: 'cli', actor_user_id: null, resource_id: keyId, details: { key_id: keyId, user_id: userId.commenter } });
    }
    // Revoking a key that is already revoked changes nothing and records nothing.
    const count = await eventCount();
    expect(await testApp.app.workspaces.revokeKey('default', created.keyId)).toBe(false);
    expect(await eventCount()).toBe(count);
  });

  it('a new workspace is recorded in that workspace, invisible to ours', async () => {
    const created = await testApp.app.workspaces.createWorkspace('audited-elsewhere');
    const theirs = await allEvents({}, created.key);
    expect(theirs.map((event) => event.action)).toEqual(['key.create', 'workspace.create']);
    expect(theirs[1]).toMatchObject({ actor_kind: 'cli', details: { name: 'audited-elsewhere' } });
    const ours = await allEvents();
    expect(ours.some((event) => event.resource_id === theirs[1].resource_id)).toBe(false);
  });
});

describe('writes through the API', () => {
  let agentId: string;
  let mainBranchId: string;
  let mainVersionId: string;

  beforeAll(async () => {
    ({ agentId, mainBranchId, mainVersionId } = await createAgent(keys.admin, 'Audited'));
  });

  it('agents: creation, duplication and deletion, each by its actor (a deleted agent leaves its event)', async () => {
    const { agentId: created } = await createAgent(keys.editor, 'Short-lived');
    expect(await newest('agent.create')).toMatchObject({ actor_user_id: userId.editor, agent_id: created, resource_id: created, details: { name: 'Short-lived' } });
    const copy = await ok<{ agent_id: string }>(await send('POST', `/v1/convai/agents/${created}/duplicate`, keys.admin, { name: 'The copy' }));
    expect(await newest('agent.duplicate')).toMatchObject({
      actor_user_id: userId.admin,
      agent_id: copy.agent_id,
      details: { source_agent_id: created, name: 'The copy' },
    });
    expect((await send('DELETE', `/v1/convai/agents/${created}`, keys.editor)).statusCode).toBe(204);
    expect(await newest('agent.delete')).toMatchObject({ actor_user_id: userId.editor, agent_id: created, resource_id: created, details: { name: 'Short-lived' } });
    expect((await allEvents({ agent_id: created })).map((event) => event.action)).toContain('agent.create');
  });

  it('branch creation: the editor, the agent, the branch and where it started', async () => {
    const created = await createBranch(keys.editor, agentId, mainVersionId, 'Feature', 'Hi from feature');
    const event = await newest('branch.create');
    expect(event).toMatchObject({
      actor_kind: 'user',
      actor_user_id: userId.editor,
      actor_name: 'editor-user',
      agent_id: agentId,
      resource_id: created.created_branch_id,
      details: { name: 'Feature', parent_version_id: mainVersionId, parent_branch_id: mainBranchId, version_id: created.created_version_id },
    });
    expect(Math.abs(event.at_unix_secs - Date.now() / 1000)).toBeLessThan(60);
  });

  it('branch updates: before and after of name, protection and archive; a description is named only', async () => {
    const { created_branch_id: branchId } = await createBranch(keys.editor, agentId, mainVersionId, 'To rename', 'x');
    const url = `/v1/convai/agents/${agentId}/branches/${branchId}`;

    await ok(await send('PATCH', url, keys.editor, { name: 'Renamed', description: 'a new description' }));
    expect(await newest('branch.update')).toMatchObject({
      actor_user_id: userId.editor,
      agent_id: agentId,
      resource_id: branchId,
      details: { changed: ['description', 'name'], before: { name: 'To rename' }, after: { name: 'Renamed' } },
    });

    await ok(await send('PATCH', url, keys.admin, { protection_status: 'admin_perms_required' }));
    expect(await newest('branch.update')).toMatchObject({
      actor_user_id: userId.admin,
      details: { changed: ['protection_status'], before: { protection_status: 'writer_perms_required' }, after: { protection_status: 'admin_perms_required' } },
    });

    await ok(await send('PATCH', url, keys.admin, { is_archived: true }));
    expect((await newest('branch.update')).details).toEqual({ changed: ['is_archived'], before: { is_archived: false }, after: { is_archived: true } });

    // An update that changes nothing records nothing.
    const count = await eventCount();
    await ok(await send('PATCH', url, keys.admin, { is_archived: true, name: 'Renamed' }));
    expect(await eventCount()).toBe(count);
  });

  it('deployments and rollbacks: the deployment made and the split', async () => {
    const { created_branch_id: canary } = await createBranch(keys.editor, agentId, mainVersionId, 'Canary', 'canary');
    await ok(await send('POST', `/v1/convai/agents/${agentId}/deployments`, keys.editor, split([[mainBranchId, 80], [canary, 20]])));
    const history = await ok<{ results: { id: string; is_active: boolean }[] }>(await send('GET', `/v1/convai/agents/${agentId}/deployments`, keys.admin));
    expect(await newest('deployment.create')).toMatchObject({
      actor_user_id: userId.editor,
      agent_id: agentId,
      resource_id: history.results[0].id,
      details: { traffic_percentage_branch_id_map: { [mainBranchId]: 80, [canary]: 20 } },
    });

    const first = history.results.at(-1)!;
    const rolledBack = await ok<{ id: string }>(await send('POST', `/v1/convai/agents/${agentId}/deployments/${first.id}/rollback`, keys.admin));
    expect(await newest('deployment.rollback')).toMatchObject({
      actor_user_id: userId.admin,
      agent_id: agentId,
      resource_id: rolledBack.id,
      details: { rolled_back_to_deployment_id: first.id, traffic_percentage_branch_id_map: { [mainBranchId]: 100 } },
    });
  });

  it('a merge that archives its source and moves its traffic records the version, the archive and the deployment', async () => {
    const { agentId: id, mainBranchId: main, mainVersionId: v1 } = await createAgent(keys.admin, 'Merged');
    const { created_branch_id: source } = await createBranch(keys.editor, id, v1, 'Source', 'from source');
    await ok(await send('POST', `/v1/convai/agents/${id}/deployments`, keys.editor, split([[main, 90], [source, 10]])));
    const merged = await ok<{ version_id: string }>(await send('POST', `/v1/convai/agents/${id}/branches/${source}/merge?target_branch_id=${main}`, keys.editor, {}));
    const active = await ok<{ results: { id: string }[] }>(await send('GET', `/v1/convai/agents/${id}/deployments`, keys.admin));
    expect(await newest('merge', { agent_id: id })).toMatchObject({
      actor_user_id: userId.editor,
      agent_id: id,
      resource_id: main,
      details: {
        source_branch_id: source,
        target_branch_id: main,
        version_id: merged.version_id,
        source_archived: true,
        moved_traffic_percentage: 10,
        deployment_id: active.results[0].id,
        force: false,
        overridden_fields: [],
      },
    });
  });

  it('a rebase, and the automatic rebase a commit on main sets off (by the committer)', async () => {
    const { agentId: id, mainVersionId: v1 } = await createAgent(keys.admin, 'Rebased');
    const { created_branch_id: manual } = await createBranch(keys.editor, id, v1, 'Manual', 'manual');
    const { created_branch_id: automatic } = await createBranch(keys.editor, id, v1, 'Automatic', 'automatic');
    await ok(await send('PATCH', `/v1/convai/agents/${id}/branches/${automatic}`, keys.editor, { auto_rebase: true }));
    expect((await newest('branch.update')).details).toEqual({ changed: ['auto_rebase'], before: { auto_rebase: false }, after: { auto_rebase: true } });

    const commit = await ok<{ version_id: string }>(await send('PATCH', `/v1/convai/agents/${id}`, keys.editor, { conversation_config: { agent: { language: 'de' } } }));
    const auto = await newest('rebase', { agent_id: id });
    expect(auto).toMatchObject({ actor_user_id: userId.editor, resource_id: automatic, details: { automatic: true, rebased_onto_version_id: commit.version_id } });

    const rebased = await ok<{ version_id: string }>(await send('POST', `/v1/convai/agents/${id}/branches/${manual}/rebase`, keys.admin));
    expect(await newest('rebase', { agent_id: id })).toMatchObject({
      actor_user_id: userId.admin,
      resource_id: manual,
      details: { automatic: false, version_id: rebased.version_id, rebased_onto_version_id: commit.version_id, overridden_fields: [] },
    });
  });

  it("drafts: saving and discarding one's draft; discarding none records nothing", async () => {
    const url = `/v1/convai/agents/${agentId}/drafts?branch_id=${mainBranchId}`;
    const draft = { conversation_config: { agent: { first_message: 'draft' } }, platform_settings: {}, workflow: {}, name: 'Draft' };
    await ok(await send('POST', url, keys.editor, draft));
    expect(await newest('draft.create')).toMatchObject({ actor_user_id: userId.editor, agent_id: agentId, resource_id: mainBranchId });
    await ok(await send('DELETE', url, keys.editor));
    expect(await newest('draft.delete')).toMatchObject({ actor_user_id: userId.editor, agent_id: agentId, resource_id: mainBranchId });
    const count = await eventCount();
    await ok(await send('DELETE', url, keys.editor));
    expect(await eventCount()).toBe(count);
  });

  it('merge proposals: create, update, comment, review, merge and close, each by its actor', async () => {
    const { agentId: id, mainBranchId: main, mainVersionId: v1 } = await createAgent(keys.admin, 'Proposed');
    const { created_branch_id: source, created_version_id: tip } = await createBranch(keys.editor, id, v1, 'Proposal source', 'proposed');
    const base = `/v1/convai/agents/${id}/merge-proposals`;
    const { created_merge_proposal_id: proposalId } = await ok<{ created_merge_proposal_id: string }>(
      await send('POST', base, keys.editor, { source_branch_id: source, target_branch_id: main, title: 'First title' }),
    );
    expect(await newest('merge_proposal.create')).toMatchObject({
      actor_user_id: userId.editor,
      agent_id: id,
      resource_id: proposalId,
      details: { source_branch_id: source, target_branch_id: main, source_version_id: tip, title: 'First title' },
    });

    await ok(await send('PATCH', `${base}/${proposalId}`, keys.editor, { title: 'Better title' }));
    expect(await newest('merge_proposal.update')).toMatchObject({
      actor_user_id: userId.editor,
      resource_id: proposalId,
      details: { changed: ['title'], before: { title: 'First title' }, after: { title: 'Better title' } },
    });

    await ok(await send('POST', `${base}/${proposalId}/comments`, keys.commenter, { body: 'Looks fine' }));
    const comment = await newest('merge_proposal.comment');
    const proposal = await ok<{ comments: { id: string }[] }>(await send('GET', `${base}/${proposalId}`, keys.admin));
    expect(comment).toMatchObject({ actor_user_id: userId.commenter, actor_name: 'commenter-user', resource_id: proposalId, details: { comment_id: proposal.comments[0].id } });

    await ok(await send('POST', `${base}/${proposalId}/reviews`, keys.admin, { state: 'approved' }));
    expect(await newest('merge_proposal.review')).toMatchObject({ actor_user_id: userId.admin, resource_id: proposalId, details: { state: 'approved', source_version_id: tip } });

    await ok(await send('POST', `${base}/${proposalId}/merge`, keys.editor, { archive_source_branch: false }));
    const outcome = await newest('merge_proposal.merge');
    const merge = await newest('merge', { agent_id: id });
    expect(outcome).toMatchObject({ actor_user_id: userId.editor, resource_id: proposalId });
    expect(merge).toMatchObject({ actor_user_id: userId.editor, resource_id: main, details: { source_branch_id: source, source_archived: false, deployment_id: null } });
    expect(outcome.details).toEqual({ version_id: merge.details.version_id });

    const { created_branch_id: other } = await createBranch(keys.editor, id, v1, 'Rejected source', 'rejected');
    const { created_merge_proposal_id: rejected } = await ok<{ created_merge_proposal_id: string }>(
      await send('POST', base, keys.editor, { source_branch_id: other, target_branch_id: main, title: 'No' }),
    );
    await ok(await send('PATCH', `${base}/${rejected}`, keys.admin, { close: true }));
    expect(await newest('merge_proposal.update')).toMatchObject({
      actor_user_id: userId.admin,
      resource_id: rejected,
      details: { changed: [], closed: true, close_reason: 'rejected' },
    });
  });

  it('an event recorded in a write that then fails is rolled back with it', async () => {
    const count = await eventCount();
    const caller = { workspaceId: 'ws_x', userId: userId.admin, userName: 'admin', email: '', role: 'admin' as const };
    const failing = testApp.app.context.write(async ({ trx }) => {
      await recordUserAction(trx, caller, Date.now(), { action: 'branch.update', agentId, resourceId: mainBranchId });
      throw new Error('the write fails after its event');
    });
    await expect(failing).rejects.toThrow('the write fails after its event');
    expect(await eventCount()).toBe(count);
  });

  it('refused writes (403, 404, 409, 422) record nothing and write nothing', async () => {
    const { created_branch_id: branchId } = await createBranch(keys.editor, agentId, mainVersionId, 'Refusals', 'r');
    const agentUrl = `/v1/convai/agents/${agentId}`;
    await refusedWithoutTrace(403, 'PATCH', `${agentUrl}/branches/${branchId}`, keys.editor, { protection_status: 'admin_perms_required' });
    await refusedWithoutTrace(403, 'POST', `${agentUrl}/branches`, keys.viewer, { parent_version_id: mainVersionId, name: 'Nope', description: '' });
    await refusedWithoutTrace(409, 'PATCH', `${agentUrl}/branches/${mainBranchId}`, keys.admin, { is_archived: true });
    await refusedWithoutTrace(422, 'POST', `${agentUrl}/deployments`, keys.admin, split([[mainBranchId, 90]]));
    await refusedWithoutTrace(409, 'POST', `${agentUrl}/branches/${mainBranchId}/rebase`, keys.admin);
    await refusedWithoutTrace(404, 'POST', `${agentUrl}/merge-proposals`, testApp.foreignKey, { source_branch_id: branchId, target_branch_id: mainBranchId, title: 'x' });
    await refusedWithoutTrace(403, 'POST', `${agentUrl}/drafts?branch_id=${mainBranchId}`, keys.viewer, {
      conversation_config: {},
      platform_settings: {},
      workflow: {},
      name: 'x',
    });
  });
});

describe('reading the audit log', () => {
  it('is admin only: editor, commenter and viewer get 403; no key gets 401', async () => {
    for (const role of ['editor', 'commenter', 'viewer'] as const) {
      const response = await send('GET', EVENTS_URL, keys[role]);
      expect(response.statusCode, role).toBe(403);
      expect(response.json()).toMatchObject({ detail: { type: 'authorization_error' } });
    }
    expect((await send('GET', EVENTS_URL, null)).statusCode).toBe(401);
  });

  it("is scoped to the caller's workspace: another workspace's admin sees none of ours, even when asking by our agent", async () => {
    const foreign = await createAgent(testApp.foreignKey, 'Theirs');
    await createBranch(testApp.foreignKey, foreign.agentId, foreign.mainVersionId, 'Their branch', 'theirs');
    const ours = await allEvents();
    const theirs = await allEvents({}, testApp.foreignKey);
    expect(theirs.map((event) => event.action)).toEqual(['branch.create', 'agent.create', 'key.create', 'workspace.create']);
    const ourIds = new Set(ours.map((event) => event.id));
    expect(theirs.filter((event) => ourIds.has(event.id))).toEqual([]);
    expect(ours.filter((event) => event.agent_id === foreign.agentId)).toEqual([]);
    const ourAgents = new Set(ours.map((event) => event.agent_id).filter(Boolean));
    expect(ourAgents.size).toBeGreaterThan(0);
    expect(theirs.filter((event) => ourAgents.has(event.agent_id))).toEqual([]);
    const askedForOurs = await page({ agent_id: [...ourAgents][0] as string }, testApp.foreignKey);
    expect(askedForOurs).toEqual({ events: [], has_more: false, next_cursor: null });
  });

  it('pages newest first with a cursor, and the pages add up to the whole log', async () => {
    const whole = await allEvents();
    expect(whole.length).toBeGreaterThan(20);
    const paged = await allEvents({}, keys.admin, 3);
    expect(paged.map((event) => event.id)).toEqual(whole.map((event) => event.id));
    for (let i = 1; i < whole.length; i++) {
      const [newer, older] = [whole[i - 1], whole[i]];
      expect(newer.at_unix_secs >= older.at_unix_secs && (newer.at_unix_secs > older.at_unix_secs || newer.id > older.id), `${newer.id} before ${older.id}`).toBe(true);
    }
    const first = await page({ page_size: '2' });
    expect(first.events).toHaveLength(2);
    expect(first.has_more).toBe(true);
    expect(first.next_cursor).toEqual(expect.any(String));
  });

  it('filters by agent, action, actor and time', async () => {
    const whole = await allEvents();
    const agentId = whole.find((event) => event.agent_id)!.agent_id!;
    expect((await allEvents({ agent_id: agentId })).map((event) => event.id)).toEqual(whole.filter((event) => event.agent_id === agentId).map((event) => event.id));
    expect((await allEvents({ action: 'branch.create' })).map((event) => event.id)).toEqual(whole.filter((event) => event.action === 'branch.create').map((event) => event.id));
    expect((await allEvents({ actor_user_id: userId.editor })).map((event) => event.id)).toEqual(
      whole.filter((event) => event.actor_user_id === userId.editor).map((event) => event.id),
    );
    const since = whole[Math.floor(whole.length / 2)].at_unix_secs;
    expect((await allEvents({ since_unix_secs: String(since) })).map((event) => event.id)).toEqual(whole.filter((event) => event.at_unix_secs >= since).map((event) => event.id));
    expect((await page({ since_unix_secs: String(Math.ceil(Date.now() / 1000) + 3_600) })).events).toEqual([]);
  });

  it('refuses an unknown action, a bad time and a forged cursor cleanly', async () => {
    const action = await send('GET', `${EVENTS_URL}?action=agent.teleport`, keys.admin);
    expect(action.statusCode).toBe(422);
    expect(action.json().detail[0].loc).toEqual(['query', 'action']);
    for (const value of ['-1', 'yesterday', '1.5']) {
      const response = await send('GET', `${EVENTS_URL}?since_unix_secs=${value}`, keys.admin);
      expect(response.statusCode, value).toBe(422);
      expect(response.json().detail[0].loc).toEqual(['query', 'since_unix_secs']);
    }
    for (const cursor of ['garbage', Buffer.from('[1.5,"x"]').toString('base64url'), Buffer.from('{"a":1}').toString('base64url')]) {
      const response = await send('GET', `${EVENTS_URL}?cursor=${cursor}`, keys.admin);
      expect(response.statusCode, cursor).toBe(400);
      expect(response.json()).toMatchObject({ detail: { code: 'invalid_cursor' } });
    }
  });

  it('holds no key material: not the keys, their hashes or their prefixes, in the table or on the wire', async () => {
    const rows = await testApp.store.db.selectFrom('api_keys').select(['key_hash', 'key_prefix']).execute();
    const secrets = [...Object.values(keys), testApp.foreignKey].flatMap((key) => [key, hashApiKey(key), key.slice(0, 7)]);
    secrets.push(...rows.flatMap((row) => [row.key_hash, row.key_prefix]));
    const stored = JSON.stringify(await testApp.store.db.selectFrom('audit_events').selectAll().execute());
    const served = JSON.stringify([await allEvents(), await allEvents({}, testApp.foreignKey)]);
    expect(stored).toContain('key.create');
    for (const secret of new Set(secrets)) {
      expect(stored.includes(secret), `the audit table holds ${secret.slice(0, 10)}…`).toBe(false);
      expect(served.includes(secret), `the endpoint shows ${secret.slice(0, 10)}…`).toBe(false);
    }
  });

  it('answers in the documented shape (wire check without the SDK) and is in the OpenAPI document', async () => {
    const body = await page({ page_size: '5' });
    expect(zAuditEventsPage.safeParse(body).success).toBe(true);
    expect(Object.keys(body).sort()).toEqual(['events', 'has_more', 'next_cursor']);
    for (const event of body.events) {
      expect(Object.keys(event).sort()).toEqual(['action', 'actor_kind', 'actor_name', 'actor_user_id', 'agent_id', 'at_unix_secs', 'details', 'id', 'resource_id']);
      expect(event.id).toMatch(/^auditevt_[0-9a-z]{28}$/);
      expect(Number.isInteger(event.at_unix_secs)).toBe(true);
    }
    const openapi = await ok<{ paths: Record<string, Record<string, { operationId: string; security: unknown[] }>> }>(await send('GET', '/openapi.json', null));
    expect(openapi.paths[EVENTS_URL].get).toMatchObject({ operationId: 'list_audit_events_route', security: [{ apiKey: [] }] });
  });

  it('`branchwise audit` prints the newest events as lines', async () => {
    const options = testApp.database.options;
    const env = { DATA_DIR: options.dataDir, DATABASE_URL: options.databaseUrl ?? '' };
    const whole = await allEvents();
    const agentId = whole.find((event) => event.agent_id)!.agent_id!;
    const { stdout } = await runCli(env, 'audit', '--agent', agentId, '--limit', '3');
    const lines = stdout.trimEnd().split('\n').map((line) => line.split('\t'));
    const expected = whole.filter((event) => event.agent_id === agentId).slice(0, 3);
    expect(lines).toHaveLength(expected.length);
    lines.forEach((line, i) => {
      expect(line[1]).toBe(expected[i].action);
      expect(line[3]).toBe(agentId);
      expect(line[5]).toBe(JSON.stringify(expected[i].details));
    });
  });
});
