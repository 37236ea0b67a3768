import { afterAll, describe, expect, it } from 'vitest';

import { expectValidationError, routeRequests } from './support/route-requests.js';
import { startTestApp } from './support/test-app.js';

// `resolutions` in the query string comes in two forms: JSON text (what JS SDK users pass through
// request options) and deepObject keys (what the Python SDK makes of a dict:
// `resolutions[agent.prompt.prompt][value]=…`). Both must settle conflicts the same way.

const testApp = await startTestApp();
const { keys } = testApp;
const { send, ok, createAgent } = routeRequests(testApp);
afterAll(() => testApp.close());

type Preview = { conversation_config: { agent: { prompt: { prompt: string }; first_message: string; language: string } }; conflicts: { path: string }[] };

/** An agent whose branch and main changed the prompt, the first message and the language differently. */
async function conflictingBranches(): Promise<{ agentId: string; branchId: string; mainBranchId: string }> {
  const { agentId, versionId, mainBranchId } = await createAgent(keys.admin, 'Resolutions');
  const agentUrl = `/v1/convai/agents/${agentId}`;
  const { created_branch_id: branchId } = await ok<{ created_branch_id: string }>(
    await send({ method: 'POST', url: `${agentUrl}/branches`, key: keys.admin, payload: { parent_version_id: versionId, name: 'Side', description: '' } }),
  );
  const change = (branch: string, tag: string) =>
    send({
      method: 'PATCH',
      url: `${agentUrl}?branch_id=${branch}`,
      key: keys.admin,
      payload: { conversation_config: { agent: { prompt: { prompt: `prompt ${tag}` }, first_message: `first ${tag}`, language: tag === 'side' ? 'de' : 'fr' } } },
    });
  await ok(await change(branchId, 'side'));
  await ok(await change(mainBranchId, 'main'));
  return { agentId, branchId, mainBranchId };
}

// Each form as a query string; `value` objects hold a number, a JSON string and plain text.
const JSON_FORM = {
  'agent.prompt.prompt': { value: 'settled by hand' },
  'conversation_config.agent.first_message': 'source',
  'agent.language': 'target',
};
const JSON_QUERY = `resolutions=${encodeURIComponent(JSON.stringify(JSON_FORM))}`;
const DEEP_QUERY = [
  `${encodeURIComponent('resolutions[agent.prompt.prompt][value]')}=${encodeURIComponent('settled by hand')}`,
  `${encodeURIComponent('resolutions[conversation_config.agent.first_message]')}=source`,
  // Unencoded brackets, as some clients send them.
  'resolutions[agent.language]=target',
].join('&');

describe('resolutions as a query parameter', () => {
  it('merge-preview: the JSON and the deepObject forms give the same merged config, and it is the resolved one', async () => {
    const { agentId, branchId, mainBranchId } = await conflictingBranches();
    const preview = (query: string) =>
      send({ method: 'GET', url: `/v1/convai/agents/${agentId}/branches/${branchId}/merge-preview?target_branch_id=${mainBranchId}&${query}`, key: keys.admin });
    const fromJson = await ok<Preview>(await preview(JSON_QUERY));
    const fromDeep = await ok<Preview>(await preview(DEEP_QUERY));
    expect(fromJson.conflicts.length).toBe(3);
    expect(fromDeep).toEqual(fromJson);
    expect(fromDeep.conversation_config.agent).toMatchObject({ prompt: { prompt: 'settled by hand' }, first_message: 'first side', language: 'fr' });
  });

  it('merge: the two forms make the same merged version', async () => {
    const merged: unknown[] = [];
    for (const query of [JSON_QUERY, DEEP_QUERY]) {
      const { agentId, branchId, mainBranchId } = await conflictingBranches();
      await ok(
        await send({
          method: 'POST',
          url: `/v1/convai/agents/${agentId}/branches/${branchId}/merge?target_branch_id=${mainBranchId}&${query}`,
          key: keys.admin,
          payload: { archive_source_branch: false },
        }),
      );
      const agent = await ok<Preview>(await send({ method: 'GET', url: `/v1/convai/agents/${agentId}?branch_id=${mainBranchId}`, key: keys.admin }));
      merged.push(agent.conversation_config.agent);
    }
    expect(merged[1]).toEqual(merged[0]);
    expect(merged[0]).toMatchObject({ prompt: { prompt: 'settled by hand' }, first_message: 'first side', language: 'fr' });
  });

  it.each([
    ['a number', '42', 42],
    ['a JSON string (quoted)', '"42"', '42'],
    ['plain text', 'hello there', 'hello there'],
    ['true', 'true', true],
  ])('a deepObject value that is %s is read as JSON when it parses, else as text: the same answer as the JSON form', async (_, sent, meant) => {
    const { agentId, branchId, mainBranchId } = await conflictingBranches();
    const url = (query: string) => `/v1/convai/agents/${agentId}/branches/${branchId}/merge-preview?target_branch_id=${mainBranchId}&${query}`;
    const deep = await send({ method: 'GET', url: url(`${encodeURIComponent('resolutions[agent.first_message][value]')}=${encodeURIComponent(sent)}`), key: keys.admin });
    const json = await send({ method: 'GET', url: url(`resolutions=${encodeURIComponent(JSON.stringify({ 'agent.first_message': { value: meant } }))}`), key: keys.admin });
    const withoutRequestId = (body: string) => body.replace(/req_[0-9a-f]+/g, 'req');
    expect(deep.statusCode).toBe(json.statusCode);
    expect(withoutRequestId(deep.body)).toBe(withoutRequestId(json.body));
    // first_message is text: a number or a boolean is refused by the config's own validation (409).
    if (typeof meant === 'string') expect((await ok<Preview>(deep)).conversation_config.agent.first_message).toBe(meant);
    else expect(deep.statusCode).toBe(409);
  });

  it('a resolution for a path with no conflict: 422 located where it was sent (query in either form, or body)', async () => {
    const { agentId, branchId, mainBranchId } = await conflictingBranches();
    const branchUrl = `/v1/convai/agents/${agentId}/branches/${branchId}`;
    const nothing = encodeURIComponent(JSON.stringify({ 'agent.nothing.here': 'source' }));
    const locs = async (method: 'GET' | 'POST', url: string, payload?: unknown) =>
      expectValidationError(await send({ method, url, key: keys.admin, payload })).map((issue) => issue.loc);
    const inQuery = [['query', 'resolutions', 'agent.nothing.here']];
    expect(await locs('GET', `${branchUrl}/merge-preview?target_branch_id=${mainBranchId}&resolutions[agent.nothing.here]=source`)).toEqual(inQuery);
    expect(await locs('GET', `${branchUrl}/merge-preview?target_branch_id=${mainBranchId}&resolutions=${nothing}`)).toEqual(inQuery);
    expect(await locs('POST', `${branchUrl}/merge?target_branch_id=${mainBranchId}&resolutions=${nothing}`)).toEqual(inQuery);
    expect(await locs('POST', `${branchUrl}/merge?target_branch_id=${mainBranchId}`, { resolutions: { 'agent.nothing.here': 'source' } })).toEqual([
      ['body', 'resolutions', 'agent.nothing.here'],
    ]);
    // Nothing was merged.
    const main = await ok<{ conversation_config: { agent: { first_message: string } } }>(
      await send({ method: 'GET', url: `/v1/convai/agents/${agentId}`, key: keys.admin }),
    );
    expect(main.conversation_config.agent.first_message).toBe('first main');
  });

  it('a merge that the later commit turns into a no-op says, in its 409, how to keep the source\'s side', async () => {
    const { agentId, branchId, mainBranchId } = await conflictingBranches();
    // Main committed last, so main wins all three conflicts and the merge would change nothing.
    const url = `/v1/convai/agents/${agentId}/branches/${branchId}/merge?target_branch_id=${mainBranchId}`;
    const refused = await send({ method: 'POST', url, key: keys.admin, payload: {} });
    expect(refused.statusCode, refused.body).toBe(409);
    const detail = (refused.json() as { detail: { code: string; message: string } }).detail;
    expect(detail.code).toBe('no_new_changes_to_merge');
    expect(detail.message).toMatch(/^Merging "Side" would not change "Main": its changes to conversation_config\.agent\.\S+, /);
    expect(detail.message).toContain('merge with force=true, or with resolutions {"<path>": "source"}');
    // What it suggests works.
    const forced = await send({ method: 'POST', url, key: keys.admin, payload: { force: true } });
    expect(forced.statusCode, forced.body).toBe(200);
  });
});
