import type { LightMyRequestResponse } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';

import { DocumentStore } from '../src/features/versions/documents.store.js';
import { hasBadText } from '../src/http/text.js';
import { describeResponse, expectValidationError, type Fixture, locs, routeRequests, type Send } from './support/route-requests.js';
import { startTestApp } from './support/test-app.js';

// The documented limits (README "Limits"), each exactly: a value at the limit is accepted and reads
// back as sent; one character (or item) over is a 422 at the field's own `loc` that writes nothing.
// A test that passed whether the value was accepted or refused proved none of them.

const testApp = await startTestApp();
const { keys } = testApp;
const { send, refused, ok, createFixture } = routeRequests(testApp);
afterAll(() => testApp.close());

interface LimitCase {
  what: string;
  limit: number;
  /** The value of size `size` (characters, or items for a list). */
  value(size: number): unknown;
  loc: (string | number)[];
  request(fixture: Fixture, value: unknown): Send;
  /** What a read after the accepted request shows for the field. */
  readBack(fixture: Fixture, response: LightMyRequestResponse): Promise<unknown>;
}

const text = (size: number) => 'n'.repeat(size);
/** `size` distinct tags. */
const tagList = (size: number) => Array.from({ length: size }, (_, i) => `tag-${i}`);
const agentUrl = (fixture: Fixture) => `/v1/convai/agents/${fixture.agentId}`;
const branchUrl = (fixture: Fixture) => `${agentUrl(fixture)}/branches/${fixture.branchId}`;
const proposalUrl = (fixture: Fixture) => `${agentUrl(fixture)}/merge-proposals/${fixture.proposalId}`;

async function readJson<T>(url: string): Promise<T> {
  return ok<T>(await send({ method: 'GET', url, key: keys.admin }));
}
const createdAgent = (response: LightMyRequestResponse) => readJson<{ name: string; tags: string[] }>(`/v1/convai/agents/${(response.json() as { agent_id: string }).agent_id}`);
const createdBranch = (fixture: Fixture, response: LightMyRequestResponse) =>
  readJson<{ name: string; description: string }>(`${agentUrl(fixture)}/branches/${(response.json() as { created_branch_id: string }).created_branch_id}`);
const createdProposal = (fixture: Fixture, response: LightMyRequestResponse) =>
  readJson<{ title: string; description: string }>(`${agentUrl(fixture)}/merge-proposals/${(response.json() as { created_merge_proposal_id: string }).created_merge_proposal_id}`);
type Proposal = { title: string; description: string; reviews: { comment: string }[]; comments: { body: string }[] };

const createAgent = (value: Record<string, unknown>): ((fixture: Fixture, v: unknown) => Send) => (_, v) => ({
  method: 'POST',
  url: '/v1/convai/agents/create',
  key: keys.admin,
  payload: { conversation_config: {}, name: 'Limits', ...Object.fromEntries(Object.entries(value).map(([field]) => [field, v])) },
});
const createBranch = (field: 'name' | 'description') => (fixture: Fixture, v: unknown): Send => ({
  method: 'POST',
  url: `${agentUrl(fixture)}/branches`,
  key: keys.admin,
  payload: { parent_version_id: fixture.mainVersionId, name: 'Limited', description: '', [field]: v },
});
const createProposal = (field: 'title' | 'description') => (fixture: Fixture, v: unknown): Send => ({
  method: 'POST',
  url: `${agentUrl(fixture)}/merge-proposals`,
  key: keys.admin,
  payload: { source_branch_id: fixture.branchId, target_branch_id: fixture.mainBranchId, title: 'Limited', [field]: v },
});
const saveDraft = (field: 'name' | 'tags') => (fixture: Fixture, v: unknown): Send => ({
  method: 'POST',
  url: `${agentUrl(fixture)}/drafts?branch_id=${fixture.branchId}`,
  key: keys.admin,
  payload: { conversation_config: {}, platform_settings: {}, workflow: {}, name: 'Draft', [field]: v },
});
/** The admin's draft on the fixture's branch, as stored (no route reads a draft's content back). */
async function storedDraft(fixture: Fixture): Promise<{ name: string; tags: string[] }> {
  const { document_hash } = await testApp.store.db
    .selectFrom('drafts')
    .select('document_hash')
    .where('branch_id', '=', fixture.branchId)
    .executeTakeFirstOrThrow();
  return (await new DocumentStore().load(testApp.store.db, document_hash)) as unknown as { name: string; tags: string[] };
}
const patch = (url: (fixture: Fixture) => string, field: string) => (fixture: Fixture, v: unknown): Send => ({
  method: 'PATCH',
  url: url(fixture),
  key: keys.admin,
  payload: { [field]: v },
});

const CASES: LimitCase[] = [
  { what: 'agent name on create', limit: 512, value: text, loc: ['body', 'name'], request: createAgent({ name: 0 }), readBack: async (_, r) => (await createdAgent(r)).name },
  { what: 'agent name on PATCH', limit: 512, value: text, loc: ['body', 'name'], request: patch(agentUrl, 'name'), readBack: async (f) => (await readJson<{ name: string }>(agentUrl(f))).name },
  { what: 'number of tags on create', limit: 100, value: tagList, loc: ['body', 'tags'], request: createAgent({ tags: 0 }), readBack: async (_, r) => (await createdAgent(r)).tags },
  { what: 'tag length on create', limit: 256, value: (size) => [text(size)], loc: ['body', 'tags', 0], request: createAgent({ tags: 0 }), readBack: async (_, r) => (await createdAgent(r)).tags },
  { what: 'number of tags on PATCH', limit: 100, value: tagList, loc: ['body', 'tags'], request: patch(agentUrl, 'tags'), readBack: async (f) => (await readJson<{ tags: string[] }>(agentUrl(f))).tags },
  { what: 'tag length on PATCH', limit: 256, value: (size) => ['short', text(size)], loc: ['body', 'tags', 1], request: patch(agentUrl, 'tags'), readBack: async (f) => (await readJson<{ tags: string[] }>(agentUrl(f))).tags },
  { what: 'agent name on duplicate', limit: 512, value: text, loc: ['body', 'name'], request: (f, v) => ({ method: 'POST', url: `${agentUrl(f)}/duplicate`, key: keys.admin, payload: { name: v } }), readBack: async (_, r) => (await createdAgent(r)).name },
  { what: 'agent name in a draft', limit: 512, value: text, loc: ['body', 'name'], request: saveDraft('name'), readBack: async (f) => (await storedDraft(f)).name },
  { what: 'number of tags in a draft', limit: 100, value: tagList, loc: ['body', 'tags'], request: saveDraft('tags'), readBack: async (f) => (await storedDraft(f)).tags },
  { what: 'tag length in a draft', limit: 256, value: (size) => [text(size)], loc: ['body', 'tags', 0], request: saveDraft('tags'), readBack: async (f) => (await storedDraft(f)).tags },
  { what: 'branch name on create', limit: 140, value: text, loc: ['body', 'name'], request: createBranch('name'), readBack: async (f, r) => (await createdBranch(f, r)).name },
  { what: 'branch name on rename', limit: 140, value: text, loc: ['body', 'name'], request: patch(branchUrl, 'name'), readBack: async (f) => (await readJson<{ name: string }>(branchUrl(f))).name },
  { what: 'branch description on create', limit: 4096, value: text, loc: ['body', 'description'], request: createBranch('description'), readBack: async (f, r) => (await createdBranch(f, r)).description },
  { what: 'branch description on PATCH', limit: 4096, value: text, loc: ['body', 'description'], request: patch(branchUrl, 'description'), readBack: async (f) => (await readJson<{ description: string }>(branchUrl(f))).description },
  { what: 'proposal title on create', limit: 500, value: text, loc: ['body', 'title'], request: createProposal('title'), readBack: async (f, r) => (await createdProposal(f, r)).title },
  { what: 'proposal title on PATCH', limit: 500, value: text, loc: ['body', 'title'], request: patch(proposalUrl, 'title'), readBack: async (f) => (await readJson<Proposal>(proposalUrl(f))).title },
  { what: 'proposal description on create', limit: 20_000, value: text, loc: ['body', 'description'], request: createProposal('description'), readBack: async (f, r) => (await createdProposal(f, r)).description },
  { what: 'proposal description on PATCH', limit: 20_000, value: text, loc: ['body', 'description'], request: patch(proposalUrl, 'description'), readBack: async (f) => (await readJson<Proposal>(proposalUrl(f))).description },
  {
    what: 'review comment',
    limit: 20_000,
    value: text,
    loc: ['body', 'comment'],
    // The fixture's proposal is the admin's own: a request for changes is allowed, an approval is not.
    request: (f, v) => ({ method: 'POST', url: `${proposalUrl(f)}/reviews`, key: keys.admin, payload: { state: 'changes_requested', comment: v } }),
    readBack: async (f) => (await readJson<Proposal>(proposalUrl(f))).reviews.at(-1)?.comment,
  },
  {
    what: 'proposal comment',
    limit: 20_000,
    value: text,
    loc: ['body', 'body'],
    request: (f, v) => ({ method: 'POST', url: `${proposalUrl(f)}/comments`, key: keys.admin, payload: { body: v } }),
    readBack: async (f) => (await readJson<Proposal>(proposalUrl(f))).comments.at(-1)?.body,
  },
];

describe.each(CASES.map((limitCase) => [limitCase.what, limitCase] as const))('%s', (_, limitCase) => {
  it(`at the limit (${limitCase.limit}): accepted, and read back as sent`, async () => {
    const fixture = await createFixture();
    const value = limitCase.value(limitCase.limit);
    const response = await send(limitCase.request(fixture, value));
    expect(response.statusCode, describeResponse(response)).toBe(200);
    expect(await limitCase.readBack(fixture, response)).toEqual(value);
  });

  it(`one over (${limitCase.limit + 1}): 422 at ${JSON.stringify(limitCase.loc)}, nothing written`, async () => {
    const fixture = await createFixture();
    const issues = expectValidationError(await refused(limitCase.request(fixture, limitCase.value(limitCase.limit + 1))));
    expect(locs(issues)).toEqual([limitCase.loc]);
  });
});

describe('names the server makes', () => {
  it('the copy of an agent whose name is at the limit is named "<name> (copy)" within the limit, cut at a whole character', async () => {
    for (const name of [text(512), `${text(504)}😀😀😀😀`]) {
      const { agentId } = await createFixture().then(async (fixture) => {
        await ok(await send({ method: 'PATCH', url: agentUrl(fixture), key: keys.admin, payload: { name } }));
        return fixture;
      });
      const copy = await send({ method: 'POST', url: `/v1/convai/agents/${agentId}/duplicate`, key: keys.admin, payload: {} });
      expect(copy.statusCode, describeResponse(copy)).toBe(200);
      const copied = (await createdAgent(copy)).name;
      expect(copied.length).toBeLessThanOrEqual(512);
      expect(copied.endsWith(' (copy)')).toBe(true);
      expect(name.startsWith(copied.slice(0, -' (copy)'.length))).toBe(true);
      expect(hasBadText(copied)).toBe(false);
      // The copy's name is one the API itself accepts.
      expect((await send({ method: 'PATCH', url: `/v1/convai/agents/${(copy.json() as { agent_id: string }).agent_id}`, key: keys.admin, payload: { name: copied } })).statusCode).toBe(200);
    }
  });
});
