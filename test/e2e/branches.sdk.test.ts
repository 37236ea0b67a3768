import { ElevenLabs, type ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { codeOf, failure } from '../support/sdk-errors.js';
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



async function newAgent(client: ElevenLabsClient = editor) {
  const { agentId } = await client.conversationalAi.agents.create({
    name: 'Branching agent',
    conversationConfig: { agent: { firstMessage: 'main v1', prompt: { prompt: 'Be brief.' } } },
  });
  const agent = await client.conversationalAi.agents.get(agentId);
  return { agentId, mainBranchId: agent.mainBranchId!, v1: agent.versionId! };
}

describe('branches through the SDK', () => {
  it('creates branches from any version of any branch, with changes applied to the first version', async () => {
    const { agentId, mainBranchId, v1 } = await newAgent();
    await editor.conversationalAi.agents.update(agentId, { conversationConfig: { agent: { firstMessage: 'main v2' } } });

    const feature = await editor.conversationalAi.agents.branches.create(agentId, {
      parentVersionId: v1,
      name: 'feature/greeting (v2)',
      description: 'A warmer greeting',
      conversationConfig: { agent: { firstMessage: 'feature v1' } },
    });
    expect(feature.createdBranchId).toMatch(/^agtbrch_/);
    const featureHead = await editor.conversationalAi.agents.update(agentId, {
      branchId: feature.createdBranchId,
      conversationConfig: { agent: { prompt: { temperature: 0.9 } } },
      versionDescription: 'hotter',
    });

    // A branch of the branch, cut from its first version.
    const nested = await editor.conversationalAi.agents.branches.create(agentId, {
      parentVersionId: feature.createdVersionId,
      name: 'nested',
      description: '',
    });
    // The SDK sends this untyped field's keys as written (camelCase); they land on the real fields.
    const raw = (await (
      await fetch(`${baseUrl}/v1/convai/agents/${agentId}?branch_id=${feature.createdBranchId}`, { headers: { 'xi-api-key': testApp.keys.editor } })
    ).json()) as { conversation_config: { agent: Record<string, unknown> } };
    expect(raw.conversation_config.agent.first_message).toBe('feature v1');
    expect(raw.conversation_config.agent).not.toHaveProperty('firstMessage');
    const nestedAgent = await editor.conversationalAi.agents.get(agentId, { branchId: nested.createdBranchId });
    expect(nestedAgent.conversationConfig.agent?.firstMessage).toBe('feature v1');
    expect(nestedAgent.conversationConfig.agent?.prompt?.temperature).toBe(0);

    const branch = await editor.conversationalAi.agents.branches.get(agentId, feature.createdBranchId);
    expect(branch.name).toBe('feature/greeting (v2)');
    expect(branch.description).toBe('A warmer greeting');
    expect(branch.currentLivePercentage).toBe(0);
    expect(branch.parentBranch).toEqual({ id: mainBranchId, name: 'Main' });
    expect(branch.accessInfo?.creatorName).toBe('editor-user');
    expect(branch.mostRecentVersions?.map((version) => version.id)).toEqual([featureHead.versionId, feature.createdVersionId]);
    const [head, first] = branch.mostRecentVersions!;
    expect(head.parents.inBranchParentId).toBe(feature.createdVersionId);
    expect(head.versionDescription).toBe('hotter');
    expect(first.seqNoInBranch).toBe(1);
    expect(first.parents.outOfBranchParentId).toBe(v1);
    expect(first.parents.inBranchParentId ?? null).toBeNull();

    const nestedBranch = await editor.conversationalAi.agents.branches.get(agentId, nested.createdBranchId);
    expect(nestedBranch.parentBranch?.id).toBe(feature.createdBranchId);

    const main = await editor.conversationalAi.agents.branches.get(agentId, mainBranchId);
    expect(main.currentLivePercentage).toBe(100);
    expect(main.mostRecentVersions?.map((version) => version.seqNoInBranch)).toEqual([2, 1]);
  });

  it('lists branches with include_archived, limit, and commit status only when asked', async () => {
    const { agentId, v1 } = await newAgent();
    for (const name of ['one', 'two', 'three']) {
      await editor.conversationalAi.agents.branches.create(agentId, { parentVersionId: v1, name, description: '' });
    }
    const all = await editor.conversationalAi.agents.branches.list(agentId, { includeCommitStatus: true });
    expect(all.results.map((branch) => branch.name)).toEqual(['Main', 'one', 'two', 'three']);
    expect(all.meta?.total).toBe(4);
    // A branch's first version counts as ahead (git rev-list --count, decisions.md D11).
    expect(all.results[1]).toMatchObject({ commitsAhead: 1, commitsBehind: 0 });
    const unasked = await editor.conversationalAi.agents.branches.list(agentId);
    expect(unasked.results[1].commitsAhead ?? null).toBeNull();
    expect(all.results[1].parentBranchId).toBe(all.results[0].id);
    expect(all.results[1].draftExists).toBe(false);

    const limited = await editor.conversationalAi.agents.branches.list(agentId, { limit: 2 });
    expect(limited.results.map((branch) => branch.name)).toEqual(['Main', 'one']);

    await editor.conversationalAi.agents.branches.update(agentId, all.results[2].id, { isArchived: true });
    const visible = await editor.conversationalAi.agents.branches.list(agentId);
    expect(visible.results.map((branch) => branch.name)).toEqual(['Main', 'one', 'three']);
    const withArchived = await editor.conversationalAi.agents.branches.list(agentId, { includeArchived: true });
    expect(withArchived.results.find((branch) => branch.name === 'two')?.isArchived).toBe(true);
  });

  it('renames with uniqueness, and refuses a taken name on create', async () => {
    const { agentId, v1 } = await newAgent();
    const a = await editor.conversationalAi.agents.branches.create(agentId, { parentVersionId: v1, name: 'alpha', description: '' });
    await editor.conversationalAi.agents.branches.create(agentId, { parentVersionId: v1, name: 'beta', description: '' });
    const renamed = await editor.conversationalAi.agents.branches.update(agentId, a.createdBranchId, { name: 'gamma' });
    expect(renamed.name).toBe('gamma');
    expect((await editor.conversationalAi.agents.branches.get(agentId, a.createdBranchId)).name).toBe('gamma');

    const taken = await failure(editor.conversationalAi.agents.branches.update(agentId, a.createdBranchId, { name: 'beta' }));
    expect(taken.statusCode).toBe(409);
    const duplicate = await failure(
      editor.conversationalAi.agents.branches.create(agentId, { parentVersionId: v1, name: 'beta', description: '' }),
    );
    expect(duplicate.statusCode).toBe(409);
    expect(codeOf(duplicate)).toBe('resource_already_exists');
    const bad = await failure(editor.conversationalAi.agents.branches.update(agentId, a.createdBranchId, { name: 'no!' }));
    expect(bad).toBeInstanceOf(ElevenLabs.UnprocessableEntityError);
    expect((await editor.conversationalAi.agents.branches.get(agentId, a.createdBranchId)).name).toBe('gamma');
  });

  it('archives branches at 0% only, never main, and refuses commits to archived branches', async () => {
    const { agentId, mainBranchId, v1 } = await newAgent();
    const feature = await editor.conversationalAi.agents.branches.create(agentId, { parentVersionId: v1, name: 'feature', description: '' });

    const mainArchive = await failure(editor.conversationalAi.agents.branches.update(agentId, mainBranchId, { isArchived: true }));
    expect(mainArchive.statusCode).toBe(409);
    expect((await editor.conversationalAi.agents.branches.get(agentId, mainBranchId)).isArchived).toBe(false);

    const archived = await editor.conversationalAi.agents.branches.update(agentId, feature.createdBranchId, { isArchived: true });
    expect(archived.isArchived).toBe(true);
    const commit = await failure(
      editor.conversationalAi.agents.update(agentId, { branchId: feature.createdBranchId, conversationConfig: { agent: { firstMessage: 'x' } } }),
    );
    expect(commit.statusCode).toBe(409);
    expect(codeOf(commit)).toBe('branch_archived');
    expect((await editor.conversationalAi.agents.branches.get(agentId, feature.createdBranchId)).mostRecentVersions).toHaveLength(1);

    await editor.conversationalAi.agents.branches.update(agentId, feature.createdBranchId, { isArchived: false });
    const ok = await editor.conversationalAi.agents.update(agentId, {
      branchId: feature.createdBranchId,
      conversationConfig: { agent: { firstMessage: 'x' } },
    });
    expect(ok.conversationConfig.agent?.firstMessage).toBe('x');
  });

  it('lets only admins change protection, and protected branches take commits from admins only', async () => {
    const { agentId, mainBranchId } = await newAgent();
    const refused = await failure(
      editor.conversationalAi.agents.branches.update(agentId, mainBranchId, { protectionStatus: 'admin_perms_required' }),
    );
    expect(refused.statusCode).toBe(403);
    expect((await editor.conversationalAi.agents.branches.get(agentId, mainBranchId)).protectionStatus).toBe('writer_perms_required');

    const updated = await admin.conversationalAi.agents.branches.update(agentId, mainBranchId, {
      protectionStatus: 'admin_perms_required',
    });
    expect(updated.protectionStatus).toBe('admin_perms_required');
    const blocked = await failure(editor.conversationalAi.agents.update(agentId, { conversationConfig: { agent: { firstMessage: 'sneaky' } } }));
    expect(blocked.statusCode).toBe(403);
    expect((await editor.conversationalAi.agents.get(agentId)).conversationConfig.agent?.firstMessage).toBe('main v1');
    const byAdmin = await admin.conversationalAi.agents.update(agentId, { conversationConfig: { agent: { firstMessage: 'approved' } } });
    expect(byAdmin.conversationConfig.agent?.firstMessage).toBe('approved');
  });

  it('stores auto_rebase, and refuses it on main', async () => {
    const { agentId, mainBranchId, v1 } = await newAgent();
    const feature = await editor.conversationalAi.agents.branches.create(agentId, { parentVersionId: v1, name: 'auto', description: '' });
    const updated = await editor.conversationalAi.agents.branches.update(agentId, feature.createdBranchId, { autoRebase: true });
    expect(updated.autoRebase).toBe(true);
    const listed = await editor.conversationalAi.agents.branches.list(agentId);
    expect(listed.results.find((branch) => branch.id === feature.createdBranchId)?.autoRebase).toBe(true);
    const onMain = await failure(editor.conversationalAi.agents.branches.update(agentId, mainBranchId, { autoRebase: true }));
    expect(onMain).toBeInstanceOf(ElevenLabs.UnprocessableEntityError);
    expect((await editor.conversationalAi.agents.branches.get(agentId, mainBranchId)).autoRebase).toBe(false);
  });

  it('reads version metadata, and 404s for versions of other agents', async () => {
    const first = await newAgent();
    const second = await newAgent();
    const metadata = await editor.conversationalAi.agents.versions.get(first.agentId, first.v1);
    expect(metadata).toMatchObject({ id: first.v1, agentId: first.agentId, branchId: first.mainBranchId, seqNoInBranch: 1 });
    expect(metadata.accessInfo?.creatorName).toBe('editor-user');
    expect(typeof metadata.timeCommittedSecs).toBe('number');
    const foreign = await failure(editor.conversationalAi.agents.versions.get(second.agentId, first.v1));
    expect(foreign.statusCode).toBe(404);
    const branchOfOther = await failure(editor.conversationalAi.agents.branches.get(second.agentId, first.mainBranchId));
    expect(branchOfOther.statusCode).toBe(404);
  });
});
