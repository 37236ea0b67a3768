import type { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { listen, sdk, startTestApp, type TestApp } from '../support/test-app.js';

// The agent's history on every branch (extension, the dashboard's version graph): the SDK has no
// call for it, so it is read with raw HTTP; the history itself is made through the SDK.

let testApp: TestApp;
let baseUrl: string;
let editor: ElevenLabsClient;

beforeAll(async () => {
  testApp = await startTestApp();
  baseUrl = await listen(testApp);
  editor = sdk(baseUrl, testApp.keys.editor);
});
afterAll(() => testApp.close());

interface Listed {
  id: string;
  branch_id: string;
  seq_no_in_branch: number;
  parents: { in_branch_parent_id?: string | null; out_of_branch_parent_id?: string | null; merged_from_version_id?: string | null };
}
interface HistoryPage {
  versions: Listed[];
  has_more: boolean;
  next_cursor: string | null;
}

async function historyPage(agentId: string, query: string, key = testApp.keys.editor): Promise<Response> {
  return fetch(`${baseUrl}/v1/convai/agents/${agentId}/versions${query}`, { headers: { 'xi-api-key': key } });
}

async function wholeHistory(agentId: string, pageSize: number): Promise<Listed[]> {
  const seen: Listed[] = [];
  let cursor: string | null = null;
  do {
    const response = await historyPage(agentId, `?page_size=${pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(response.status).toBe(200);
    const page = (await response.json()) as HistoryPage;
    expect(page.has_more).toBe(page.next_cursor !== null);
    seen.push(...page.versions);
    cursor = page.next_cursor;
  } while (cursor);
  return seen;
}

describe("GET /v1/convai/agents/{agent_id}/versions (extension)", () => {
  it('lists every version of every branch once, newest first, each above its parents, a merge with both parents', async () => {
    const { agentId } = await editor.conversationalAi.agents.create({ name: 'History', conversationConfig: { agent: { firstMessage: 'v1' } } as never });
    const main = await editor.conversationalAi.agents.get(agentId);
    const mainId = main.mainBranchId!;
    const feature = await editor.conversationalAi.agents.branches.create(agentId, { parentVersionId: main.versionId!, name: 'feature', description: '' });
    const other = await editor.conversationalAi.agents.branches.create(agentId, { parentVersionId: main.versionId!, name: 'other', description: '' });
    await editor.conversationalAi.agents.update(agentId, { branchId: feature.createdBranchId, conversationConfig: { agent: { firstMessage: 'feature 2' } } as never });
    await editor.conversationalAi.agents.update(agentId, { branchId: other.createdBranchId, conversationConfig: { agent: { firstMessage: 'other 2' } } as never });
    await editor.conversationalAi.agents.update(agentId, { conversationConfig: { agent: { language: 'fr' } } as never });
    await editor.conversationalAi.agents.branches.merge(agentId, feature.createdBranchId, { targetBranchId: mainId, archiveSourceBranch: false });

    const listed = await wholeHistory(agentId, 2);
    // main 1, 2, 3 (the merge); feature 1, 2; other 1, 2.
    expect(listed).toHaveLength(7);
    expect(new Set(listed.map((version) => version.id)).size).toBe(7);
    const position = new Map(listed.map((version, index) => [version.id, index]));
    for (const version of listed) {
      for (const parent of [version.parents.in_branch_parent_id, version.parents.out_of_branch_parent_id, version.parents.merged_from_version_id]) {
        if (parent) expect(position.get(parent), `${version.id} lists above its parent ${parent}`).toBeGreaterThan(position.get(version.id)!);
      }
    }
    const merge = listed[0];
    expect(merge.branch_id).toBe(mainId);
    expect(merge.seq_no_in_branch).toBe(3);
    const featureHead = listed.find((version) => version.branch_id === feature.createdBranchId && version.seq_no_in_branch === 2)!;
    expect(merge.parents.merged_from_version_id).toBe(featureHead.id);
    expect(merge.parents.in_branch_parent_id).toBe(listed.find((version) => version.branch_id === mainId && version.seq_no_in_branch === 2)!.id);
    // A branch's first version names where it was cut from.
    const featureFirst = listed.find((version) => version.branch_id === feature.createdBranchId && version.seq_no_in_branch === 1)!;
    expect(featureFirst.parents.out_of_branch_parent_id).toBe(main.versionId);

    // Pages of any size list the same versions in the same order.
    expect((await wholeHistory(agentId, 100)).map((version) => version.id)).toEqual(listed.map((version) => version.id));
  });

  it('refuses a cursor it did not make, and another workspace sees no agent', async () => {
    const { agentId } = await editor.conversationalAi.agents.create({ name: 'Cursor', conversationConfig: {} as never });
    const bad = await historyPage(agentId, '?cursor=nonsense');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { detail: { code: string } }).detail.code).toBe('invalid_cursor');
    expect((await historyPage('agent_missing', '')).status).toBe(404);
    expect((await historyPage(agentId, '', testApp.foreignKey)).status).toBe(404);
  });

  it("the branch list names each branch's head (extension), and the SDK still reads the list", async () => {
    const { agentId } = await editor.conversationalAi.agents.create({ name: 'Heads', conversationConfig: {} as never });
    const main = await editor.conversationalAi.agents.get(agentId);
    const feature = await editor.conversationalAi.agents.branches.create(agentId, { parentVersionId: main.versionId!, name: 'feature', description: '' });
    const committed = await editor.conversationalAi.agents.update(agentId, { branchId: feature.createdBranchId, conversationConfig: { agent: { firstMessage: 'hi' } } as never });
    const response = await fetch(`${baseUrl}/v1/convai/agents/${agentId}/branches`, { headers: { 'xi-api-key': testApp.keys.editor } });
    const list = (await response.json()) as { results: { id: string; head_version_id: string; head_seq_no_in_branch: number }[] };
    const byId = new Map(list.results.map((branch) => [branch.id, branch]));
    expect(byId.get(main.mainBranchId!)).toMatchObject({ head_version_id: main.versionId, head_seq_no_in_branch: 1 });
    expect(byId.get(feature.createdBranchId)).toMatchObject({ head_version_id: committed.versionId, head_seq_no_in_branch: 2 });
    const throughSdk = await editor.conversationalAi.agents.branches.list(agentId);
    expect(throughSdk.results.map((branch) => branch.id).sort()).toEqual([...byId.keys()].sort());
  });
});
