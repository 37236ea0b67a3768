import { ElevenLabsError, type ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Role } from '../../src/domain/caller.js';
import { detailOf, failure } from '../support/sdk-errors.js';
import { listen, sdk, startTestApp, type TestApp } from '../support/test-app.js';

// Merge proposals through the official SDK, and the review gating matrix.

let testApp: TestApp;
let baseUrl: string;
/** Clients and user ids of named people: two admins, two editors, a commenter, a viewer. */
const people: Record<string, { client: ElevenLabsClient; userId: string; role: Role }> = {};

beforeAll(async () => {
  testApp = await startTestApp();
  baseUrl = await listen(testApp);
  const keys: [string, Role, string][] = [
    ['admin', 'admin', testApp.keys.admin],
    ['editor', 'editor', testApp.keys.editor],
    ['commenter', 'commenter', testApp.keys.commenter],
    ['viewer', 'viewer', testApp.keys.viewer],
    ['admin2', 'admin', (await testApp.app.workspaces.createKey('default', 'admin2', 'admin')).key],
    ['editor2', 'editor', (await testApp.app.workspaces.createKey('default', 'editor2', 'editor')).key],
  ];
  const users = await testApp.store.db.selectFrom('users').select(['id', 'name']).execute();
  const idOf = (name: string) => users.find((user) => user.name === name)!.id;
  const userNames: Record<string, string> = { admin: 'admin', editor: 'editor-user', commenter: 'commenter-user', viewer: 'viewer-user', admin2: 'admin2', editor2: 'editor2' };
  for (const [person, role, key] of keys) people[person] = { client: sdk(baseUrl, key), userId: idOf(userNames[person]), role };
});
afterAll(() => testApp.close());


/** An agent with a feature branch that changes the first message; optionally an admin-protected main. */
async function proposalSetup(author: string, protectedMain = false) {
  const admin = people.admin.client;
  const { agentId } = await admin.conversationalAi.agents.create({ name: 'Reviewed', conversationConfig: { agent: { firstMessage: 'before' } } });
  const main = await admin.conversationalAi.agents.get(agentId);
  const { createdBranchId } = await people[author].client.conversationalAi.agents.branches.create(agentId, {
    parentVersionId: main.versionId!,
    name: 'change',
    description: '',
    conversationConfig: { agent: { firstMessage: 'after' } },
  });
  if (protectedMain) await admin.conversationalAi.agents.branches.update(agentId, main.mainBranchId!, { protectionStatus: 'admin_perms_required' });
  const { createdMergeProposalId } = await people[author].client.conversationalAi.agents.mergeProposals.create(agentId, {
    sourceBranchId: createdBranchId,
    targetBranchId: main.mainBranchId!,
    title: 'Warmer greeting',
  });
  return { agentId, mainId: main.mainBranchId!, sourceId: createdBranchId, proposalId: createdMergeProposalId };
}

type Step = { review: [string, 'approved' | 'changes_requested'] } | { commitOnSource: string };

const MATRIX: { name: string; author: string; protectedMain?: boolean; steps: Step[]; merger: string; expect: 'merged' | 403 | 409 }[] = [
  { name: 'no review, editor merges their own', author: 'editor', steps: [], merger: 'editor', expect: 409 },
  { name: 'approved by another editor', author: 'editor', steps: [{ review: ['editor2', 'approved'] }], merger: 'editor', expect: 'merged' },
  { name: 'approved by an admin', author: 'editor', steps: [{ review: ['admin', 'approved'] }], merger: 'editor', expect: 'merged' },
  { name: 'approved only by a commenter (cannot write the target)', author: 'editor', steps: [{ review: ['commenter', 'approved'] }], merger: 'editor', expect: 409 },
  {
    name: 'approval made stale by a new commit on the source',
    author: 'editor',
    steps: [{ review: ['editor2', 'approved'] }, { commitOnSource: 'editor' }],
    merger: 'editor',
    expect: 409,
  },
  {
    name: 'stale approval renewed',
    author: 'editor',
    steps: [{ review: ['editor2', 'approved'] }, { commitOnSource: 'editor' }, { review: ['editor2', 'approved'] }],
    merger: 'editor',
    expect: 'merged',
  },
  {
    name: 'approved, and a commenter requested changes (advice: a commenter cannot write the target)',
    author: 'editor',
    steps: [{ review: ['editor2', 'approved'] }, { review: ['commenter', 'changes_requested'] }],
    merger: 'editor',
    expect: 'merged',
  },
  {
    name: 'approved, but an admin requested changes on the current source',
    author: 'editor',
    steps: [{ review: ['editor2', 'approved'] }, { review: ['admin2', 'changes_requested'] }],
    merger: 'editor',
    expect: 409,
  },
  {
    name: 'a request for changes made stale by a new commit, then a current approval',
    author: 'editor',
    steps: [{ review: ['admin2', 'changes_requested'] }, { commitOnSource: 'editor' }, { review: ['editor2', 'approved'] }],
    merger: 'editor',
    expect: 'merged',
  },
  {
    name: "a commenter's approval beside a current approval by an editor",
    author: 'editor',
    steps: [{ review: ['commenter', 'approved'] }, { review: ['editor2', 'approved'] }],
    merger: 'editor',
    expect: 'merged',
  },
  {
    name: 'a stale approval superseded by a current one from another user',
    author: 'editor',
    steps: [{ review: ['admin2', 'approved'] }, { commitOnSource: 'editor' }, { review: ['editor2', 'approved'] }],
    merger: 'editor',
    expect: 'merged',
  },
  {
    name: 'changes requested, then the same reviewer approves',
    author: 'editor',
    steps: [{ review: ['editor2', 'changes_requested'] }, { review: ['editor2', 'approved'] }],
    merger: 'editor',
    expect: 'merged',
  },
  { name: 'an admin merges without any review', author: 'editor', steps: [], merger: 'admin', expect: 'merged' },
  { name: 'an admin merges over requested changes', author: 'editor', steps: [{ review: ['editor2', 'changes_requested'] }], merger: 'admin', expect: 'merged' },
  { name: 'protected target: the approved editor cannot merge', author: 'editor', protectedMain: true, steps: [{ review: ['editor2', 'approved'] }], merger: 'editor', expect: 403 },
  { name: 'protected target: an admin merges the approved proposal', author: 'editor', protectedMain: true, steps: [{ review: ['editor2', 'approved'] }], merger: 'admin', expect: 'merged' },
  { name: 'protected target: a reviewing editor cannot merge either', author: 'editor', protectedMain: true, steps: [{ review: ['admin', 'approved'] }], merger: 'editor2', expect: 403 },
  { name: 'an admin author merges their own', author: 'admin', steps: [], merger: 'admin', expect: 'merged' },
  { name: 'an editor merges an admin\'s proposal with an approval', author: 'admin', steps: [{ review: ['editor2', 'approved'] }], merger: 'editor', expect: 'merged' },
  { name: 'a viewer cannot merge', author: 'editor', steps: [{ review: ['editor2', 'approved'] }], merger: 'viewer', expect: 403 },
];

describe('the gating matrix', () => {
  it.each(MATRIX)('$name → $expect', async ({ author, protectedMain, steps, merger, expect: expected }) => {
    const { agentId, sourceId, proposalId } = await proposalSetup(author, protectedMain);
    let n = 0;
    for (const step of steps) {
      if ('review' in step) {
        const [reviewer, state] = step.review;
        await people[reviewer].client.conversationalAi.agents.mergeProposals.submitReview(agentId, proposalId, { state });
      } else {
        await people[step.commitOnSource].client.conversationalAi.agents.update(agentId, {
          branchId: sourceId,
          conversationConfig: { agent: { firstMessage: `after ${++n}` } },
        });
      }
    }
    const merging = people[merger].client.conversationalAi.agents.mergeProposals.merge(agentId, proposalId);
    const main = () => people.admin.client.conversationalAi.agents.get(agentId);
    if (expected === 'merged') {
      const proposal = await merging;
      expect(proposal.outcome).toMatchObject({ status: 'merged', byUserId: people[merger].userId });
      const head = await main();
      expect(head.versionId).toBe((proposal.outcome as { versionId: string }).versionId);
      expect(head.conversationConfig.agent?.firstMessage).toBe(n > 0 ? `after ${n}` : 'after');
    } else {
      const error = await failure(merging);
      expect(error.statusCode).toBe(expected);
      if (expected === 409) expect(detailOf(error).code).toBe('merge_proposal_not_approved');
      expect((await main()).conversationConfig.agent?.firstMessage).toBe('before');
      expect((await people.admin.client.conversationalAi.agents.mergeProposals.get(agentId, proposalId)).outcome).toEqual({ status: 'open' });
    }
  });

  it('names what is missing in the refusal, and nobody approves their own proposal', async () => {
    const { agentId, sourceId, proposalId } = await proposalSetup('editor');
    const own = await failure(people.editor.client.conversationalAi.agents.mergeProposals.submitReview(agentId, proposalId, { state: 'approved' }));
    expect(own.statusCode).toBe(403);
    await people.editor2.client.conversationalAi.agents.mergeProposals.submitReview(agentId, proposalId, { state: 'approved', comment: 'LGTM' });
    await people.editor.client.conversationalAi.agents.update(agentId, { branchId: sourceId, conversationConfig: { agent: { firstMessage: 'later' } } });
    await people.commenter.client.conversationalAi.agents.mergeProposals.submitReview(agentId, proposalId, { state: 'changes_requested' });
    const refused = await failure(people.editor.client.conversationalAi.agents.mergeProposals.merge(agentId, proposalId));
    expect(detailOf(refused).message).toContain('stale');
    expect(detailOf(refused).message).toContain('editor2');
    // The commenter's request for changes is advice: reported on the proposal, not a veto.
    expect(detailOf(refused).message).not.toContain('commenter-user');
    const proposal = await people.viewer.client.conversationalAi.agents.mergeProposals.get(agentId, proposalId);
    const review = proposal.reviews?.find((item) => item.userId === people.editor2.userId) as unknown as Record<string, unknown>;
    expect(review).toMatchObject({ state: 'approved', comment: 'LGTM', reviewerRole: 'editor', is_stale: true });
    expect((await failure(people.viewer.client.conversationalAi.agents.mergeProposals.submitReview(agentId, proposalId, { state: 'approved' }))).statusCode).toBe(403);
  });
});

describe('merge proposals through the SDK', () => {
  it('creates, lists with filters and a cursor, gets, edits, comments and closes', async () => {
    const { agentId, mainId, sourceId, proposalId } = await proposalSetup('editor');
    const editor = people.editor.client.conversationalAi.agents.mergeProposals;
    const created = await editor.get(agentId, proposalId);
    expect(created).toMatchObject({
      agentId,
      sourceBranchId: sourceId,
      targetBranchId: mainId,
      title: 'Warmer greeting',
      description: '',
      authorUserId: people.editor.userId,
      outcome: { status: 'open' },
      reviews: [],
      comments: [],
    });
    expect(created.id).toMatch(/^agtmprop_/);
    expect(created.sourceTipVersionIdAtCreation).toBe((await people.editor.client.conversationalAi.agents.get(agentId, { branchId: sourceId })).versionId);
    expect(created.accessInfo?.creatorName).toBe('editor-user');

    for (const title of ['Second proposal', 'Third: tone of voice']) {
      await editor.create(agentId, { sourceBranchId: sourceId, targetBranchId: mainId, title, description: 'about the TONE', triageTicketId: 'ticket_1' });
    }
    const all = await editor.list(agentId);
    expect(all.results.map((proposal) => proposal.title)).toEqual(['Third: tone of voice', 'Second proposal', 'Warmer greeting']);
    expect((all.results[0] as unknown as { triage_ticket_id: string }).triage_ticket_id).toBe('ticket_1');
    const first = await editor.list(agentId, { pageSize: 2 });
    expect(first.hasMore).toBe(true);
    const second = await editor.list(agentId, { pageSize: 2, cursor: first.nextCursor! });
    expect([...first.results, ...second.results].map((proposal) => proposal.id)).toEqual(all.results.map((proposal) => proposal.id));
    expect((await editor.list(agentId, { search: 'tone' })).results.map((proposal) => proposal.title)).toEqual(['Third: tone of voice', 'Second proposal']);
    expect((await editor.list(agentId, { targetBranchId: sourceId })).results).toEqual([]);

    const edited = await editor.update(agentId, proposalId, {
      title: 'Warmer greeting (v2)',
      description: 'Please **review**',
      requestedReviewerUserIds: [people.editor2.userId],
    });
    expect(edited).toMatchObject({ title: 'Warmer greeting (v2)', description: 'Please **review**', requestedReviewerUserIds: [people.editor2.userId] });
    const badReviewer = await failure(editor.update(agentId, proposalId, { requestedReviewerUserIds: ['user_nobody'] }));
    expect(badReviewer.statusCode).toBe(422);

    const commented = await people.commenter.client.conversationalAi.agents.mergeProposals.addComment(agentId, proposalId, { body: 'Looks *good*' });
    expect(commented.comments?.map((comment) => [comment.userId, comment.body])).toEqual([[people.commenter.userId, 'Looks *good*']]);

    // Closed by its author: withdrawn; by anyone else: rejected.
    const withdrawn = await editor.update(agentId, proposalId, { close: true });
    expect(withdrawn.outcome).toMatchObject({ status: 'closed', reason: 'withdrawn', byUserId: people.editor.userId });
    const rejected = await people.editor2.client.conversationalAi.agents.mergeProposals.update(agentId, all.results[0].id, { close: true });
    expect(rejected.outcome).toMatchObject({ status: 'closed', reason: 'rejected' });
    expect((await editor.list(agentId, { status: 'closed' })).results).toHaveLength(2);

    // Closed: no more edits, reviews or merges; comments still accumulate.
    expect(detailOf(await failure(editor.update(agentId, proposalId, { title: 'x' }))).code).toBe('merge_proposal_not_open');
    expect(detailOf(await failure(people.admin.client.conversationalAi.agents.mergeProposals.merge(agentId, proposalId))).code).toBe('merge_proposal_not_open');
    const later = await editor.addComment(agentId, proposalId, { body: 'closing this one' });
    expect(later.comments).toHaveLength(2);
  });

  it('a merged proposal cannot be merged again, and archiving a branch closes the open proposals on it', async () => {
    const { agentId, mainId, sourceId, proposalId } = await proposalSetup('editor');
    const other = await people.editor.client.conversationalAi.agents.mergeProposals.create(agentId, { sourceBranchId: sourceId, targetBranchId: mainId, title: 'Duplicate' });
    const merged = await people.admin.client.conversationalAi.agents.mergeProposals.merge(agentId, proposalId);
    expect(merged.outcome).toMatchObject({ status: 'merged' });
    expect(detailOf(await failure(people.admin.client.conversationalAi.agents.mergeProposals.merge(agentId, proposalId))).code).toBe('merge_proposal_not_open');
    // The merge archived the source, which closed the other proposal from it.
    const closed = await people.editor.client.conversationalAi.agents.mergeProposals.get(agentId, other.createdMergeProposalId);
    expect(closed.outcome).toMatchObject({ status: 'closed', reason: 'branch_archived' });

    const next = await proposalSetup('editor');
    await people.editor.client.conversationalAi.agents.branches.update(next.agentId, next.sourceId, { isArchived: true });
    expect((await people.editor.client.conversationalAi.agents.mergeProposals.get(next.agentId, next.proposalId)).outcome).toMatchObject({
      status: 'closed',
      reason: 'branch_archived',
    });
  });

  it('two proposals merged into one target at once: both land as versions, or one gets a 409; none is lost or half-applied', async () => {
    const admin = people.admin.client;
    const { agentId } = await admin.conversationalAi.agents.create({ conversationConfig: { agent: { firstMessage: 'base' } } });
    const main = await admin.conversationalAi.agents.get(agentId);
    const make = async (name: string, change: object) =>
      (await admin.conversationalAi.agents.branches.create(agentId, { parentVersionId: main.versionId!, name, description: '', conversationConfig: change as never }))
        .createdBranchId;
    const a = await make('a', { agent: { first_message: 'from a' } });
    const b = await make('b', { agent: { language: 'de' } });
    const pa = await admin.conversationalAi.agents.mergeProposals.create(agentId, { sourceBranchId: a, targetBranchId: main.mainBranchId!, title: 'a' });
    const pb = await admin.conversationalAi.agents.mergeProposals.create(agentId, { sourceBranchId: b, targetBranchId: main.mainBranchId!, title: 'b' });
    const results = await Promise.allSettled([
      admin.conversationalAi.agents.mergeProposals.merge(agentId, pa.createdMergeProposalId),
      admin.conversationalAi.agents.mergeProposals.merge(agentId, pb.createdMergeProposalId),
    ]);
    for (const result of results) if (result.status === 'rejected') expect((result.reason as ElevenLabsError).statusCode).toBe(409);
    const head = await admin.conversationalAi.agents.get(agentId);
    const branch = await admin.conversationalAi.agents.branches.get(agentId, main.mainBranchId!);
    const landed = results.filter((result) => result.status === 'fulfilled').length;
    expect(branch.mostRecentVersions).toHaveLength(1 + landed);
    if (results[0].status === 'fulfilled') expect(head.conversationConfig.agent?.firstMessage).toBe('from a');
    if (results[1].status === 'fulfilled') expect(head.conversationConfig.agent?.language).toBe('de');
    for (const [index, id] of [pa.createdMergeProposalId, pb.createdMergeProposalId].entries()) {
      const proposal = await admin.conversationalAi.agents.mergeProposals.get(agentId, id);
      expect(proposal.outcome?.status).toBe(results[index].status === 'fulfilled' ? 'merged' : 'open');
    }
  });
});
