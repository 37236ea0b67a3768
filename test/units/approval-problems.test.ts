import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { Role } from '../../src/domain/caller.js';
import type { BranchRow } from '../../src/features/branches/branches.store.js';
import type { ProposalRow, ReviewRow } from '../../src/features/merge-proposals/merge-proposals.store.js';
import { approvalProblems } from '../../src/features/merge-proposals/merge-proposals.service.js';

// The rule that gates a non-admin's merge of a proposal (decisions.md D13), as a pure function of the
// proposal, its reviews, the reviewers' roles now and the target's protection. Pure, so it lives
// with the domain tests and runs once (test/merge-proposal-approvals.test.ts holds the server to
// the same rule through the API). The model below is the rule written out:
// - a review counts iff its reviewer may write to the target now (their role now, not at review
//   time: admins always, editors unless the target is admin-protected) and it is of the source tip;
// - it takes one counting approval by someone other than the author, and no counting request for changes.

const USERS = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'] as const;
const ROLES: Role[] = ['admin', 'editor', 'commenter', 'viewer'];
const TIP = 'agtvrsn_tip';
const OLDER = 'agtvrsn_older';

function proposalBy(author: string): ProposalRow {
  return {
    id: 'agtmprop_1',
    agent_id: 'agent_1',
    source_branch_id: 'agtbrch_source',
    target_branch_id: 'agtbrch_target',
    source_tip_version_id_at_creation: OLDER,
    title: 'A change',
    description: '',
    requested_reviewer_user_ids: '[]',
    triage_ticket_id: null,
    author_user_id: author,
    status: 'open',
    close_reason: null,
    outcome_version_id: null,
    outcome_at_ms: null,
    outcome_by_user_id: null,
    created_at_ms: 0,
    updated_at_ms: 0,
  };
}

function targetBranch(protection: BranchRow['protection_status']): BranchRow {
  return {
    id: 'agtbrch_target',
    agent_id: 'agent_1',
    name: 'Main',
    name_key: 'main',
    description: '',
    parent_branch_id: null,
    head_version_id: 'agtvrsn_target',
    head_seq_no: 1,
    protection_status: protection,
    auto_rebase: 0,
    is_archived: 0,
    merged_into_branch_id: null,
    created_by_user_id: 'u0',
    created_at_ms: 0,
    last_committed_at_ms: 0,
  };
}

const scenario = fc.record({
  author: fc.constantFrom(...USERS),
  protection: fc.constantFrom<BranchRow['protection_status']>('writer_perms_required', 'admin_perms_required'),
  // A user's role now; undefined: no longer a user of the workspace.
  rolesNow: fc.tuple(...USERS.map(() => fc.option(fc.constantFrom(...ROLES), { nil: undefined }))),
  // One review per user at most (the store keeps each user's latest), with the role they had then.
  reviews: fc.uniqueArray(
    fc.record({
      user_id: fc.constantFrom(...USERS),
      state: fc.constantFrom<ReviewRow['state']>('approved', 'changes_requested'),
      source_version_id: fc.constantFrom(TIP, OLDER),
      reviewer_role: fc.constantFrom(...ROLES),
    }),
    { selector: (review) => review.user_id, maxLength: USERS.length },
  ),
});

describe('approvalProblems', () => {
  it('lets a merge through exactly when the rule says, and names every review that blocks or does not count', () => {
    fc.assert(
      fc.property(scenario, ({ author, protection, rolesNow, reviews: drawn }) => {
        const roles = new Map<string, Role>();
        const names = new Map<string, string>();
        USERS.forEach((user, i) => {
          const role = rolesNow[i];
          if (role === undefined) return;
          roles.set(user, role);
          names.set(user, `name-of-${user}`);
        });
        const reviews: ReviewRow[] = drawn.map((review) => ({ ...review, proposal_id: 'agtmprop_1', comment: '', submitted_at_ms: 0 }));
        const problems = approvalProblems(proposalBy(author), reviews, roles, names, TIP, targetBranch(protection));

        const canWrite = (user: string) => roles.get(user) === 'admin' || (roles.get(user) === 'editor' && protection === 'writer_perms_required');
        const whyNot = (review: ReviewRow) => (!canWrite(review.user_id) ? 'cannot write' : review.source_version_id !== TIP ? 'stale' : undefined);
        const vetoes = reviews.filter((review) => review.state === 'changes_requested' && whyNot(review) === undefined);
        const approvals = reviews.filter((review) => review.state === 'approved' && review.user_id !== author);
        const approved = approvals.some((review) => whyNot(review) === undefined);

        expect(problems.length === 0, problems.join('; ')).toBe(approved && vetoes.length === 0);
        const text = problems.join('\n');
        const shown = (user: string) => names.get(user) ?? user;
        for (const review of vetoes) expect(text).toContain(`${shown(review.user_id)} requested changes`);
        // A request for changes that does not count is not a problem.
        for (const review of reviews.filter((review) => review.state === 'changes_requested' && whyNot(review) !== undefined)) {
          expect(text).not.toContain(`${shown(review.user_id)} requested changes`);
        }
        if (!approved) {
          expect(problems[0]).toContain('needs an approval of the current source');
          // Each approval that does not count says why; the author's own is not an approval at all.
          for (const review of approvals) {
            const line = problems.find((problem) => problem.startsWith(`the approval by ${shown(review.user_id)} does not count`));
            expect(line, `the approval by ${review.user_id}`).toBeDefined();
            expect(line).toContain(whyNot(review) === 'stale' ? 'it is stale' : `cannot write to branch "Main"`);
          }
        }
        expect(problems.filter((problem) => problem.startsWith(`the approval by ${shown(author)} `))).toEqual([]);
      }),
      { numRuns: 1_000 },
    );
  });

  it('counts the reviewer’s role now, not the one they reviewed with, and the target’s protection', () => {
    const target = targetBranch('admin_perms_required');
    const review = (user: string, reviewerRole: Role): ReviewRow => ({
      proposal_id: 'agtmprop_1',
      user_id: user,
      state: 'approved',
      comment: '',
      reviewer_role: reviewerRole,
      source_version_id: TIP,
      submitted_at_ms: 0,
    });
    const names = new Map([['u1', 'Uma']]);
    // Approved as an admin, an editor now: no longer enough for an admin-protected target.
    expect(approvalProblems(proposalBy('u0'), [review('u1', 'admin')], new Map([['u1', 'editor']]), names, TIP, target)).toEqual([
      `it needs an approval of the current source (${TIP}) from a user other than the author who can write to branch "Main"`,
      'the approval by Uma does not count: their role (editor) cannot write to branch "Main"',
    ]);
    // Approved as an editor, an admin now: enough.
    expect(approvalProblems(proposalBy('u0'), [review('u1', 'editor')], new Map([['u1', 'admin']]), names, TIP, target)).toEqual([]);
    // The same editor's approval counts on an unprotected target.
    expect(approvalProblems(proposalBy('u0'), [review('u1', 'admin')], new Map([['u1', 'editor']]), names, TIP, targetBranch('writer_perms_required'))).toEqual([]);
  });
});
