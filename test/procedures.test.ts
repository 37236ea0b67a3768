import { afterAll, describe, expect, it } from 'vitest';

import { snapshotDatabase } from './support/db-snapshot.js';
import { injectAs, okJson, startTestApp } from './support/test-app.js';

// The rules of procedures (reference/procedures.md) as a user sees them through the routes and
// `PATCH agent`: drafts per user, publish, validation, removal, explicit maps, merges, branches
// and duplicates, and that another workspace never sees them.

const testApp = await startTestApp();
const { keys, foreignKey } = testApp;
afterAll(() => testApp.close());

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
const send = (method: Method, url: string, payload?: unknown, key = keys.editor) => injectAs(testApp, method, url, key, payload);
const ok = async <T>(method: Method, url: string, payload?: unknown, key = keys.editor) => okJson<T>(await send(method, url, payload, key));

interface AgentRead {
  version_id: string;
  main_branch_id: string;
  procedures: Record<string, { procedure_id: string; version_id: string; name: string; type: string }>;
}

/** An agent with a second branch; URLs of both branches' procedures. */
async function agent() {
  const { agent_id: agentId } = await ok<{ agent_id: string }>('POST', '/v1/convai/agents/create', { name: 'P', conversation_config: { agent: { first_message: 'Hi' } } });
  const main = await ok<AgentRead>('GET', `/v1/convai/agents/${agentId}`);
  const { created_branch_id: branchId } = await ok<{ created_branch_id: string }>('POST', `/v1/convai/agents/${agentId}/branches`, {
    parent_version_id: main.version_id,
    name: 'side',
    description: '',
  });
  const base = `/v1/convai/agents/${agentId}`;
  return {
    agentId,
    mainId: main.main_branch_id,
    branchId,
    base,
    procedures: (branch = branchId) => `${base}/branches/${branch}/procedures`,
    read: (branch = branchId, key = keys.editor) => ok<AgentRead>('GET', `${base}?branch_id=${branch}`, undefined, key),
    publish: (branch = branchId, body: unknown = {}, key = keys.editor) => ok<AgentRead>('PATCH', `${base}?branch_id=${branch}`, body, key),
  };
}

async function create(url: string, body: unknown, key = keys.editor): Promise<string> {
  return (await ok<{ procedure_id: string }>('POST', url, body, key)).procedure_id;
}

async function refusedWithNothingWritten(method: Method, url: string, payload?: unknown, key = keys.editor) {
  const before = await snapshotDatabase(testApp.store.db);
  const response = await send(method, url, payload, key);
  expect(await snapshotDatabase(testApp.store.db)).toBe(before);
  return response;
}

const INVALID_STEPS = { name: 'Broken', type: 'deterministic', content: '{"steps":[]}', trigger: 'never' };

describe('storage', () => {
  it('a one-line edit of a 50,000-character procedure stores a small part of it (content-addressed, in chunks)', async () => {
    const storedBytes = async () => {
      const row = await testApp.store.db
        .selectFrom('blobs')
        .select((eb) => eb.fn.sum<number | string>(eb.fn('length', ['body'])).as('bytes'))
        .executeTakeFirstOrThrow();
      return Number(row.bytes);
    };
    const a = await agent();
    const lines = Array.from({ length: 1_000 }, (_, i) => `Step ${i}: confirm the caller's details, then continue. ${'.'.repeat(i % 7)}`);
    const content = lines.join('\n').slice(0, 49_990);
    expect(content.length).toBeGreaterThan(49_000);
    const id = await create(a.procedures(), { name: 'Long', content });
    await a.publish();
    const before = await storedBytes();
    const edited = content.replace('Step 500: confirm', 'Step 500: kindly confirm');
    await ok('PATCH', `${a.procedures()}/${id}/draft`, { name: 'Long', content: edited, type: 'free_form' });
    const published = await a.publish();
    expect((await ok<{ content: string }>('GET', `${a.procedures()}/${id}?version_id=${published.procedures[id].version_id}`)).content).toBe(edited);
    // The new procedure version, the agent version's document and its frontier, all told.
    expect(await storedBytes() - before).toBeLessThan(content.length / 10);
  });
});

describe('publishing through PATCH agent', () => {
  it("publishes the caller's drafts as one version, clears them, and a second PATCH with nothing to publish makes no version", async () => {
    const a = await agent();
    const first = await create(a.procedures(), { name: 'One', content: 'First.' });
    const second = await create(a.procedures(), { name: 'Two', content: 'Second.' });
    const published = await a.publish();
    expect(Object.keys(published.procedures).sort()).toEqual([first, second].sort());
    expect(published.procedures[first]).toMatchObject({ procedure_id: first, name: 'One', type: 'free_form', version_id: expect.stringMatching(/^agtprcv_/) });
    const listed = await ok<{ procedures: { has_draft: boolean }[] }>('GET', a.procedures());
    expect(listed.procedures.map((item) => item.has_draft)).toEqual([false, false]);
    expect(await testApp.store.db.selectFrom('procedure_drafts').selectAll().where('agent_id', '=', a.agentId).execute()).toEqual([]);
    // Nothing drafted, nothing sent: the head stays.
    expect((await a.publish()).version_id).toBe(published.version_id);
    // A draft that reads as the head's version changes nothing either, and is cleared.
    await ok('PATCH', `${a.procedures()}/${first}/draft`, { name: 'One', content: 'First.', type: 'free_form' });
    expect((await a.publish()).version_id).toBe(published.version_id);
    expect((await ok<{ procedures: { has_draft: boolean }[] }>('GET', a.procedures())).procedures.every((item) => !item.has_draft)).toBe(true);
  });

  it('refuses an invalid deterministic procedure with every error in one 400, and writes nothing; so does agent-draft save', async () => {
    const a = await agent();
    const broken = await create(a.procedures(), INVALID_STEPS);
    const alsoBroken = await create(a.procedures(), { ...INVALID_STEPS, name: 'Also broken' });
    const response = await refusedWithNothingWritten('PATCH', `${a.base}?branch_id=${a.branchId}`, {});
    expect(response.statusCode).toBe(400);
    const { detail } = response.json() as { detail: { status: string; message: string; data: { errors: Record<string, { path: string; message: string }[]> } } };
    expect(detail.status).toBe('procedure_validation_failed');
    expect(detail.message).toBe('Structured procedures failed validation.');
    expect(Object.keys(detail.data.errors).sort()).toEqual([broken, alsoBroken].sort());
    for (const errors of Object.values(detail.data.errors)) {
      expect(errors.length).toBeGreaterThan(0);
      for (const error of errors) expect(error).toEqual({ path: expect.any(String), message: expect.any(String) });
    }
    const draft = { conversation_config: { agent: { first_message: 'draft' } }, platform_settings: {}, workflow: {}, name: 'P' };
    const saved = await refusedWithNothingWritten('POST', `${a.base}/drafts?branch_id=${a.branchId}`, draft);
    expect([saved.statusCode, (saved.json() as { detail: { status: string } }).detail.status]).toEqual([400, 'procedure_validation_failed']);
    // Saving the procedure draft itself never validates steps.
    await ok('PATCH', `${a.procedures()}/${broken}/draft`, { ...INVALID_STEPS, content: 'not even JSON' });
    // Another user's drafts are theirs: their config save is not refused.
    okJson(await send('POST', `${a.base}/drafts?branch_id=${a.branchId}`, draft, keys.admin));
  });

  it('the explicit procedures map: every entry must be a version of that procedure of this agent; the caller keeps their drafts; {} removes all', async () => {
    const a = await agent();
    const first = await create(a.procedures(), { name: 'One', content: 'First.' });
    const second = await create(a.procedures(), { name: 'Two', content: 'Second.' });
    const published = await a.publish();
    const [v1, v2] = [published.procedures[first].version_id, published.procedures[second].version_id];
    await ok('PATCH', `${a.procedures()}/${first}/draft`, { name: 'One, edited', content: 'First!', type: 'free_form' });
    const url = `${a.base}?branch_id=${a.branchId}`;
    for (const wrong of [{ [first]: { procedure_id: first, version_id: v2 } }, { [first]: { procedure_id: second, version_id: v1 } }, { [first]: { procedure_id: first, version_id: 'agtprcv_nowhere' } }]) {
      const response = await refusedWithNothingWritten('PATCH', url, { procedures: wrong });
      expect([response.statusCode, (response.json() as { detail: { code: string } }).detail.code]).toEqual([400, 'invalid_procedure_reference']);
    }
    const only = await a.publish(a.branchId, { procedures: { [second]: { procedure_id: second, version_id: v2 } } });
    expect(Object.keys(only.procedures)).toEqual([second]);
    // The caller's draft of `first` is still there.
    expect((await ok<{ name: string }>('GET', `${a.procedures()}/${first}/draft`)).name).toBe('One, edited');
    expect((await a.publish(a.branchId, { procedures: {} })).procedures).toEqual({});
  });

  it('two publishers on one branch at once both land: no write is lost and versions are numbered without gaps', async () => {
    const a = await agent();
    const mine = await create(a.procedures(), { name: 'Editor', content: 'From the editor.' });
    const theirs = await create(a.procedures(), { name: 'Admin', content: 'From the admin.' }, keys.admin);
    await Promise.all([a.publish(a.branchId, {}, keys.editor), a.publish(a.branchId, { version_description: 'admin' }, keys.admin)]);
    expect(Object.keys((await a.read()).procedures).sort()).toEqual([mine, theirs].sort());
    const seqNos = await testApp.store.db.selectFrom('versions').select('seq_no_in_branch').where('branch_id', '=', a.branchId).orderBy('seq_no_in_branch').execute();
    expect(seqNos.map((row) => Number(row.seq_no_in_branch))).toEqual([1, 2, 3]);
  });
});

describe('the procedure routes', () => {
  it('compile: 400 no_draft_to_compile with no drafts, a flat 400 {errors} when invalid, else the base workflow; it writes nothing', async () => {
    const a = await agent();
    const none = await refusedWithNothingWritten('POST', `${a.procedures()}/compile`);
    expect([none.statusCode, (none.json() as { detail: { code: string } }).detail.code]).toEqual([400, 'no_draft_to_compile']);
    await create(a.procedures(), { name: 'Fine', content: 'Free text.' });
    const compiled = (await refusedWithNothingWritten('POST', `${a.procedures()}/compile`, null)).json() as { workflow: Record<string, unknown> };
    expect(compiled.workflow).toMatchObject({ nodes: expect.any(Object), edges: expect.any(Object), prevent_subagent_loops: expect.any(Boolean) });
    const broken = await create(a.procedures(), INVALID_STEPS);
    const invalid = await refusedWithNothingWritten('POST', `${a.procedures()}/compile`);
    expect(invalid.statusCode).toBe(400);
    const body = invalid.json() as { errors: Record<string, unknown[]> };
    expect(Object.keys(body)).toEqual(['errors']);
    expect(Object.keys(body.errors)).toEqual([broken]);
  });

  it('a draft cannot change the type; a draft PATCH upserts; a trigger left out is kept, "" clears it', async () => {
    const a = await agent();
    const id = await create(a.procedures(), { name: 'T', content: 'x', description: 'the old name for trigger' });
    await a.publish();
    const refused = await refusedWithNothingWritten('PATCH', `${a.procedures()}/${id}/draft`, { name: 'T', content: '{"steps":[]}', type: 'deterministic' });
    expect([refused.statusCode, (refused.json() as { detail: { code: string } }).detail.code]).toEqual([400, 'procedure_type_cannot_change']);
    // Another user has no draft: their PATCH makes one over the head.
    const upserted = await ok<{ trigger: string }>('PATCH', `${a.procedures()}/${id}/draft`, { name: 'T', content: 'y', type: 'free_form' }, keys.admin);
    expect(upserted.trigger).toBe('the old name for trigger');
    expect((await ok<{ trigger: string }>('PATCH', `${a.procedures()}/${id}/draft`, { name: 'T', content: 'y', type: 'free_form', trigger: '' })).trigger).toBe('');
    // The editor's draft did not touch the admin's.
    expect((await ok<{ trigger: string }>('GET', `${a.procedures()}/${id}/draft`, undefined, keys.admin)).trigger).toBe('the old name for trigger');
  });

  it('discarding the draft of a never-published procedure deletes it; of a published one, falls back to the head', async () => {
    const a = await agent();
    const fresh = await create(a.procedures(), { name: 'Fresh', content: 'new' });
    await ok('DELETE', `${a.procedures()}/${fresh}/draft`);
    expect((await send('GET', `${a.procedures()}/${fresh}/draft`)).statusCode).toBe(404);
    expect(await testApp.store.db.selectFrom('procedures').select('id').where('id', '=', fresh).execute()).toEqual([]);
    const kept = await create(a.procedures(), { name: 'Kept', content: 'published' });
    await a.publish();
    await ok('PATCH', `${a.procedures()}/${kept}/draft`, { name: 'Kept', content: 'edited', type: 'free_form' });
    await ok('DELETE', `${a.procedures()}/${kept}/draft`);
    expect((await ok<{ content: string }>('GET', `${a.procedures()}/${kept}/draft`)).content).toBe('published');
  });

  it('deleting a folder stages the removal of its subtree; refused with 409 while a procedure outside references one inside', async () => {
    const a = await agent();
    const folder = await create(a.procedures(), { name: 'Folder', type: 'folder' });
    const inside = await create(a.procedures(), { name: 'Inside', content: 'in the folder', folder_parent_id: folder });
    const outside = await create(a.procedures(), { name: 'Outside', content: `Then run [procedure id="${inside}"].` });
    await a.publish();
    const refused = await refusedWithNothingWritten('DELETE', `${a.procedures()}/${folder}`);
    expect([refused.statusCode, (refused.json() as { detail: { code: string } }).detail.code]).toEqual([409, 'procedure_referenced']);
    await ok('PATCH', `${a.procedures()}/${outside}/draft`, { name: 'Outside', content: 'No reference any more.', type: 'free_form' });
    await ok('DELETE', `${a.procedures()}/${folder}`);
    const listed = await ok<{ procedures: { procedure_id: string }[] }>('GET', a.procedures());
    expect(listed.procedures.map((item) => item.procedure_id)).toEqual([outside]);
    // Staged only: the head still has all three until the caller publishes.
    expect(Object.keys((await a.read()).procedures).sort()).toEqual([folder, inside, outside].sort());
    expect(Object.keys((await a.publish()).procedures)).toEqual([outside]);
    // A folder_parent_id that is no folder of the branch is refused.
    expect((await send('POST', a.procedures(), { name: 'Lost', folder_parent_id: outside })).statusCode).toBe(422);
  });

  it("discarding the agent draft leaves the caller's procedure drafts", async () => {
    const a = await agent();
    const id = await create(a.procedures(), { name: 'Draft', content: 'x' });
    okJson(await send('POST', `${a.base}/drafts?branch_id=${a.branchId}`, { conversation_config: {}, platform_settings: {}, workflow: {}, name: 'P' }));
    expect(okJson<{ discarded: boolean }>(await send('DELETE', `${a.base}/drafts?branch_id=${a.branchId}`)).discarded).toBe(true);
    expect((await ok<{ name: string }>('GET', `${a.procedures()}/${id}/draft`)).name).toBe('Draft');
  });

  it("never reveals another workspace's procedures, nor one of another agent under this one", async () => {
    const a = await agent();
    const other = await agent();
    const id = await create(a.procedures(), { name: 'Ours', content: 'x' });
    await a.publish();
    for (const url of [`${a.procedures()}/${id}`, `${a.procedures()}/${id}/draft`, a.procedures()]) {
      const response = await refusedWithNothingWritten('GET', url, undefined, foreignKey);
      expect(response.statusCode).toBe(404);
    }
    expect((await refusedWithNothingWritten('PATCH', `${a.procedures()}/${id}/draft`, { name: 'x', content: 'x', type: 'free_form' }, foreignKey)).statusCode).toBe(404);
    expect((await refusedWithNothingWritten('DELETE', `${a.procedures()}/${id}`, undefined, foreignKey)).statusCode).toBe(404);
    expect((await refusedWithNothingWritten('GET', `${other.procedures()}/${id}`)).statusCode).toBe(404);
    expect((await refusedWithNothingWritten('PATCH', `${other.procedures()}/${id}/draft`, { name: 'x', content: 'x', type: 'free_form' })).statusCode).toBe(404);
    // A branch of another agent under this one.
    expect((await refusedWithNothingWritten('GET', `${a.procedures(other.branchId)}/${id}`)).statusCode).toBe(404);
  });
});

describe('procedures across branches and agents', () => {
  it('diff and merge: a procedure changed on a branch shows in the diff and merges by id; a hand-written value must be a version of it', async () => {
    const a = await agent();
    const id = await create(a.procedures(), { name: 'Merged', content: 'x' });
    const published = await a.publish();
    const main = await a.read(a.mainId);
    const diff = await ok<{ changes: { section: string; path: string; kind: string; after: unknown }[] }>(
      'GET',
      `${a.base}/diff?from_version_id=${main.version_id}&to_version_id=${published.version_id}`,
    );
    expect(diff.changes.filter((change) => change.section === 'procedures')).toEqual([
      expect.objectContaining({ path: id, kind: 'added', after: published.procedures[id].version_id }),
    ]);
    const merge = `${a.base}/branches/${a.branchId}/merge?target_branch_id=${a.mainId}`;
    const bad = await refusedWithNothingWritten('POST', `${merge}&resolutions=${encodeURIComponent(JSON.stringify({ [`procedures.${id}`]: { value: 'agtprcv_nowhere' } }))}`, {});
    // No conflict there yet: a resolution for a path without one is refused.
    expect(bad.statusCode).toBe(422);
    okJson(await send('POST', merge, { archive_source_branch: false }));
    expect((await a.read(a.mainId)).procedures[id].version_id).toBe(published.procedures[id].version_id);
  });

  it('a conflict settled by a value as the preview shows it (a ProcedureRefResponseModel) or by its version id', async () => {
    const a = await agent();
    const id = await create(a.procedures(), { name: 'Both', content: 'base' });
    await a.publish();
    okJson(await send('POST', `${a.base}/branches/${a.branchId}/merge?target_branch_id=${a.mainId}`, { archive_source_branch: false }));
    await ok('PATCH', `${a.procedures()}/${id}/draft`, { name: 'Both', content: 'side', type: 'free_form' });
    const side = await a.publish();
    await ok('PATCH', `${a.procedures(a.mainId)}/${id}/draft`, { name: 'Both', content: 'main', type: 'free_form' });
    const main = await a.publish(a.mainId);
    const preview = await ok<{ conflicts: { section: string; path: string; source_value: { version_id: string } }[] }>(
      'GET',
      `${a.base}/branches/${a.branchId}/merge-preview?target_branch_id=${a.mainId}`,
    );
    const conflict = preview.conflicts.find((item) => item.section === 'procedures')!;
    expect(conflict.path).toBe(id);
    const withValue = (value: unknown) => `${a.base}/branches/${a.branchId}/merge-preview?target_branch_id=${a.mainId}&resolutions=${encodeURIComponent(JSON.stringify({ [id]: { value } }))}`;
    expect((await ok<AgentRead>('GET', withValue(conflict.source_value))).procedures[id].version_id).toBe(side.procedures[id].version_id);
    expect((await ok<AgentRead>('GET', withValue(main.procedures[id].version_id))).procedures[id].version_id).toBe(main.procedures[id].version_id);
    // An id of the right shape that names no version (its last character changed).
    const mainVersion = main.procedures[id].version_id;
    expect((await send('GET', withValue(`${mainVersion.slice(0, -1)}${mainVersion.endsWith('0') ? '1' : '0'}`))).statusCode).toBe(422);
    expect((await send('GET', withValue(5))).statusCode).toBe(422);
    // null leaves the procedure out of the result.
    expect((await ok<AgentRead>('GET', withValue(null))).procedures).toEqual({});
  });

  it("branch create with include_draft takes the caller's procedure drafts (left in place on the parent); duplicate copies procedures under new ids", async () => {
    const a = await agent();
    const published = await create(a.procedures(), { name: 'Published', content: 'p' });
    const head = await a.publish();
    const drafted = await create(a.procedures(), { name: 'Drafted', content: 'd' });
    const made = await ok<{ created_branch_id: string }>('POST', `${a.base}/branches`, {
      parent_version_id: head.version_id,
      name: 'with drafts',
      description: '',
      include_draft: true,
    });
    const branched = await a.read(made.created_branch_id);
    expect(Object.keys(branched.procedures).sort()).toEqual([published, drafted].sort());
    expect(branched.procedures[published].version_id).toBe(head.procedures[published].version_id);
    expect((await ok<{ procedures: { procedure_id: string; has_draft: boolean }[] }>('GET', a.procedures())).procedures).toContainEqual(
      expect.objectContaining({ procedure_id: drafted, has_draft: true }),
    );

    const { agent_id: copyId } = await ok<{ agent_id: string }>('POST', `${a.base}/duplicate`, { name: 'Copy' });
    const copy = await ok<{ results: { id: string; name: string }[] }>('GET', `/v1/convai/agents/${copyId}/branches`);
    const copiedSide = copy.results.find((branch) => branch.name === 'side')!;
    const copied = await ok<AgentRead>('GET', `/v1/convai/agents/${copyId}?branch_id=${copiedSide.id}`);
    const refs = Object.values(copied.procedures);
    expect(refs.map((ref) => ref.name)).toEqual(['Published']);
    expect(refs[0].procedure_id).not.toBe(published);
    expect((await ok<{ name: string; content: string }>('GET', `/v1/convai/agents/${copyId}/branches/${copiedSide.id}/procedures/${refs[0].procedure_id}`)).content).toBe('p');
  });
});
