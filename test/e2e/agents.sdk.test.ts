import { ElevenLabs, ElevenLabsError, type ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { listen, sdk, startTestApp, type TestApp } from '../support/test-app.js';

// Every agent operation through the official SDK against a listening server: the SDK parses
// each response strictly, so a missing or mistyped field fails the call.

let testApp: TestApp;
let client: ElevenLabsClient;
let baseUrl: string;

beforeAll(async () => {
  testApp = await startTestApp();
  baseUrl = await listen(testApp);
  client = sdk(baseUrl, testApp.keys.admin);
});
afterAll(() => testApp.close());

async function expectApiError(promise: Promise<unknown>, statusCode: number, code?: string) {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error, `expected HTTP ${statusCode}`).toBeInstanceOf(ElevenLabsError);
  expect((error as ElevenLabsError).statusCode).toBe(statusCode);
  if (code) expect(((error as ElevenLabsError).body as { detail: { code: string } }).detail.code).toBe(code);
  return error as ElevenLabsError;
}

async function createAgent(name = 'Support bot', extra: Record<string, unknown> = {}) {
  const { agentId } = await client.conversationalAi.agents.create({
    name,
    tags: ['support'],
    conversationConfig: { agent: { firstMessage: 'Hi there', prompt: { prompt: 'You are helpful.', temperature: 0.2 } } },
    ...extra,
  });
  return agentId;
}

describe('agents through the SDK', () => {
  it('creates an agent with its main branch and version 1, with upstream defaults filled in', async () => {
    const agentId = await createAgent();
    expect(agentId).toMatch(/^agent_[0-9a-z]{28}$/);
    const agent = await client.conversationalAi.agents.get(agentId);
    expect(agent.name).toBe('Support bot');
    expect(agent.tags).toEqual(['support']);
    expect(agent.branchId).toBe(agent.mainBranchId);
    expect(agent.versionId).toMatch(/^agtvrsn_/);
    expect(agent.conversationConfig.agent?.firstMessage).toBe('Hi there');
    expect(agent.conversationConfig.agent?.prompt?.temperature).toBe(0.2);
    // Declared defaults, including those of sub-objects that were not sent at all.
    expect(agent.conversationConfig.agent?.language).toBe('en');
    expect(agent.conversationConfig.asr).toBeDefined();
    expect(agent.conversationConfig.tts?.voiceId).toBeTruthy();
    expect(agent.accessInfo?.isCreator).toBe(true);
    expect(agent.accessInfo?.creatorName).toBe('admin');

    const version = await client.conversationalAi.agents.versions.get(agentId, agent.versionId!);
    expect(version.seqNoInBranch).toBe(1);
    expect(version.branchId).toBe(agent.mainBranchId);
    expect(version.parents.inBranchParentId ?? null).toBeNull();

    const branches = await client.conversationalAi.agents.branches.list(agentId);
    expect(branches.results.map((branch) => [branch.name, branch.currentLivePercentage])).toEqual([['Main', 100]]);
  });

  it('accepts and ignores enable_versioning', async () => {
    const { agentId } = await client.conversationalAi.agents.create({
      enableVersioning: false,
      conversationConfig: {},
    });
    const agent = await client.conversationalAi.agents.get(agentId);
    expect(agent.versionId).toBeTruthy();
  });

  it('commits with PATCH: objects merge, arrays replace, null removes, a no-op makes no version', async () => {
    const agentId = await createAgent('Merge semantics');
    const first = await client.conversationalAi.agents.get(agentId);

    const second = await client.conversationalAi.agents.update(agentId, {
      conversationConfig: { agent: { firstMessage: 'Welcome back' } },
      versionDescription: 'friendlier greeting',
    });
    expect(second.versionId).not.toBe(first.versionId);
    expect(second.conversationConfig.agent?.firstMessage).toBe('Welcome back');
    expect(second.conversationConfig.agent?.prompt?.prompt).toBe('You are helpful.');
    expect(second.conversationConfig.agent?.prompt?.temperature).toBe(0.2);
    const metadata = await client.conversationalAi.agents.versions.get(agentId, second.versionId!);
    expect(metadata.versionDescription).toBe('friendlier greeting');
    expect(metadata.seqNoInBranch).toBe(2);
    expect(metadata.parents.inBranchParentId).toBe(first.versionId);

    // Arrays replace whole.
    await client.conversationalAi.agents.update(agentId, { conversationConfig: { asr: { keywords: ['alpha', 'beta'] } } });
    const replaced = await client.conversationalAi.agents.update(agentId, { conversationConfig: { asr: { keywords: ['gamma'] } } });
    expect(replaced.conversationConfig.asr?.keywords).toEqual(['gamma']);

    // null removes the key; its schema default applies again.
    const raw = await fetch(`${baseUrl}/v1/convai/agents/${agentId}`, {
      method: 'PATCH',
      headers: { 'xi-api-key': testApp.keys.admin, 'content-type': 'application/json' },
      body: JSON.stringify({ conversation_config: { agent: { first_message: null } } }),
    });
    expect(raw.status).toBe(200);
    const removed = await client.conversationalAi.agents.get(agentId);
    expect(removed.conversationConfig.agent?.firstMessage).toBe('');

    // The same change again creates nothing.
    const noop = await client.conversationalAi.agents.update(agentId, { conversationConfig: { asr: { keywords: ['gamma'] } } });
    expect(noop.versionId).toBe(removed.versionId);
    const branch = await client.conversationalAi.agents.branches.get(agentId, first.mainBranchId!);
    expect(branch.mostRecentVersions?.map((version) => version.seqNoInBranch)).toEqual([5, 4, 3, 2, 1]);
  });

  it('replaces the workflow whole', async () => {
    const agentId = await createAgent('Workflow');
    await client.conversationalAi.agents.update(agentId, {
      workflow: {
        nodes: { start: { type: 'start' }, end_a: { type: 'end' }, end_b: { type: 'end' } },
        edges: {},
      },
    });
    const after = await client.conversationalAi.agents.update(agentId, {
      workflow: { nodes: { start: { type: 'start' }, end_a: { type: 'end' } }, edges: {} },
    });
    expect(Object.keys(after.workflow?.nodes ?? {}).sort()).toEqual(['end_a', 'start']);
  });

  it('applies name and tags to the agent only when committed on main', async () => {
    const agentId = await createAgent('Original');
    const main = await client.conversationalAi.agents.get(agentId);
    const { createdBranchId } = await client.conversationalAi.agents.branches.create(agentId, {
      parentVersionId: main.versionId!,
      name: 'rename-test',
      description: 'try a new name',
    });
    const onBranch = await client.conversationalAi.agents.update(agentId, { branchId: createdBranchId, name: 'Renamed', tags: ['x'] });
    expect(onBranch.branchId).toBe(createdBranchId);
    expect(onBranch.name).toBe('Renamed');
    const unchanged = await client.conversationalAi.agents.get(agentId);
    expect(unchanged.name).toBe('Original');
    expect(unchanged.tags).toEqual(['support']);

    await client.conversationalAi.agents.update(agentId, { name: 'Renamed on main', tags: ['y', 'z'] });
    const renamed = await client.conversationalAi.agents.get(agentId);
    expect(renamed.name).toBe('Renamed on main');
    expect(renamed.tags).toEqual(['y', 'z']);
    const listed = await client.conversationalAi.agents.list({ search: 'renamed on' });
    expect(listed.agents.map((agent) => agent.agentId)).toEqual([agentId]);
  });

  it('refuses a commit whose expected_version_id is stale (extension)', async () => {
    const agentId = await createAgent('Optimistic');
    const first = await client.conversationalAi.agents.get(agentId);
    const second = await client.conversationalAi.agents.update(agentId, { conversationConfig: { agent: { firstMessage: 'one' } } });
    await expectApiError(
      client.conversationalAi.agents.update(
        agentId,
        { conversationConfig: { agent: { firstMessage: 'two' } } },
        { queryParams: { expected_version_id: first.versionId } },
      ),
      409,
      'concurrent_modification',
    );
    const ok = await client.conversationalAi.agents.update(
      agentId,
      { conversationConfig: { agent: { firstMessage: 'two' } } },
      { queryParams: { expected_version_id: second.versionId } },
    );
    expect(ok.conversationConfig.agent?.firstMessage).toBe('two');
  });

  it('reads at a branch head, at a version, and refuses a version that is not on the given branch', async () => {
    const agentId = await createAgent('Selectors');
    const v1 = await client.conversationalAi.agents.get(agentId);
    const v2 = await client.conversationalAi.agents.update(agentId, { conversationConfig: { agent: { firstMessage: 'v2' } } });
    const atV1 = await client.conversationalAi.agents.get(agentId, { versionId: v1.versionId! });
    expect(atV1.versionId).toBe(v1.versionId);
    expect(atV1.conversationConfig.agent?.firstMessage).toBe('Hi there');

    const { createdBranchId, createdVersionId } = await client.conversationalAi.agents.branches.create(agentId, {
      parentVersionId: v1.versionId!,
      name: 'from-v1',
      description: '',
      conversationConfig: { agent: { firstMessage: 'branch' } },
    });
    const atBranch = await client.conversationalAi.agents.get(agentId, { branchId: createdBranchId });
    expect(atBranch.versionId).toBe(createdVersionId);
    expect(atBranch.branchId).toBe(createdBranchId);
    expect(atBranch.mainBranchId).toBe(v1.mainBranchId);
    expect(atBranch.conversationConfig.agent?.firstMessage).toBe('branch');
    expect(atBranch.conversationConfig.agent?.prompt?.temperature).toBe(0.2);

    const both = await client.conversationalAi.agents.get(agentId, { branchId: v1.mainBranchId!, versionId: v2.versionId! });
    expect(both.versionId).toBe(v2.versionId);
    const mismatch = await client.conversationalAi.agents
      .get(agentId, { branchId: createdBranchId, versionId: v2.versionId! })
      .catch((error: unknown) => error);
    expect(mismatch).toBeInstanceOf(ElevenLabs.UnprocessableEntityError);

    await expectApiError(client.conversationalAi.agents.get(agentId, { versionId: 'agtvrsn_nope' }), 404);
    await expectApiError(client.conversationalAi.agents.get(agentId, { branchId: 'agtbrch_nope' }), 404);
  });

  it('reports a wrong type deep in the config as a 422 pointing at it, and stores nothing', async () => {
    const agentId = await createAgent('Validation');
    const before = await client.conversationalAi.agents.get(agentId);
    const response = await fetch(`${baseUrl}/v1/convai/agents/${agentId}`, {
      method: 'PATCH',
      headers: { 'xi-api-key': testApp.keys.admin, 'content-type': 'application/json' },
      body: JSON.stringify({ conversation_config: { agent: { prompt: { temperature: 'hot' } } } }),
    });
    expect(response.status).toBe(422);
    const body = (await response.json()) as { detail: { loc: unknown[]; msg: string; type: string }[] };
    expect(body.detail[0].loc).toEqual(['body', 'conversation_config', 'agent', 'prompt', 'temperature']);
    const after = await client.conversationalAi.agents.get(agentId);
    expect(after.versionId).toBe(before.versionId);
  });

  it('keeps unknown keys and accepts enum values newer than the spec', async () => {
    const response = await fetch(`${baseUrl}/v1/convai/agents/create`, {
      method: 'POST',
      headers: { 'xi-api-key': testApp.keys.admin, 'content-type': 'application/json' },
      body: JSON.stringify({
        conversation_config: { agent: { prompt: { llm: 'gpt-9-ultra', future_setting: { depth: 2 } } } },
      }),
    });
    expect(response.status).toBe(200);
    const { agent_id: agentId } = (await response.json()) as { agent_id: string };
    const agent = await client.conversationalAi.agents.get(agentId);
    expect(agent.conversationConfig.agent?.prompt?.llm).toBe('gpt-9-ultra');
    const raw = (await (await fetch(`${baseUrl}/v1/convai/agents/${agentId}`, { headers: { 'xi-api-key': testApp.keys.admin } })).json()) as {
      conversation_config: { agent: { prompt: { future_setting: unknown } } };
    };
    expect(raw.conversation_config.agent.prompt.future_setting).toEqual({ depth: 2 });
  });

  it('lists agents with cursor pagination, search, tags and sorting', async () => {
    const other = await startTestApp();
    try {
      const url = await listen(other);
      const isolated = sdk(url, other.keys.editor);
      const names = ['delta', 'alpha', 'echo', 'charlie', 'bravo'];
      for (const name of names) {
        await isolated.conversationalAi.agents.create({ name, tags: name < 'c' ? ['early'] : ['late'], conversationConfig: {} });
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 5; page++) {
        const result = await isolated.conversationalAi.agents.list({ pageSize: 2, cursor, sortBy: 'name', sortDirection: 'asc' });
        seen.push(...result.agents.map((agent) => agent.name));
        if (!result.hasMore) break;
        expect(result.agents).toHaveLength(2);
        cursor = result.nextCursor!;
      }
      expect(seen).toEqual(['alpha', 'bravo', 'charlie', 'delta', 'echo']);

      const newestFirst = await isolated.conversationalAi.agents.list();
      expect(newestFirst.agents.map((agent) => agent.name)).toEqual([...names].reverse());
      expect(newestFirst.hasMore).toBe(false);
      expect(newestFirst.agents[0].voiceId).toBeTruthy();

      const early = await isolated.conversationalAi.agents.list({ tags: 'early' });
      expect(early.agents.map((agent) => agent.name).sort()).toEqual(['alpha', 'bravo']);
      const search = await isolated.conversationalAi.agents.list({ search: 'HAR' });
      expect(search.agents.map((agent) => agent.name)).toEqual(['charlie']);
    } finally {
      await other.close();
    }
  });

  it('returns summaries keyed by id, with failures for unknown and foreign ids', async () => {
    const agentId = await createAgent('Summarised');
    const foreign = await sdk(baseUrl, testApp.foreignKey).conversationalAi.agents.create({ conversationConfig: {} });
    const summaries = await client.conversationalAi.agents.summaries.get({ agentIds: [agentId, 'agent_missing', foreign.agentId] });
    const ok = summaries[agentId];
    expect(ok.status).toBe('success');
    if (ok.status === 'success') expect(ok.data.name).toBe('Summarised');
    expect(summaries.agent_missing.status).toBe('failure');
    expect(summaries[foreign.agentId].status).toBe('failure');
  });

  it('deletes an agent and everything under it', async () => {
    const agentId = await createAgent('Doomed');
    const agent = await client.conversationalAi.agents.get(agentId);
    await client.conversationalAi.agents.delete(agentId);
    await expectApiError(client.conversationalAi.agents.get(agentId), 404, 'agent_not_found');
    await expectApiError(client.conversationalAi.agents.versions.get(agentId, agent.versionId!), 404);
    await expectApiError(client.conversationalAi.agents.branches.list(agentId), 404);
    await expectApiError(client.conversationalAi.agents.delete(agentId), 404);
  });

  it('duplicates an agent with every unarchived branch at its head and no history', async () => {
    const agentId = await createAgent('Original to copy');
    const main = await client.conversationalAi.agents.update(agentId, { conversationConfig: { agent: { firstMessage: 'main head' } } });
    const kept = await client.conversationalAi.agents.branches.create(agentId, {
      parentVersionId: main.versionId!,
      name: 'kept',
      description: 'a feature',
      conversationConfig: { agent: { firstMessage: 'feature head' } },
    });
    const archived = await client.conversationalAi.agents.branches.create(agentId, {
      parentVersionId: main.versionId!,
      name: 'archived',
      description: '',
    });
    await client.conversationalAi.agents.branches.update(agentId, archived.createdBranchId, { isArchived: true });

    const { agentId: copyId } = await client.conversationalAi.agents.duplicate(agentId, { name: 'The copy' });
    const copy = await client.conversationalAi.agents.get(copyId);
    expect(copy.name).toBe('The copy');
    expect(copy.conversationConfig.agent?.firstMessage).toBe('main head');
    const branches = await client.conversationalAi.agents.branches.list(copyId, { includeArchived: true });
    expect(branches.results.map((branch) => branch.name).sort()).toEqual(['Main', 'kept']);
    const keptCopy = branches.results.find((branch) => branch.name === 'kept')!;
    expect(keptCopy.description).toBe('a feature');
    expect(keptCopy.id).not.toBe(kept.createdBranchId);
    const atKept = await client.conversationalAi.agents.get(copyId, { branchId: keptCopy.id });
    expect(atKept.conversationConfig.agent?.firstMessage).toBe('feature head');
    const mainCopy = await client.conversationalAi.agents.branches.get(copyId, copy.mainBranchId!);
    expect(mainCopy.mostRecentVersions).toHaveLength(1);

    const unnamed = await client.conversationalAi.agents.duplicate(agentId);
    expect((await client.conversationalAi.agents.get(unnamed.agentId)).name).toBe('Original to copy (copy)');
    // The source is untouched.
    expect((await client.conversationalAi.agents.get(agentId)).versionId).toBe(main.versionId);
  });
});

describe('auth through the SDK', () => {
  it('needs a valid key, refuses writes to viewers, and hides other workspaces', async () => {
    const agentId = await createAgent('Guarded');
    await expectApiError(sdk(baseUrl, 'sk_not_a_key').conversationalAi.agents.get(agentId), 401, 'invalid_api_key');
    const missing = await fetch(`${baseUrl}/v1/convai/agents/${agentId}`);
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as { detail: { code: string } }).detail.code).toBe('missing_api_key');

    const viewer = sdk(baseUrl, testApp.keys.viewer);
    expect((await viewer.conversationalAi.agents.get(agentId)).name).toBe('Guarded');
    await expectApiError(viewer.conversationalAi.agents.update(agentId, { name: 'nope' }), 403);
    await expectApiError(viewer.conversationalAi.agents.create({ conversationConfig: {} }), 403);
    const commenter = sdk(baseUrl, testApp.keys.commenter);
    await expectApiError(commenter.conversationalAi.agents.delete(agentId), 403);

    const foreign = sdk(baseUrl, testApp.foreignKey);
    await expectApiError(foreign.conversationalAi.agents.get(agentId), 404);
    await expectApiError(foreign.conversationalAi.agents.update(agentId, { name: 'stolen' }), 404);
    await expectApiError(foreign.conversationalAi.agents.delete(agentId), 404);
    expect((await foreign.conversationalAi.agents.list()).agents.map((agent) => agent.agentId)).not.toContain(agentId);

    const editorView = await sdk(baseUrl, testApp.keys.editor).conversationalAi.agents.get(agentId);
    expect(editorView.accessInfo?.isCreator).toBe(false);
    expect(editorView.accessInfo?.role).toBe('editor');
    expect((await client.conversationalAi.agents.get(agentId)).name).toBe('Guarded');
  });
});
