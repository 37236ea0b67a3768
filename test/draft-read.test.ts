import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createAgent } from './support/fixtures.js';
import { injectAs, okJson, startTestApp, type TestApp } from './support/test-app.js';

// Extension: GET …/drafts?branch_id= reads the caller's own draft back (upstream can only save and
// discard one), so an editor can resume it and see whether the branch moved since.

interface DraftAnswer {
  branch_id: string;
  head_version_id: string;
  draft: null | {
    draft_created_at: number;
    based_on_version_id: string | null;
    is_behind_tip: boolean;
    name: string;
    tags: string[];
    conversation_config: { agent?: { first_message?: string; prompt?: { prompt?: string } } };
    platform_settings: Record<string, unknown>;
    workflow: Record<string, unknown>;
  };
}

let testApp: TestApp;
beforeAll(async () => {
  testApp = await startTestApp();
});
afterAll(() => testApp?.close());

describe('GET /v1/convai/agents/:agent_id/drafts (extension)', () => {
  it("returns the caller's own draft, with the version it was saved on, and null for anyone else", async () => {
    const { agentId, mainBranchId, versionId } = await createAgent(testApp);
    const url = `/v1/convai/agents/${agentId}/drafts?branch_id=${mainBranchId}`;
    expect(okJson<DraftAnswer>(await injectAs(testApp, 'GET', url, testApp.keys.editor))).toEqual({ branch_id: mainBranchId, head_version_id: versionId, draft: null });

    const body = { conversation_config: { agent: { first_message: 'Drafted hello', prompt: { prompt: 'Drafted prompt' } } }, platform_settings: {}, workflow: {}, name: 'Drafted', tags: ['t1'] };
    okJson(await injectAs(testApp, 'POST', url, testApp.keys.editor, body));
    const mine = okJson<DraftAnswer>(await injectAs(testApp, 'GET', url, testApp.keys.editor));
    expect(mine.draft).toMatchObject({ based_on_version_id: versionId, is_behind_tip: false, name: 'Drafted', tags: ['t1'] });
    expect(mine.draft?.conversation_config.agent).toMatchObject({ first_message: 'Drafted hello', prompt: { prompt: 'Drafted prompt' } });
    expect(mine.draft?.draft_created_at).toBeGreaterThan(1_700_000_000);

    // Drafts are per user: the admin has none on this branch.
    expect(okJson<DraftAnswer>(await injectAs(testApp, 'GET', url, testApp.keys.admin)).draft).toBeNull();

    // Someone else commits: the draft is now behind the tip, still based on the version it was saved on.
    const committed = okJson<{ version_id: string }>(
      await injectAs(testApp, 'PATCH', `/v1/convai/agents/${agentId}?branch_id=${mainBranchId}`, testApp.keys.admin, {
        conversation_config: { agent: { first_message: 'Admin hello' } },
      }),
    );
    const behind = okJson<DraftAnswer>(await injectAs(testApp, 'GET', url, testApp.keys.editor));
    expect(behind.head_version_id).toBe(committed.version_id);
    expect(behind.draft).toMatchObject({ based_on_version_id: versionId, is_behind_tip: true });

    okJson(await injectAs(testApp, 'DELETE', url, testApp.keys.editor));
    expect(okJson<DraftAnswer>(await injectAs(testApp, 'GET', url, testApp.keys.editor)).draft).toBeNull();
  });

  it('404s for a branch of another agent and for an agent of another workspace', async () => {
    const first = await createAgent(testApp);
    const second = await createAgent(testApp);
    const wrongBranch = await injectAs(testApp, 'GET', `/v1/convai/agents/${first.agentId}/drafts?branch_id=${second.mainBranchId}`, testApp.keys.admin);
    expect(wrongBranch.statusCode).toBe(404);
    const foreign = await injectAs(testApp, 'GET', `/v1/convai/agents/${first.agentId}/drafts?branch_id=${first.mainBranchId}`, testApp.foreignKey);
    expect(foreign.statusCode).toBe(404);
  });
});
