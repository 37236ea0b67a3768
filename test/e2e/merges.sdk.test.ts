import { ElevenLabsError, type ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { snapshotDatabase } from '../support/db-snapshot.js';
import { codeOf, failure } from '../support/sdk-errors.js';
import { listen, sdk, startTestApp, type TestApp } from '../support/test-app.js';

let testApp: TestApp;
let baseUrl: string;
let admin: ElevenLabsClient;
let editor: ElevenLabsClient;
let viewer: ElevenLabsClient;

beforeAll(async () => {
  testApp = await startTestApp();
  baseUrl = await listen(testApp);
  admin = sdk(baseUrl, testApp.keys.admin);
  editor = sdk(baseUrl, testApp.keys.editor);
  viewer = sdk(baseUrl, testApp.keys.viewer);
});
afterAll(() => testApp.close());


const tools = [
  { type: 'client', name: 'weather', description: 'Looks up the weather', parameters: { type: 'object', properties: {} } },
  { type: 'client', name: 'crm', description: 'Finds the customer', parameters: { type: 'object', properties: {} } },
];

/** An agent whose main has a prompt and two tools, and a feature branch cut from main's head. */
async function teamSetup(client = editor) {
  const { agentId } = await client.conversationalAi.agents.create({
    name: 'Team agent',
    conversationConfig: { agent: { firstMessage: 'Hello', prompt: { prompt: 'You are a support agent.', tools } } } as never,
  });
  const main = await client.conversationalAi.agents.get(agentId);
  const feature = await client.conversationalAi.agents.branches.create(agentId, {
    parentVersionId: main.versionId!,
    name: 'feature',
    description: 'a feature',
  });
  return { agentId, mainId: main.mainBranchId!, featureId: feature.createdBranchId, forkVersionId: main.versionId! };
}

const withTools = (weather: string, crm: string) => [
  { ...tools[0], description: weather },
  { ...tools[1], description: crm },
];

describe('merge through the SDK', () => {
  it('a team scenario: both sides edit the prompt and different tools; one conflict; merge with a resolution; history shows the parents', async () => {
    const { agentId, mainId, featureId, forkVersionId } = await teamSetup();
    // Feature: new prompt, new weather description. Main: another prompt, new crm description.
    await editor.conversationalAi.agents.update(agentId, {
      branchId: featureId,
      conversationConfig: { agent: { prompt: { prompt: 'You are a friendly support agent.', tools: withTools('Weather, with forecasts', 'Finds the customer') } } } as never,
    });
    const mainHead = await admin.conversationalAi.agents.update(agentId, {
      conversationConfig: { agent: { prompt: { prompt: 'You are a concise support agent.', tools: withTools('Looks up the weather', 'Finds the customer by phone') } } } as never,
    });

    const before = await snapshotDatabase(testApp.store.db);
    const preview = await editor.conversationalAi.agents.branches.previewMerge(agentId, featureId, { targetBranchId: mainId });
    expect(await snapshotDatabase(testApp.store.db)).toBe(before);
    expect(preview.overriddenFields).toEqual(['conversation_config.agent.prompt.prompt']);
    expect(preview.conflicts).toEqual([
      {
        path: 'agent.prompt.prompt',
        section: 'conversation_config',
        baseValue: 'You are a support agent.',
        sourceValue: 'You are a friendly support agent.',
        targetValue: 'You are a concise support agent.',
      },
    ]);
    expect(preview.sourceIdenticalToTarget).toBe(false);
    // Extension fields pass through the SDK's parser unchanged.
    expect((preview as unknown as { target_version_id: string }).target_version_id).toBe(mainHead.versionId);
    // Both tool edits survive; the later tip (main) wins the prompt by default.
    const previewTools = preview.conversationConfig.agent?.prompt?.tools as { description: string }[];
    expect(previewTools.map((tool) => tool.description)).toEqual(['Weather, with forecasts', 'Finds the customer by phone']);
    expect(preview.conversationConfig.agent?.prompt?.prompt).toBe('You are a concise support agent.');
    // force → the source wins.
    const forced = await editor.conversationalAi.agents.branches.previewMerge(agentId, featureId, { targetBranchId: mainId, force: true });
    expect(forced.conversationConfig.agent?.prompt?.prompt).toBe('You are a friendly support agent.');

    // Settle the conflict by hand (extension, sent through request options) and merge.
    const resolutions = { 'agent.prompt.prompt': { value: 'You are a friendly, concise support agent.' } };
    const resolvedPreview = await editor.conversationalAi.agents.branches.previewMerge(
      agentId,
      featureId,
      { targetBranchId: mainId },
      { queryParams: { resolutions: JSON.stringify(resolutions) } },
    );
    const result = (await admin.conversationalAi.agents.branches.merge(
      agentId,
      featureId,
      { targetBranchId: mainId, archiveSourceBranch: true },
      { queryParams: { resolutions: JSON.stringify(resolutions), expected_target_version_id: mainHead.versionId } },
    )) as { version_id: string; source_archived: boolean };
    expect(result.source_archived).toBe(true);

    const merged = await editor.conversationalAi.agents.get(agentId);
    expect(merged.versionId).toBe(result.version_id);
    expect(merged.conversationConfig.agent?.prompt?.prompt).toBe('You are a friendly, concise support agent.');
    // The preview was exactly what the merge stored.
    for (const field of ['name', 'tags', 'branchId', 'conversationConfig', 'platformSettings', 'workflow'] as const) {
      expect(merged[field], field).toEqual(resolvedPreview[field]);
    }

    const version = await editor.conversationalAi.agents.versions.get(agentId, result.version_id);
    expect(version.parents).toMatchObject({ inBranchParentId: mainHead.versionId, mergedFromBranchId: featureId });
    expect(version.parents.mergedFromVersionId).toBeTruthy();
    expect(version.mergedAuthors?.map((author) => author.creatorName)).toEqual(['editor-user']);
    expect(version.accessInfo?.creatorName).toBe('admin');

    const branches = await editor.conversationalAi.agents.branches.list(agentId, { includeArchived: true });
    const feature = branches.results.find((branch) => branch.id === featureId)!;
    expect(feature.isArchived).toBe(true);
    expect(feature.mergedIntoBranchId).toBe(mainId);

    // The diff (extension) shows the reviewer exactly what the merge changed on main.
    const diff = await getJson(`/v1/convai/agents/${agentId}/diff?from_version_id=${mainHead.versionId}&to_version_id=${result.version_id}`);
    expect(diff.changes.map((change: { path: string }) => change.path).sort()).toEqual([
      'agent.prompt.prompt',
      'agent.prompt.tools[name=weather].description',
    ]);
    void forkVersionId;
  });

  it('refuses merges with nothing new (409), into itself (422), into an archived branch (409), by a viewer (403)', async () => {
    const { agentId, mainId, featureId } = await teamSetup();
    const nothing = await failure(editor.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: mainId }));
    expect(nothing.statusCode).toBe(409);
    expect(codeOf(nothing)).toBe('no_new_changes_to_merge');
    const preview = await editor.conversationalAi.agents.branches.previewMerge(agentId, featureId, { targetBranchId: mainId });
    expect(preview.sourceIdenticalToTarget).toBe(true);

    const self = await failure(editor.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: featureId }));
    expect(self.statusCode).toBe(422);
    expect((await failure(viewer.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: mainId }))).statusCode).toBe(403);

    await editor.conversationalAi.agents.update(agentId, { branchId: featureId, conversationConfig: { agent: { firstMessage: 'Hi!' } } });
    await editor.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: mainId, archiveSourceBranch: false });
    const again = await failure(editor.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: mainId }));
    expect(codeOf(again)).toBe('branch_already_merged');

    const other = await editor.conversationalAi.agents.branches.create(agentId, {
      parentVersionId: (await editor.conversationalAi.agents.get(agentId)).versionId!,
      name: 'archived-target',
      description: '',
    });
    await editor.conversationalAi.agents.branches.update(agentId, other.createdBranchId, { isArchived: true });
    await editor.conversationalAi.agents.update(agentId, { branchId: featureId, conversationConfig: { agent: { firstMessage: 'Hey' } } });
    const archived = await failure(editor.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: other.createdBranchId }));
    expect(codeOf(archived)).toBe('branch_archived');
  });

  it('needs admin for an admin-protected target, and refuses a stale expected_target_version_id', async () => {
    const { agentId, mainId, featureId } = await teamSetup();
    await admin.conversationalAi.agents.branches.update(agentId, mainId, { protectionStatus: 'admin_perms_required' });
    await editor.conversationalAi.agents.update(agentId, { branchId: featureId, conversationConfig: { agent: { firstMessage: 'new' } } });
    expect((await failure(editor.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: mainId }))).statusCode).toBe(403);
    const stale = await failure(
      admin.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: mainId }, { queryParams: { expected_target_version_id: 'agtvrsn_old' } }),
    );
    expect(codeOf(stale)).toBe('concurrent_modification');
    const unknownPath = await failure(
      admin.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: mainId }, { queryParams: { resolutions: JSON.stringify({ 'agent.nope': 'source' }) } }),
    );
    expect(unknownPath.statusCode).toBe(422);
    await admin.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: mainId });
    expect((await editor.conversationalAi.agents.get(agentId)).conversationConfig.agent?.firstMessage).toBe('new');
  });

  it('merges into any branch, and moves the archived source\'s traffic to the target as a branch_merge deployment', async () => {
    const { agentId, mainId, featureId } = await teamSetup();
    const main = await editor.conversationalAi.agents.get(agentId);
    const staging = await editor.conversationalAi.agents.branches.create(agentId, { parentVersionId: main.versionId!, name: 'staging', description: '' });
    await editor.conversationalAi.agents.update(agentId, { branchId: featureId, conversationConfig: { agent: { firstMessage: 'feature' } } });
    await editor.conversationalAi.agents.deployments.create(agentId, {
      deploymentRequest: {
        requests: [
          { branchId: mainId, deploymentStrategy: { trafficPercentage: 70 } },
          { branchId: featureId, deploymentStrategy: { trafficPercentage: 20 } },
          { branchId: staging.createdBranchId, deploymentStrategy: { trafficPercentage: 10 } },
        ],
      },
    });
    const result = (await editor.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: staging.createdBranchId })) as {
      moved_traffic_percentage: number;
    };
    expect(result.moved_traffic_percentage).toBe(20);
    const history = await editor.conversationalAi.agents.deployments.list(agentId);
    expect(history.results[0]).toMatchObject({ source: 'branch_merge', isActive: true, trafficPercentageBranchIdMap: { [mainId]: 70, [staging.createdBranchId]: 30 } });
    expect((await editor.conversationalAi.agents.get(agentId, { branchId: staging.createdBranchId })).conversationConfig.agent?.firstMessage).toBe('feature');
    // The single branch says where it was merged (extension), and the SDK still parses it.
    const mergedInto = async (branchId: string) =>
      ((await editor.conversationalAi.agents.branches.get(agentId, branchId)) as { isArchived: boolean; merged_into_branch_id?: string | null });
    expect(await mergedInto(featureId)).toMatchObject({ isArchived: true, merged_into_branch_id: staging.createdBranchId });
    expect(await mergedInto(staging.createdBranchId)).toMatchObject({ isArchived: false, merged_into_branch_id: null });
    const listed = await editor.conversationalAi.agents.branches.list(agentId, { includeArchived: true });
    expect(listed.results.find((branch) => branch.id === featureId)?.mergedIntoBranchId).toBe(staging.createdBranchId);
    // Main was not touched.
    expect((await editor.conversationalAi.agents.get(agentId)).versionId).toBe(main.versionId);
  });
});

describe('merges racing commits', () => {
  it('a merge and a commit to the target at the same moment: both land, nothing is lost', async () => {
    for (let round = 0; round < 5; round++) {
      const { agentId, mainId, featureId } = await teamSetup();
      await editor.conversationalAi.agents.update(agentId, { branchId: featureId, conversationConfig: { agent: { firstMessage: `feature ${round}` } } });
      const [merge, commit] = await Promise.allSettled([
        admin.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: mainId, archiveSourceBranch: false }),
        admin.conversationalAi.agents.update(agentId, { conversationConfig: { agent: { language: 'es' } } }),
      ]);
      expect(commit.status).toBe('fulfilled');
      const head = await editor.conversationalAi.agents.get(agentId);
      // The commit is never lost; the merge either landed on top of it or before it.
      expect(head.conversationConfig.agent?.language).toBe('es');
      if (merge.status === 'fulfilled') expect(head.conversationConfig.agent?.firstMessage).toBe(`feature ${round}`);
      else expect((merge.reason as ElevenLabsError).statusCode).toBe(409);
      const versions = (await editor.conversationalAi.agents.branches.get(agentId, mainId)).mostRecentVersions!;
      expect(versions.map((version) => version.seqNoInBranch)).toEqual(Array.from({ length: versions.length }, (_, i) => versions.length - i));
    }
  });
});

describe('rebase through the SDK', () => {
  it('rebases a stale branch onto main: main\'s changes arrive, the branch\'s value wins conflicts', async () => {
    const { agentId, mainId, featureId } = await teamSetup();
    await editor.conversationalAi.agents.update(agentId, { branchId: featureId, conversationConfig: { agent: { firstMessage: 'branch hello', prompt: { temperature: 0.9 } } } });
    await editor.conversationalAi.agents.update(agentId, { conversationConfig: { agent: { firstMessage: 'main hello', language: 'de' } } });

    const status = await editor.conversationalAi.agents.branches.list(agentId, { includeCommitStatus: true });
    expect(status.results.find((branch) => branch.id === featureId)).toMatchObject({ commitsAhead: 2, commitsBehind: 1 });
    expect(status.results.find((branch) => branch.id === mainId)).toMatchObject({ commitsAhead: 0, commitsBehind: 0 });

    const preview = await editor.conversationalAi.agents.branches.previewRebase(agentId, featureId);
    expect(preview.conflicts?.map((conflict) => conflict.path)).toEqual(['agent.first_message']);
    expect(preview.conversationConfig.agent?.firstMessage).toBe('branch hello');
    expect(preview.conversationConfig.agent?.language).toBe('de');
    expect(preview.sourceIdenticalToTarget).toBe(false);

    const result = (await editor.conversationalAi.agents.branches.rebase(agentId, featureId)) as { version_id: string };
    const rebased = await editor.conversationalAi.agents.get(agentId, { branchId: featureId });
    expect(rebased.versionId).toBe(result.version_id);
    expect(rebased.conversationConfig.agent).toMatchObject({ firstMessage: 'branch hello', language: 'de' });
    expect(rebased.conversationConfig.agent?.prompt?.temperature).toBe(0.9);
    const version = await editor.conversationalAi.agents.versions.get(agentId, result.version_id);
    expect(version.parents.rebasedFromVersionId).toBeTruthy();
    expect(version.parents.outOfBranchParentId).toBe((await editor.conversationalAi.agents.get(agentId)).versionId);

    const again = await failure(editor.conversationalAi.agents.branches.rebase(agentId, featureId));
    expect(codeOf(again)).toBe('branch_already_up_to_date');
    expect((await editor.conversationalAi.agents.branches.previewRebase(agentId, featureId)).sourceIdenticalToTarget).toBe(true);
    expect(codeOf(await failure(editor.conversationalAi.agents.branches.rebase(agentId, mainId)))).toBe('cannot_rebase_main');
    const after = await editor.conversationalAi.agents.branches.list(agentId, { includeCommitStatus: true });
    expect(after.results.find((branch) => branch.id === featureId)).toMatchObject({ commitsAhead: 3, commitsBehind: 0 });
  });

  it('rebases auto_rebase branches after every new main version', async () => {
    const { agentId, featureId } = await teamSetup();
    await editor.conversationalAi.agents.update(agentId, { branchId: featureId, conversationConfig: { agent: { firstMessage: 'feature' } } });
    await editor.conversationalAi.agents.branches.update(agentId, featureId, { autoRebase: true });
    await editor.conversationalAi.agents.update(agentId, { conversationConfig: { agent: { language: 'fr' } } });
    const feature = await editor.conversationalAi.agents.get(agentId, { branchId: featureId });
    expect(feature.conversationConfig.agent).toMatchObject({ firstMessage: 'feature', language: 'fr' });
    const versions = await editor.conversationalAi.agents.branches.get(agentId, featureId);
    expect(versions.mostRecentVersions?.[0].versionDescription).toBe('Automatic rebase onto main');
  });
});

describe('drafts through the SDK', () => {
  it('keeps each user\'s draft separate, shows it only to its owner, and discards it on their commit or a merge landing', async () => {
    const { agentId, mainId, featureId } = await teamSetup();
    const draftBody = (message: string) => ({
      branchId: featureId,
      conversationConfig: { agent: { first_message: message } },
      platformSettings: {},
      workflow: {},
      name: 'Team agent',
    });
    await editor.conversationalAi.agents.drafts.create(agentId, draftBody('editor draft'));
    await admin.conversationalAi.agents.drafts.create(agentId, draftBody('admin draft'));
    const asEditor = (await editor.conversationalAi.agents.branches.list(agentId)).results.find((branch) => branch.id === featureId)!;
    expect(asEditor).toMatchObject({ draftExists: true, draftIsBehindTip: false });
    expect(typeof asEditor.draftCreatedAt).toBe('number');
    const asViewer = (await viewer.conversationalAi.agents.branches.list(agentId)).results.find((branch) => branch.id === featureId)!;
    expect(asViewer.draftExists).toBe(false);

    // A commit by the admin makes the editor's draft stale and discards the admin's own.
    await admin.conversationalAi.agents.update(agentId, { branchId: featureId, conversationConfig: { agent: { firstMessage: 'committed' } } });
    expect((await editor.conversationalAi.agents.branches.list(agentId)).results.find((branch) => branch.id === featureId)).toMatchObject({
      draftExists: true,
      draftIsBehindTip: true,
    });
    expect((await admin.conversationalAi.agents.branches.list(agentId)).results.find((branch) => branch.id === featureId)?.draftExists).toBe(false);

    // Saving again replaces it and is no longer behind.
    await editor.conversationalAi.agents.drafts.create(agentId, draftBody('editor draft 2'));
    expect((await editor.conversationalAi.agents.branches.list(agentId)).results.find((branch) => branch.id === featureId)?.draftIsBehindTip).toBe(false);

    // A merge landing on main discards every draft on main; drafts never block it.
    await editor.conversationalAi.agents.drafts.create(agentId, { ...draftBody('main draft'), branchId: mainId });
    await admin.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: mainId, archiveSourceBranch: false });
    expect((await editor.conversationalAi.agents.branches.list(agentId)).results.find((branch) => branch.id === mainId)?.draftExists).toBe(false);

    await editor.conversationalAi.agents.drafts.delete(agentId, { branchId: featureId });
    expect((await editor.conversationalAi.agents.branches.list(agentId)).results.find((branch) => branch.id === featureId)?.draftExists).toBe(false);
    const bad = await failure(editor.conversationalAi.agents.drafts.create(agentId, { ...draftBody('x'), conversationConfig: { agent: { prompt: { temperature: 'hot' } } } }));
    expect(bad.statusCode).toBe(422);
    expect((await failure(editor.conversationalAi.agents.drafts.delete(agentId, { branchId: 'agtbrch_unknown' }))).statusCode).toBe(404);
  });
});

describe('history (extension)', () => {
  it('lists a branch\'s versions newest first with a cursor', async () => {
    const { agentId, mainId } = await teamSetup();
    for (let i = 0; i < 6; i++) await editor.conversationalAi.agents.update(agentId, { conversationConfig: { agent: { firstMessage: `m${i}` } } });
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page: { versions: { seq_no_in_branch: number }[]; next_cursor: string | null } = await getJson(
        `/v1/convai/agents/${agentId}/branches/${mainId}/versions?page_size=3${cursor ? `&cursor=${cursor}` : ''}`,
      );
      seen.push(...page.versions.map((version) => version.seq_no_in_branch));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([7, 6, 5, 4, 3, 2, 1]);
  });
});

async function getJson(path: string) {
  const response = await fetch(`${baseUrl}${path}`, { headers: { 'xi-api-key': testApp.keys.editor } });
  expect(response.status).toBe(200);
  return (await response.json()) as any;
}
