import { ElevenLabs, type ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { bucketOf } from '../../src/domain/traffic-split.js';
import { snapshotDatabase } from '../support/db-snapshot.js';
import { failure } from '../support/sdk-errors.js';
import { listen, sdk, startTestApp, type TestApp } from '../support/test-app.js';

let testApp: TestApp;
let baseUrl: string;
let admin: ElevenLabsClient;
let editor: ElevenLabsClient;

beforeAll(async () => {
  testApp = await startTestApp();
  baseUrl = await listen(testApp);
  admin = sdk(baseUrl, testApp.keys.admin);
  editor = sdk(baseUrl, testApp.keys.editor);
});
afterAll(() => testApp.close());


const request = (branchId: string, trafficPercentage: number) => ({ branchId, deploymentStrategy: { type: 'percentage' as const, trafficPercentage } });

/** An agent with main and two more branches, each with its own first message. */
async function agentWithBranches() {
  const { agentId } = await editor.conversationalAi.agents.create({ name: 'Split', conversationConfig: { agent: { firstMessage: 'main' } } });
  const main = await editor.conversationalAi.agents.get(agentId);
  const make = async (name: string) =>
    (
      await editor.conversationalAi.agents.branches.create(agentId, {
        parentVersionId: main.versionId!,
        name,
        description: '',
        conversationConfig: { agent: { firstMessage: name } },
      })
    ).createdBranchId;
  return { agentId, main: main.mainBranchId!, canary: await make('canary'), other: await make('other') };
}

/** The routed read, through the SDK (the selector is an extension, sent as a query parameter). */
async function routed(client: ElevenLabsClient, agentId: string, conversationId: string) {
  return client.conversationalAi.agents.get(agentId, {}, { queryParams: { conversation_id: conversationId } });
}

describe('deployments through the SDK', () => {
  it('every new agent has exactly one active deployment: all traffic on main', async () => {
    const { agentId, main } = await agentWithBranches();
    const history = await editor.conversationalAi.agents.deployments.list(agentId);
    expect(history.results).toHaveLength(1);
    expect(history.results[0]).toMatchObject({ isActive: true, source: 'manual', trafficPercentageBranchIdMap: { [main]: 100 } });
    expect(history.results[0].id).toMatch(/^agtdpl_/);
    expect(history.results[0].accessInfo?.creatorName).toBe('editor-user');
    const branches = await editor.conversationalAi.agents.branches.list(agentId);
    expect(branches.results.map((branch) => branch.currentLivePercentage)).toEqual([100, 0, 0]);
  });

  it('declares the whole split, lists history newest first, and routes conversations stickily', async () => {
    const { agentId, main, canary, other } = await agentWithBranches();
    const created = await editor.conversationalAi.agents.deployments.create(agentId, {
      deploymentRequest: { requests: [request(main, 90), request(canary, 10), request(other, 0)] },
    });
    expect(created.trafficPercentageBranchIdMap).toEqual({ [main]: 90, [canary]: 10, [other]: 0 });

    const history = await editor.conversationalAi.agents.deployments.list(agentId);
    expect(history.meta?.total).toBe(2);
    expect(history.results.map((item) => item.isActive)).toEqual([true, false]);
    expect(history.results[0].trafficPercentageBranchIdMap).toEqual({ [main]: 90, [canary]: 10, [other]: 0 });
    const paged = await editor.conversationalAi.agents.deployments.list(agentId, { page: 2, pageSize: 1 });
    expect(paged.results.map((item) => item.trafficPercentageBranchIdMap)).toEqual([{ [main]: 100 }]);
    expect(paged.meta).toMatchObject({ total: 2, page: 2, pageSize: 1 });

    const shares = await editor.conversationalAi.agents.branches.list(agentId);
    expect(Object.fromEntries(shares.results.map((branch) => [branch.name, branch.currentLivePercentage]))).toEqual({
      Main: 90,
      canary: 10,
      other: 0,
    });
    expect((await editor.conversationalAi.agents.branches.get(agentId, canary)).currentLivePercentage).toBe(10);

    // 400 conversations: about 10% on the canary, each always on the same branch.
    const assigned = new Map<string, string>();
    for (let i = 0; i < 400; i++) {
      const agent = await routed(editor, agentId, `conv_${i}`);
      expect([main, canary]).toContain(agent.branchId);
      expect(agent.conversationConfig.agent?.firstMessage).toBe(agent.branchId === main ? 'main' : 'canary');
      assigned.set(`conv_${i}`, agent.branchId!);
    }
    const onCanary = [...assigned.values()].filter((branch) => branch === canary).length;
    expect(onCanary).toBeGreaterThan(15);
    expect(onCanary).toBeLessThan(80);
    for (const [conversation, branch] of [...assigned].slice(0, 50)) expect((await routed(editor, agentId, conversation)).branchId).toBe(branch);

    // routing_key: stickiness per caller, same buckets.
    const byPhone = await editor.conversationalAi.agents.get(agentId, {}, { queryParams: { routing_key: '+15550100' } });
    expect(byPhone.branchId).toBe((await routed(editor, agentId, '+15550100')).branchId);

    // Widening the canary keeps every canary conversation on the canary.
    await editor.conversationalAi.agents.deployments.create(agentId, {
      deploymentRequest: { requests: [request(main, 70), request(canary, 30)] },
    });
    for (const [conversation, branch] of assigned) {
      if (branch === canary) expect((await routed(editor, agentId, conversation)).branchId).toBe(canary);
    }
  });

  it('lets an explicit branch or version bypass the split: a 0% branch can still be reached', async () => {
    const { agentId, other } = await agentWithBranches();
    const atOther = await editor.conversationalAi.agents.get(agentId, { branchId: other }, { queryParams: { conversation_id: 'conv_1' } });
    expect(atOther.branchId).toBe(other);
    expect(atOther.conversationConfig.agent?.firstMessage).toBe('other');
    const routedMain = await routed(editor, agentId, 'conv_1');
    expect(routedMain.branchId).toBe(routedMain.mainBranchId);
  });

  it('routes a new commit at once: the routed read serves the branch head', async () => {
    const { agentId, main, canary } = await agentWithBranches();
    await editor.conversationalAi.agents.deployments.create(agentId, { deploymentRequest: { requests: [request(main, 50), request(canary, 50)] } });
    let conversation = 'c0';
    for (let i = 0; bucketOf(agentId, conversation) < 5_000 === false; i++) conversation = `c${i}`;
    const before = await routed(editor, agentId, conversation);
    const committed = await editor.conversationalAi.agents.update(agentId, {
      branchId: before.branchId!,
      conversationConfig: { agent: { firstMessage: 'fresh' } },
    });
    const after = await routed(editor, agentId, conversation);
    expect(after.versionId).toBe(committed.versionId);
    expect(after.conversationConfig.agent?.firstMessage).toBe('fresh');
  });

  it('serves repeated routed reads with the same bytes, and never a stale config', async () => {
    const { agentId, main, canary } = await agentWithBranches();
    await editor.conversationalAi.agents.deployments.create(agentId, { deploymentRequest: { requests: [request(main, 50), request(canary, 50)] } });
    const url = `${baseUrl}/v1/convai/agents/${agentId}?conversation_id=conv_fast`;
    const read = async () => {
      const response = await fetch(url, { headers: { 'xi-api-key': testApp.keys.editor } });
      return { status: response.status, text: await response.text() };
    };
    const first = await read();
    const second = await read();
    expect(second).toEqual(first);
    const branchId = (JSON.parse(first.text) as { branch_id: string }).branch_id;

    // A commit to that branch: the next read is the new head, not the cached bytes.
    await editor.conversationalAi.agents.update(agentId, { branchId, conversationConfig: { agent: { firstMessage: 'changed' } } });
    const third = await read();
    expect((JSON.parse(third.text) as { conversation_config: { agent: { first_message: string } } }).conversation_config.agent.first_message).toBe('changed');
    // A caller with another role gets its own access_info, never someone else's bytes.
    const asViewer = await fetch(url, { headers: { 'xi-api-key': testApp.keys.viewer } });
    expect(((await asViewer.json()) as { access_info: { role: string } }).access_info.role).toBe('viewer');
    // Without a key: the full route's 401, not the cache.
    expect((await fetch(url)).status).toBe(401);
  });

  it('serves head and version reads always at the current head', async () => {
    const { agentId, canary } = await agentWithBranches();
    const read = async (query: string, key = testApp.keys.editor) => {
      const response = await fetch(`${baseUrl}/v1/convai/agents/${agentId}${query}`, { headers: { 'xi-api-key': key } });
      return { status: response.status, body: (await response.json()) as Record<string, any> };
    };
    await read('');
    const atCanary = await read(`?branch_id=${canary}`);
    expect(atCanary.body.conversation_config.agent.first_message).toBe('canary');
    const committed = await editor.conversationalAi.agents.update(agentId, { branchId: canary, conversationConfig: { agent: { firstMessage: 'newer' } } });
    const after = await read(`?branch_id=${canary}`);
    expect(after.body.version_id).toBe(committed.versionId);
    expect(after.body.conversation_config.agent.first_message).toBe('newer');
    expect((await read(`?version_id=${atCanary.body.version_id}`)).body.conversation_config.agent.first_message).toBe('canary');
    // Misses and errors are the full route's: unknown branch, both selectors mismatched, another workspace.
    expect((await read('?branch_id=agtbrch_unknown')).status).toBe(404);
    expect((await read(`?branch_id=${canary}&version_id=${committed.versionId}`)).status).toBe(200);
    expect((await read(`?branch_id=${after.body.main_branch_id}&version_id=${committed.versionId}`)).status).toBe(422);
    expect((await read('', testApp.foreignKey)).status).toBe(404);
  });

  it('refuses bad splits with a 422 at the item, and changes nothing', async () => {
    const { agentId, main, canary, other } = await agentWithBranches();
    const foreign = await sdk(baseUrl, testApp.foreignKey).conversationalAi.agents.create({ conversationConfig: {} });
    const foreignMain = (await sdk(baseUrl, testApp.foreignKey).conversationalAi.agents.get(foreign.agentId)).mainBranchId!;
    await editor.conversationalAi.agents.branches.update(agentId, other, { isArchived: true });
    const before = await snapshotDatabase(testApp.store.db);

    const cases: [string, ReturnType<typeof request>[], (string | number)[], string][] = [
      ['a total of 99.5', [request(main, 90), request(canary, 9.5)], ['body', 'deployment_request', 'requests'], 'percentages total 99.5; a deployment declares the whole allocation and must total 100'],
      ['a total of 120', [request(main, 60), request(canary, 60)], ['body', 'deployment_request', 'requests'], 'percentages total 120; a deployment declares the whole allocation and must total 100'],
      ['a total just over 100', [request(main, 50), request(canary, 50.001)], ['body', 'deployment_request', 'requests'], 'percentages total 100.001'],
      ['a branch named twice', [request(main, 50), request(main, 50)], ['body', 'deployment_request', 'requests', 1, 'branch_id'], 'named twice'],
      ['an unknown branch', [request(main, 50), request('agtbrch_unknown', 50)], ['body', 'deployment_request', 'requests', 1, 'branch_id'], 'is not a branch of agent'],
      ['a branch of another workspace', [request(foreignMain, 100)], ['body', 'deployment_request', 'requests', 0, 'branch_id'], 'is not a branch of agent'],
      ['an archived branch', [request(main, 99), request(other, 1)], ['body', 'deployment_request', 'requests', 1, 'branch_id'], 'is archived'],
      ['a percentage over 100', [request(main, 101)], ['body', 'deployment_request', 'requests', 0, 'deployment_strategy', 'traffic_percentage'], ''],
      ['a negative percentage', [request(main, 110), request(canary, -10)], ['body', 'deployment_request', 'requests', 1, 'deployment_strategy', 'traffic_percentage'], ''],
      ['no branches at all', [], ['body', 'deployment_request', 'requests'], 'percentages total 0'],
    ];
    for (const [label, requests, loc, message] of cases) {
      const error = await failure(editor.conversationalAi.agents.deployments.create(agentId, { deploymentRequest: { requests } }));
      expect(error, label).toBeInstanceOf(ElevenLabs.UnprocessableEntityError);
      const detail = (error.body as { detail: { loc: (string | number)[]; msg: string }[] }).detail;
      const issue = detail.find((item) => JSON.stringify(item.loc) === JSON.stringify(loc));
      expect(issue, `${label}: ${JSON.stringify(detail)}`).toBeDefined();
      expect(issue!.msg).toContain(message);
    }
    expect(await snapshotDatabase(testApp.store.db)).toBe(before);
    expect((await editor.conversationalAi.agents.deployments.list(agentId)).results).toHaveLength(1);
  });

  it('allows fractions that total exactly 100', async () => {
    const { agentId, main, canary, other } = await agentWithBranches();
    const created = await editor.conversationalAi.agents.deployments.create(agentId, {
      deploymentRequest: { requests: [request(main, 33.3), request(canary, 33.3), request(other, 33.4)] },
    });
    expect(created.trafficPercentageBranchIdMap).toEqual({ [main]: 33.3, [canary]: 33.3, [other]: 33.4 });
  });

  it('refuses to archive a branch with live traffic, and allows it at 0%', async () => {
    const { agentId, main, canary } = await agentWithBranches();
    await editor.conversationalAi.agents.deployments.create(agentId, { deploymentRequest: { requests: [request(main, 95), request(canary, 5)] } });
    const refused = await failure(editor.conversationalAi.agents.branches.update(agentId, canary, { isArchived: true }));
    expect(refused.statusCode).toBe(409);
    expect((refused.body as { detail: { code: string; message: string } }).detail).toMatchObject({ code: 'branch_has_live_traffic' });
    expect((refused.body as { detail: { message: string } }).detail.message).toContain('5% of live traffic');
    await editor.conversationalAi.agents.deployments.create(agentId, { deploymentRequest: { requests: [request(main, 100)] } });
    expect((await editor.conversationalAi.agents.branches.update(agentId, canary, { isArchived: true })).isArchived).toBe(true);
  });

  it('needs admin to change the share of an admin-protected branch', async () => {
    const { agentId, main, canary } = await agentWithBranches();
    await admin.conversationalAi.agents.branches.update(agentId, main, { protectionStatus: 'admin_perms_required' });
    const refused = await failure(
      editor.conversationalAi.agents.deployments.create(agentId, { deploymentRequest: { requests: [request(main, 80), request(canary, 20)] } }),
    );
    expect(refused.statusCode).toBe(403);
    const done = await admin.conversationalAi.agents.deployments.create(agentId, {
      deploymentRequest: { requests: [request(main, 80), request(canary, 20)] },
    });
    expect(done.trafficPercentageBranchIdMap).toEqual({ [main]: 80, [canary]: 20 });
  });

  it('keeps exactly one active deployment under concurrent deployments, with a complete history', async () => {
    const { agentId, main, canary } = await agentWithBranches();
    const splits = Array.from({ length: 20 }, (_, i) => [request(main, 100 - i), request(canary, i)]);
    const results = await Promise.all(
      splits.map((requests) => editor.conversationalAi.agents.deployments.create(agentId, { deploymentRequest: { requests } })),
    );
    expect(results).toHaveLength(20);
    const history = await editor.conversationalAi.agents.deployments.list(agentId, { pageSize: 100 });
    expect(history.results).toHaveLength(21);
    expect(history.results.filter((item) => item.isActive)).toHaveLength(1);
    const seen = history.results.slice(0, 20).map((item) => item.trafficPercentageBranchIdMap?.[canary]);
    expect(seen.sort((a, b) => a! - b!)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const active = history.results[0];
    const live = await editor.conversationalAi.agents.branches.get(agentId, canary);
    expect(live.currentLivePercentage).toBe(active.trafficPercentageBranchIdMap?.[canary]);
  });
});

describe('rollback and restore (extensions)', () => {
  async function post(path: string, body?: unknown, key = testApp.keys.editor) {
    const response = await fetch(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { 'xi-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify(body ?? {}),
    });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  }

  it('re-activates an earlier split as a new history item, moving as few conversations as possible', async () => {
    const { agentId, main, canary } = await agentWithBranches();
    await editor.conversationalAi.agents.deployments.create(agentId, { deploymentRequest: { requests: [request(main, 90), request(canary, 10)] } });
    const stable = (await editor.conversationalAi.agents.deployments.list(agentId)).results[0];
    const before = new Map<string, string>();
    for (let i = 0; i < 200; i++) before.set(`conv_${i}`, (await routed(editor, agentId, `conv_${i}`)).branchId!);
    await editor.conversationalAi.agents.deployments.create(agentId, { deploymentRequest: { requests: [request(main, 50), request(canary, 50)] } });

    const rolledBack = await post(`/v1/convai/agents/${agentId}/deployments/${stable.id}/rollback`);
    expect(rolledBack.status).toBe(200);
    expect(rolledBack.body).toMatchObject({ is_active: true, source: 'manual', traffic_percentage_branch_id_map: { [main]: 90, [canary]: 10 } });
    const history = await editor.conversationalAi.agents.deployments.list(agentId);
    expect(history.results).toHaveLength(4);
    expect(history.results[0].id).toBe(rolledBack.body.id);
    // Back to 90/10 from 50/50 by moving only canary conversations: those on main at 90/10 are on main again.
    for (const [conversation, branch] of before) {
      if (branch === main) expect((await routed(editor, agentId, conversation)).branchId).toBe(main);
    }

    expect((await post(`/v1/convai/agents/${agentId}/deployments/agtdpl_unknown/rollback`)).status).toBe(404);
  });

  it('refuses a rollback to a split whose branch was archived since (409), changing nothing', async () => {
    const { agentId, main, canary } = await agentWithBranches();
    await editor.conversationalAi.agents.deployments.create(agentId, { deploymentRequest: { requests: [request(main, 80), request(canary, 20)] } });
    const withCanary = (await editor.conversationalAi.agents.deployments.list(agentId)).results[0];
    await editor.conversationalAi.agents.deployments.create(agentId, { deploymentRequest: { requests: [request(main, 100)] } });
    await editor.conversationalAi.agents.branches.update(agentId, canary, { isArchived: true });
    const before = await snapshotDatabase(testApp.store.db);
    const refused = await post(`/v1/convai/agents/${agentId}/deployments/${withCanary.id}/rollback`);
    expect(refused.status).toBe(409);
    expect(refused.body.detail.code).toBe('branch_archived');
    expect(await snapshotDatabase(testApp.store.db)).toBe(before);
  });

  it('restores a branch to an earlier version as a new version that says what it restores', async () => {
    const { agentId, main } = await agentWithBranches();
    const good = await editor.conversationalAi.agents.get(agentId);
    const bad = await editor.conversationalAi.agents.update(agentId, { conversationConfig: { agent: { firstMessage: 'oops, broken' } } });
    const restored = await post(`/v1/convai/agents/${agentId}/branches/${main}/restore`, {
      version_id: good.versionId,
      version_description: 'undo the broken greeting',
    });
    expect(restored.status).toBe(200);
    expect(restored.body.version_id).not.toBe(bad.versionId);
    expect(restored.body.conversation_config.agent.first_message).toBe('main');
    const metadata = await editor.conversationalAi.agents.versions.get(agentId, restored.body.version_id);
    expect(metadata.seqNoInBranch).toBe(3);
    expect(metadata.versionDescription).toContain(`Restore of version ${good.versionId}`);
    expect(metadata.versionDescription).toContain('undo the broken greeting');
    // The routed read serves the restored config at once.
    expect((await routed(editor, agentId, 'anyone')).versionId).toBe(restored.body.version_id);

    const unknown = await post(`/v1/convai/agents/${agentId}/branches/${main}/restore`, { version_id: 'agtvrsn_nope' });
    expect(unknown.status).toBe(422);
    expect(unknown.body.detail[0].loc).toEqual(['body', 'version_id']);
    const viewer = await post(`/v1/convai/agents/${agentId}/branches/${main}/restore`, { version_id: good.versionId }, testApp.keys.viewer);
    expect(viewer.status).toBe(403);
  });
});
