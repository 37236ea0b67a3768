import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Role } from '../src/domain/caller.js';
import { describeResponse } from './support/route-requests.js';
import { injectAs, okJson, startTestApp, type TestApp } from './support/test-app.js';

// Which reviews gate a merge proposal (issue 14, defect 8), as a property: any sequence of
// reviews by users of every role, with commits on the source in between, then a merge by an editor
// who may write the target. The server must agree with a small model of the rule: only CURRENT
// reviews (of the source tip at merge time) by users who may write to the target count; it takes
// one such approval by someone other than the author, and one such `changes_requested` vetoes.
// Everything else is reported on the proposal (`reviews`, `is_stale`) and never blocks.

const PEOPLE = ['admin2', 'editor', 'editor2', 'commenter', 'viewer'] as const;
type Person = (typeof PEOPLE)[number];
const ROLE: Record<Person, Role> = { admin2: 'admin', editor: 'editor', editor2: 'editor', commenter: 'commenter', viewer: 'viewer' };

let testApp: TestApp;
const keyOf = {} as Record<Person | 'admin', string>;
const userIdOf = {} as Record<Person, string>;

beforeAll(async () => {
  testApp = await startTestApp();
  const admin2 = await testApp.app.workspaces.createKey('default', 'admin2', 'admin');
  Object.assign(keyOf, { admin: testApp.keys.admin, admin2: admin2.key, editor: testApp.keys.editor, commenter: testApp.keys.commenter, viewer: testApp.keys.viewer });
  keyOf.editor2 = (await testApp.app.workspaces.createKey('default', 'editor2', 'editor')).key;
  const users = await testApp.store.db.selectFrom('users').select(['id', 'name']).execute();
  const names: Record<Person, string> = { admin2: 'admin2', editor: 'editor-user', editor2: 'editor2', commenter: 'commenter-user', viewer: 'viewer-user' };
  for (const person of PEOPLE) userIdOf[person] = users.find((user) => user.name === names[person])!.id;
});
afterAll(() => testApp.close());

type Step = { review: Person; state: 'approved' | 'changes_requested' } | { commit: true };

/** The rule, written out: what the merge must answer, and which reviews are stale. */
function model(author: Person, steps: Step[]) {
  let tip = 0;
  const reviews = new Map<Person, { state: string; tip: number }>();
  const refusals: number[] = [];
  for (const step of steps) {
    if ('commit' in step) tip++;
    else if (ROLE[step.review] === 'viewer') refusals.push(403);
    else if (step.state === 'approved' && step.review === author) refusals.push(403);
    else reviews.set(step.review, { state: step.state, tip });
  }
  // Main is unprotected: admins and editors may write it.
  const counts = (person: Person) => ['admin', 'editor'].includes(ROLE[person]) && reviews.get(person)!.tip === tip;
  const people = [...reviews.keys()];
  const veto = people.some((person) => reviews.get(person)!.state === 'changes_requested' && counts(person));
  const approved = people.some((person) => reviews.get(person)!.state === 'approved' && person !== author && counts(person));
  return { refusals, merges: approved && !veto, stale: new Map(people.map((person) => [person, reviews.get(person)!.tip !== tip])) };
}

const step: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ review: fc.constantFrom(...PEOPLE), state: fc.constantFrom('approved' as const, 'changes_requested' as const) }), weight: 4 },
  { arbitrary: fc.constant({ commit: true as const }), weight: 1 },
);

interface Proposal {
  reviews: { user_id: string; state: string; is_stale: boolean; reviewer_role: Role }[];
  outcome: { status: string };
}

describe('which reviews gate a merge', () => {
  it('the server agrees with the model for any sequence of reviews and commits', async () => {
    let commits = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom<Person>('editor', 'editor2', 'admin2'), fc.constantFrom<Person>('editor', 'editor2'), fc.array(step, { maxLength: 8 }), async (author, merger, steps) => {
        const agent = okJson<{ agent_id: string }>(await injectAs(testApp, 'POST', '/v1/convai/agents/create', keyOf.admin, { conversation_config: { agent: { first_message: 'before' } } }));
        const url = `/v1/convai/agents/${agent.agent_id}`;
        const main = okJson<{ version_id: string; main_branch_id: string }>(await injectAs(testApp, 'GET', url, keyOf.admin));
        const branch = okJson<{ created_branch_id: string }>(
          await injectAs(testApp, 'POST', `${url}/branches`, keyOf[author], { parent_version_id: main.version_id, name: 'Change', description: '', conversation_config: { agent: { first_message: 'after' } } }),
        );
        const { created_merge_proposal_id: proposalId } = okJson<{ created_merge_proposal_id: string }>(
          await injectAs(testApp, 'POST', `${url}/merge-proposals`, keyOf[author], {
            source_branch_id: branch.created_branch_id,
            target_branch_id: main.main_branch_id,
            title: 'Reviewed',
            requested_reviewer_user_ids: [userIdOf.editor2, userIdOf.commenter],
          }),
        );
        const proposalUrl = `${url}/merge-proposals/${proposalId}`;
        const expected = model(author, steps);
        const refusals: number[] = [];
        for (const item of steps) {
          if ('commit' in item) {
            const payload = { conversation_config: { agent: { first_message: `after ${++commits}` } } };
            okJson(await injectAs(testApp, 'PATCH', `${url}?branch_id=${branch.created_branch_id}`, keyOf.admin, payload));
          } else {
            const response = await injectAs(testApp, 'POST', `${proposalUrl}/reviews`, keyOf[item.review], { state: item.state });
            if (response.statusCode !== 200) refusals.push(response.statusCode);
          }
        }
        expect(refusals).toEqual(expected.refusals);
        // Every review is reported, the ones that do not count too, with whether it is stale.
        const before = okJson<Proposal>(await injectAs(testApp, 'GET', proposalUrl, keyOf.viewer));
        const reported = new Map(before.reviews.map((review) => [review.user_id, review]));
        expect(reported.size).toBe(expected.stale.size);
        for (const [person, stale] of expected.stale) {
          expect(reported.get(userIdOf[person]), person).toMatchObject({ is_stale: stale, reviewer_role: ROLE[person] });
        }
        const merged = await injectAs(testApp, 'POST', `${proposalUrl}/merge`, keyOf[merger], { archive_source_branch: false });
        if (expected.merges) {
          expect(merged.statusCode, describeResponse(merged)).toBe(200);
          expect((merged.json() as Proposal).outcome.status).toBe('merged');
        } else {
          expect(merged.statusCode, describeResponse(merged)).toBe(409);
          expect((merged.json() as { detail: { code: string } }).detail.code).toBe('merge_proposal_not_approved');
          expect(okJson<Proposal>(await injectAs(testApp, 'GET', proposalUrl, keyOf.viewer)).outcome.status).toBe('open');
        }
      }),
      { numRuns: Number(process.env.APPROVAL_RUNS ?? 40) },
    );
    // About fifteen requests a run: minutes on a loaded machine, not a hang.
  }, 300_000);
});

describe('the cases of issue 14', () => {
  async function setup() {
    const agent = okJson<{ agent_id: string }>(await injectAs(testApp, 'POST', '/v1/convai/agents/create', keyOf.admin, { conversation_config: {} }));
    const url = `/v1/convai/agents/${agent.agent_id}`;
    const main = okJson<{ version_id: string; main_branch_id: string }>(await injectAs(testApp, 'GET', url, keyOf.admin));
    const branch = okJson<{ created_branch_id: string }>(
      await injectAs(testApp, 'POST', `${url}/branches`, keyOf.editor, { parent_version_id: main.version_id, name: 'Change', description: '', conversation_config: { agent: { first_message: 'x' } } }),
    );
    const { created_merge_proposal_id: id } = okJson<{ created_merge_proposal_id: string }>(
      await injectAs(testApp, 'POST', `${url}/merge-proposals`, keyOf.editor, { source_branch_id: branch.created_branch_id, target_branch_id: main.main_branch_id, title: 'T' }),
    );
    const proposalUrl = `${url}/merge-proposals/${id}`;
    const review = async (person: Person, state: string) => okJson(await injectAs(testApp, 'POST', `${proposalUrl}/reviews`, keyOf[person], { state }));
    const commit = async (text: string) =>
      okJson(await injectAs(testApp, 'PATCH', `${url}?branch_id=${branch.created_branch_id}`, keyOf.editor, { conversation_config: { agent: { first_message: text } } }));
    const merge = () => injectAs(testApp, 'POST', `${proposalUrl}/merge`, keyOf.editor, { archive_source_branch: false });
    return { review, commit, merge };
  }

  it("a commenter's approval beside a current one from an editor does not block", async () => {
    const { review, merge } = await setup();
    await review('commenter', 'approved');
    await review('editor2', 'approved');
    expect((await merge()).statusCode).toBe(200);
  });

  it('a stale approval superseded by a current one from another user does not block', async () => {
    const { review, commit, merge } = await setup();
    await review('admin2', 'approved');
    await commit('y');
    await review('editor2', 'approved');
    expect((await merge()).statusCode).toBe(200);
  });

  it("a commenter's request for changes, or a stale one, does not block; a current one by an editor does", async () => {
    const { review, commit, merge } = await setup();
    await review('editor2', 'changes_requested');
    await review('commenter', 'changes_requested');
    await commit('y');
    await review('admin2', 'approved');
    expect((await merge()).statusCode).toBe(200);
    const other = await setup();
    await other.review('admin2', 'approved');
    await other.review('editor2', 'changes_requested');
    const refused = await other.merge();
    expect(refused.statusCode).toBe(409);
    expect((refused.json() as { detail: { message: string } }).detail.message).toContain('editor2 requested changes');
  });
});
