import type { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { snapshotDatabase } from '../support/db-snapshot.js';
import { codeOf, failure } from '../support/sdk-errors.js';
import { listen, sdk, startTestApp, type TestApp } from '../support/test-app.js';

// Procedures end to end through the official SDK's `procedures` client (and its `drafts`
// sub-client): create, draft, publish with `agents.update`, read back by head, version and agent
// version, and merge with a procedure conflict settled by a resolution.

let testApp: TestApp;
let admin: ElevenLabsClient;
let editor: ElevenLabsClient;
let viewer: ElevenLabsClient;

beforeAll(async () => {
  testApp = await startTestApp();
  const baseUrl = await listen(testApp);
  admin = sdk(baseUrl, testApp.keys.admin);
  editor = sdk(baseUrl, testApp.keys.editor);
  viewer = sdk(baseUrl, testApp.keys.viewer);
});
afterAll(() => testApp.close());

async function agentWithFeatureBranch() {
  const { agentId } = await editor.conversationalAi.agents.create({ name: 'Procedures', conversationConfig: { agent: { firstMessage: 'Hello' } } as never });
  const main = await editor.conversationalAi.agents.get(agentId);
  const feature = await editor.conversationalAi.agents.branches.create(agentId, { parentVersionId: main.versionId!, name: 'feature', description: '' });
  return { agentId, mainId: main.mainBranchId!, featureId: feature.createdBranchId };
}

describe('procedures through the SDK', () => {
  it('create → draft → publish with agents.update → list and get by head, version and agent version', async () => {
    const { agentId, featureId } = await agentWithFeatureBranch();
    const procedures = editor.conversationalAi.agents.procedures;
    const { procedureId } = await procedures.create(agentId, featureId, {
      name: 'Refunds',
      content: 'Ask for the order number, then call [tool id="tool_refund"] for {{customer_id}}.',
      trigger: 'The caller wants a refund',
    });
    expect(procedureId).toMatch(/^agtprc_[0-9a-z]{28}$/);

    // A draft only: listed with has_draft, no head version yet.
    const drafted = await procedures.list(agentId, featureId);
    expect(drafted.procedures).toEqual([
      expect.objectContaining({ procedureId, hasDraft: true, name: 'Refunds', type: 'free_form', trigger: 'The caller wants a refund' }),
    ]);
    expect(drafted.procedures[0].versionId ?? null).toBeNull();
    expect((await failure(procedures.get(agentId, featureId, procedureId))).statusCode).toBe(404);
    // Another user sees none of it.
    expect((await viewer.conversationalAi.agents.procedures.list(agentId, featureId)).procedures).toEqual([]);

    // The draft: replaced whole; a trigger left out keeps the stored one.
    const updated = await procedures.drafts.update(agentId, featureId, procedureId, {
      name: 'Refunds',
      content: 'Ask for the order number, then call [tool id="tool_refund"] for {{customer_id}}. Confirm the amount.',
      type: 'free_form',
    });
    expect(updated).toMatchObject({ procedureId, trigger: 'The caller wants a refund' });
    expect((await procedures.drafts.get(agentId, featureId, procedureId)).content).toContain('Confirm the amount.');
    const typeChange = await failure(procedures.drafts.update(agentId, featureId, procedureId, { name: 'Refunds', content: '{"steps":[]}', type: 'deterministic' }));
    expect([typeChange.statusCode, codeOf(typeChange)]).toEqual([400, 'procedure_type_cannot_change']);

    // Publish: an update with nothing but the branch.
    const published = await editor.conversationalAi.agents.update(agentId, { branchId: featureId, versionDescription: 'Refund procedure' });
    const ref = published.procedures?.[procedureId];
    expect(ref).toMatchObject({
      procedureId,
      name: 'Refunds',
      type: 'free_form',
      trigger: 'The caller wants a refund',
      referencedToolIds: ['tool_refund'],
      referencedDynamicVariables: ['customer_id'],
    });
    const versionId = ref!.versionId!;
    expect(versionId).toMatch(/^agtprcv_[0-9a-z]{28}$/);
    // GET agent shows the same map.
    expect((await viewer.conversationalAi.agents.get(agentId, { branchId: featureId })).procedures?.[procedureId]?.versionId).toBe(versionId);

    // Drafts cleared; the head has the version.
    const listed = await procedures.list(agentId, featureId);
    expect(listed.procedures).toEqual([expect.objectContaining({ procedureId, hasDraft: false, versionId })]);
    const head = await viewer.conversationalAi.agents.procedures.get(agentId, featureId, procedureId);
    expect(head).toMatchObject({ procedureId, versionId, content: expect.stringContaining('Confirm the amount.') });

    // A second publish: the first version stays readable by version and by agent version.
    await procedures.drafts.update(agentId, featureId, procedureId, { name: 'Refunds v2', content: 'Refund politely.', type: 'free_form' });
    const second = await editor.conversationalAi.agents.update(agentId, { branchId: featureId });
    const secondVersionId = second.procedures?.[procedureId]?.versionId;
    expect(secondVersionId).not.toBe(versionId);
    expect((await procedures.get(agentId, featureId, procedureId, { versionId })).name).toBe('Refunds');
    expect((await procedures.get(agentId, featureId, procedureId, { agentVersionId: published.versionId! })).versionId).toBe(versionId);
    expect((await procedures.list(agentId, featureId, { agentVersionId: published.versionId! })).procedures).toEqual([
      expect.objectContaining({ procedureId, versionId, name: 'Refunds', hasDraft: false }),
    ]);
    expect((await procedures.get(agentId, featureId, procedureId)).name).toBe('Refunds v2');

    // Remove: staged, then published.
    await procedures.remove(agentId, featureId, procedureId);
    expect((await procedures.list(agentId, featureId)).procedures).toEqual([]);
    const removed = await editor.conversationalAi.agents.update(agentId, { branchId: featureId });
    expect(removed.procedures).toEqual({});
    expect((await procedures.get(agentId, featureId, procedureId, { versionId })).versionId).toBe(versionId);
  });

  it('a procedure edited on both sides conflicts in a merge; force, resolutions and the default winner settle it', async () => {
    const { agentId, mainId, featureId } = await agentWithFeatureBranch();
    const { procedureId } = await editor.conversationalAi.agents.procedures.create(agentId, featureId, { name: 'Greeting', content: 'Say hello.' });
    const base = await editor.conversationalAi.agents.update(agentId, { branchId: featureId });
    await editor.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: mainId, archiveSourceBranch: false });
    expect((await viewer.conversationalAi.agents.get(agentId)).procedures?.[procedureId]?.versionId).toBe(base.procedures?.[procedureId]?.versionId);

    // Both sides edit the procedure; main after the feature.
    await editor.conversationalAi.agents.procedures.drafts.update(agentId, featureId, procedureId, { name: 'Greeting', content: 'Say hello warmly.', type: 'free_form' });
    const feature = await editor.conversationalAi.agents.update(agentId, { branchId: featureId });
    await admin.conversationalAi.agents.procedures.drafts.update(agentId, mainId, procedureId, { name: 'Greeting', content: 'Say hello briefly.', type: 'free_form' });
    const main = await admin.conversationalAi.agents.update(agentId, {});
    const featureVersion = feature.procedures?.[procedureId]?.versionId;
    const mainVersion = main.procedures?.[procedureId]?.versionId;

    const before = await snapshotDatabase(testApp.store.db);
    const preview = await editor.conversationalAi.agents.branches.previewMerge(agentId, featureId, { targetBranchId: mainId });
    expect(await snapshotDatabase(testApp.store.db)).toBe(before);
    expect(preview.overriddenFields).toEqual([`procedures.${procedureId}`]);
    expect(preview.conflicts).toEqual([
      {
        path: procedureId,
        section: 'procedures',
        baseValue: expect.objectContaining({ procedure_id: procedureId, version_id: base.procedures?.[procedureId]?.versionId, name: 'Greeting' }),
        sourceValue: expect.objectContaining({ procedure_id: procedureId, version_id: featureVersion }),
        targetValue: expect.objectContaining({ procedure_id: procedureId, version_id: mainVersion }),
      },
    ]);
    // The later tip (main) wins by default: merging would change nothing.
    expect(preview.procedures?.[procedureId]?.versionId).toBe(mainVersion);
    expect(preview.sourceIdenticalToTarget).toBe(true);
    // force: the source's side.
    const forced = await editor.conversationalAi.agents.branches.previewMerge(agentId, featureId, { targetBranchId: mainId, force: true });
    expect(forced.procedures?.[procedureId]?.versionId).toBe(featureVersion);

    // A resolution picks the source's version; the merge lands it on main.
    const resolutions = { [`procedures.${procedureId}`]: 'source' };
    await admin.conversationalAi.agents.branches.merge(agentId, featureId, { targetBranchId: mainId, archiveSourceBranch: false }, { queryParams: { resolutions: JSON.stringify(resolutions) } });
    const merged = await viewer.conversationalAi.agents.get(agentId);
    expect(merged.procedures?.[procedureId]).toMatchObject({ versionId: featureVersion, name: 'Greeting' });
    expect((await viewer.conversationalAi.agents.procedures.get(agentId, mainId, procedureId)).content).toBe('Say hello warmly.');
  });
});
