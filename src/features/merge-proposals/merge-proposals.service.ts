import type { Kysely } from 'kysely';

import type { AppContext } from '../../context.js';
import { lockAgent, lockBranch } from '../../db/locks.js';
import type { Database } from '../../db/schema.js';
import type { Caller, Role } from '../../domain/caller.js';
import { newId } from '../../domain/ids.js';
import { ConflictError, ForbiddenError, NotFoundError, RequestValidationError } from '../../errors.js';
import { decodeCursor, encodeCursor, isSafeInteger } from '../../http/cursor.js';
import { hasBadText } from '../../http/text.js';
import { agentsStore } from '../agents/agents.store.js';
import { recordUserAction } from '../audit/audit.events.js';
import { assertCanWriteBranch, assertNotArchived, roleCanWriteBranch } from '../branches/branch-access.js';
import { type BranchRow, branchesStore } from '../branches/branches.store.js';
import { mergeBranches } from '../merges/merges.service.js';
import type { UserSummary } from '../workspaces/user-directory.js';
import { workspacesStore } from '../workspaces/workspaces.store.js';
import { type CommentRow, mergeProposalsStore, type ProposalRow, type ReviewRow } from './merge-proposals.store.js';

export interface CreateProposalInput {
  source_branch_id: string;
  target_branch_id: string;
  title: string;
  description: string;
  requested_reviewer_user_ids?: string[] | null;
  triage_ticket_id?: string | null;
}

export interface UpdateProposalInput {
  title?: string | null;
  description?: string | null;
  requested_reviewer_user_ids?: string[] | null;
  close: boolean;
}

export interface ListProposalsQuery {
  status?: ProposalRow['status'];
  sourceBranchId?: string;
  targetBranchId?: string;
  search?: string;
  pageSize: number;
  cursor?: string;
}

/**
 * Why a non-admin may not merge yet, or nothing (decisions.md D13). Upstream's rule: an approval from
 * another user. Our extensions: a review counts only if it is **current** (of the source tip now)
 * and by a user who may write to the target (`roleCanWriteBranch`, with their role now). It takes
 * one counting approval by someone other than the author, and no counting `changes_requested`.
 * Every other review (stale, or by a commenter) is reported on the proposal but never blocks.
 */
export function approvalProblems(
  proposal: ProposalRow,
  reviews: ReviewRow[],
  roles: Map<string, Role>,
  names: Map<string, string>,
  sourceTipId: string,
  target: BranchRow,
): string[] {
  const name = (userId: string) => names.get(userId) ?? userId;
  /** Why a review does not count, or undefined when it does. */
  const notCounted = (review: ReviewRow): string | undefined => {
    const role = roles.get(review.user_id);
    if (!roleCanWriteBranch(role, target)) return `their role (${role ?? 'none'}) cannot write to branch "${target.name}"`;
    if (review.source_version_id !== sourceTipId) return `it is stale: it was for version ${review.source_version_id}, and the source is now at ${sourceTipId}`;
    return undefined;
  };
  const problems: string[] = [];
  for (const review of reviews) {
    if (review.state === 'changes_requested' && notCounted(review) === undefined) {
      problems.push(`${name(review.user_id)} requested changes on the current source; their approval is needed now`);
    }
  }
  const approvals = reviews.filter((review) => review.state === 'approved' && review.user_id !== proposal.author_user_id);
  if (!approvals.some((review) => notCounted(review) === undefined)) {
    const ignored = approvals.map((review) => `the approval by ${name(review.user_id)} does not count: ${notCounted(review)}`);
    problems.unshift(
      `it needs an approval of the current source (${sourceTipId}) from a user other than the author who can write to branch "${target.name}"`,
      ...ignored,
    );
  }
  return problems;
}

function assertOpen(proposal: ProposalRow): void {
  if (proposal.status !== 'open') {
    throw new ConflictError('merge_proposal_not_open', `Merge proposal ${proposal.id} is ${proposal.status}; it can no longer change or be merged.`);
  }
}

function checkText(value: string, loc: (string | number)[], max: number): void {
  if (value.length > max) throw RequestValidationError.at(loc, `String should have at most ${max} characters`, 'string_too_long');
  if (hasBadText(value)) throw RequestValidationError.at(loc, 'Text must not contain NUL characters or unpaired UTF-16 surrogates');
}

/** A merge proposal with its reviews (each marked stale when the source moved since), comments and author. */
export interface ProposalDetail {
  proposal: ProposalRow;
  reviews: { review: ReviewRow; isStale: boolean }[];
  comments: CommentRow[];
  /** `undefined`: a user that no longer exists. */
  author: UserSummary | undefined;
}

export function mergeProposalsService(context: AppContext) {
  const { db } = context;

  async function withReviews(proposals: ProposalRow[]): Promise<ProposalDetail[]> {
    const ids = proposals.map((proposal) => proposal.id);
    const store = mergeProposalsStore(db);
    const [reviews, comments] = await Promise.all([store.reviews(ids), store.comments(ids)]);
    const users = await context.users.describe(proposals.map((proposal) => proposal.author_user_id));
    const heads = await branchesStore(db).headVersionIds(proposals.map((proposal) => proposal.source_branch_id));
    return proposals.map((proposal) => ({
      proposal,
      reviews: reviews
        .filter((review) => review.proposal_id === proposal.id)
        .map((review) => ({ review, isStale: heads.get(proposal.source_branch_id) !== review.source_version_id })),
      comments: comments.filter((comment) => comment.proposal_id === proposal.id),
      author: users.get(proposal.author_user_id),
    }));
  }

  /** A proposal with its reviews, comments and author, read after a write to it. */
  async function detailOf(agentId: string, proposalId: string): Promise<ProposalDetail> {
    return (await withReviews([await findProposal(agentId, proposalId)]))[0];
  }

  async function findProposal(agentId: string, proposalId: string, trx = db) {
    const proposal = await mergeProposalsStore(trx).find(agentId, proposalId);
    if (!proposal) throw new NotFoundError('merge_proposal', proposalId);
    return proposal;
  }

  /** `trx`: inside a write, its transaction (the pool answers no query there). */
  async function assertWorkspaceUsers(trx: Kysely<Database>, caller: Caller, userIds: string[], loc: (string | number)[]) {
    if (userIds.length === 0) return;
    const found = await workspacesStore(trx).usersIn(caller.workspaceId, userIds);
    const known = new Set(found.map((row) => row.id));
    userIds.forEach((userId, index) => {
      if (!known.has(userId)) throw RequestValidationError.at([...loc, index], `User ${JSON.stringify(userId)} is not a user of this workspace.`);
    });
  }

  return {
    async list(caller: Caller, agentId: string, query: ListProposalsQuery): Promise<{ proposals: ProposalDetail[]; hasMore: boolean; nextCursor: string | null }> {
      const agent = await agentsStore(db).findOrThrow(caller.workspaceId, agentId);
      const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor, isSafeInteger);
      const after = cursor && { createdAtMs: cursor.value, id: cursor.id };
      const rows = await mergeProposalsStore(db).list({
        agentId: agent.id,
        status: query.status,
        sourceBranchId: query.sourceBranchId,
        targetBranchId: query.targetBranchId,
        search: query.search,
        after,
        limit: query.pageSize + 1,
      });
      const page = rows.slice(0, query.pageSize);
      const last = page.at(-1);
      const hasMore = rows.length > query.pageSize;
      return {
        proposals: await withReviews(page),
        hasMore,
        nextCursor: hasMore && last ? encodeCursor(last.created_at_ms, last.id) : null,
      };
    },

    async create(caller: Caller, agentId: string, input: CreateProposalInput) {
      checkText(input.title, ['body', 'title'], 500);
      checkText(input.description, ['body', 'description'], 20_000);
      const reviewers = input.requested_reviewer_user_ids ?? [];
      return context.write(async ({ trx }) => {
        const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        const branchOrInvalid = async (id: string, field: string) => {
          const branch = await branchesStore(trx).find(agent.id, id);
          if (!branch) throw RequestValidationError.at(['body', field], `Branch ${JSON.stringify(id)} is not a branch of agent ${agent.id}.`);
          return branch;
        };
        const source = await branchOrInvalid(input.source_branch_id, 'source_branch_id');
        const target = await branchOrInvalid(input.target_branch_id, 'target_branch_id');
        if (source.id === target.id) throw RequestValidationError.at(['body', 'target_branch_id'], 'A branch cannot be merged into itself.');
        assertNotArchived(source);
        assertNotArchived(target);
        await assertWorkspaceUsers(trx, caller, reviewers, ['body', 'requested_reviewer_user_ids']);
        const now = context.now();
        const id = newId('agtmprop_', now);
        await mergeProposalsStore(trx).insert({
          id,
          agent_id: agent.id,
          source_branch_id: source.id,
          target_branch_id: target.id,
          source_tip_version_id_at_creation: source.head_version_id,
          title: input.title,
          description: input.description,
          requested_reviewer_user_ids: JSON.stringify(reviewers),
          triage_ticket_id: input.triage_ticket_id ?? null,
          author_user_id: caller.userId,
          status: 'open',
          close_reason: null,
          outcome_version_id: null,
          outcome_at_ms: null,
          outcome_by_user_id: null,
          created_at_ms: now,
          updated_at_ms: now,
        });
        await recordUserAction(trx, caller, now, {
          action: 'merge_proposal.create',
          agentId: agent.id,
          resourceId: id,
          details: { source_branch_id: source.id, target_branch_id: target.id, source_version_id: source.head_version_id, title: input.title },
        });
        return { created_merge_proposal_id: id };
      });
    },

    async get(caller: Caller, agentId: string, proposalId: string) {
      const agent = await agentsStore(db).findOrThrow(caller.workspaceId, agentId);
      return detailOf(agent.id, proposalId);
    },

    /** Edit title, description or reviewers, or close: by the author `withdrawn`, by anyone else `rejected`. */
    async update(caller: Caller, agentId: string, proposalId: string, input: UpdateProposalInput) {
      if (input.title != null) checkText(input.title, ['body', 'title'], 500);
      if (input.description != null) checkText(input.description, ['body', 'description'], 20_000);
      const agent = await context.write(async ({ trx }) => {
        const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        if (input.requested_reviewer_user_ids) await assertWorkspaceUsers(trx, caller, input.requested_reviewer_user_ids, ['body', 'requested_reviewer_user_ids']);
        await lockAgent(trx, agent.id);
        const proposal = await findProposal(agent.id, proposalId, trx);
        assertOpen(proposal);
        const now = context.now();
        const changes: Partial<ProposalRow> = { updated_at_ms: now };
        if (input.title != null) changes.title = input.title;
        if (input.description != null) changes.description = input.description;
        if (input.requested_reviewer_user_ids != null) changes.requested_reviewer_user_ids = JSON.stringify(input.requested_reviewer_user_ids);
        if (input.close) {
          Object.assign(changes, {
            status: 'closed',
            close_reason: caller.userId === proposal.author_user_id ? 'withdrawn' : 'rejected',
            outcome_at_ms: now,
            outcome_by_user_id: caller.userId,
          });
        }
        await mergeProposalsStore(trx).update(proposal.id, changes);
        const changed = (['title', 'description', 'requested_reviewer_user_ids'] as const).filter(
          (field) => changes[field] !== undefined && changes[field] !== proposal[field],
        );
        await recordUserAction(trx, caller, now, {
          action: 'merge_proposal.update',
          agentId: agent.id,
          resourceId: proposal.id,
          details: {
            changed,
            ...(changed.includes('title') ? { before: { title: proposal.title }, after: { title: changes.title as string } } : {}),
            ...(input.close ? { closed: true, close_reason: changes.close_reason as string } : {}),
          },
        });
        return agent;
      });
      return detailOf(agent.id, proposalId);
    },

    /** A user's latest review replaces their previous one; it records the source tip it saw. */
    async review(caller: Caller, agentId: string, proposalId: string, state: 'approved' | 'changes_requested', comment: string) {
      checkText(comment, ['body', 'comment'], 20_000);
      const agent = await context.write(async ({ trx }) => {
        const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        await lockAgent(trx, agent.id);
        const proposal = await findProposal(agent.id, proposalId, trx);
        assertOpen(proposal);
        if (state === 'approved' && proposal.author_user_id === caller.userId) {
          throw new ForbiddenError('Nobody approves their own merge proposal; ask another user to review it.');
        }
        const source = await branchesStore(trx).findOrThrow(agent.id, proposal.source_branch_id);
        await recordUserAction(trx, caller, context.now(), {
          action: 'merge_proposal.review',
          agentId: agent.id,
          resourceId: proposal.id,
          details: { state, source_version_id: source.head_version_id },
        });
        await mergeProposalsStore(trx).upsertReview({
          proposal_id: proposal.id,
          user_id: caller.userId,
          state,
          comment,
          reviewer_role: caller.role,
          source_version_id: source.head_version_id,
          submitted_at_ms: context.now(),
        });
        await mergeProposalsStore(trx).update(proposal.id, { updated_at_ms: context.now() });
        return agent;
      });
      return detailOf(agent.id, proposalId);
    },

    /** Comments accumulate, also after the proposal is merged or closed. Markdown is kept as text. */
    async comment(caller: Caller, agentId: string, proposalId: string, body: string) {
      checkText(body, ['body', 'body'], 20_000);
      const agent = await context.write(async ({ trx }) => {
        const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        const proposal = await findProposal(agent.id, proposalId, trx);
        const row: CommentRow = { id: newId('agtmpcmt_'), proposal_id: proposal.id, user_id: caller.userId, body, created_at_ms: context.now() };
        await mergeProposalsStore(trx).insertComment(row);
        await recordUserAction(trx, caller, row.created_at_ms, { action: 'merge_proposal.comment', agentId: agent.id, resourceId: proposal.id, details: { comment_id: row.id } });
        return agent;
      });
      return detailOf(agent.id, proposalId);
    },

    /** The branch merge, gated on review; the proposal records its outcome in the same transaction. */
    async merge(caller: Caller, agentId: string, proposalId: string, options: { archiveSourceBranch: boolean; force: boolean }) {
      const agent = await context.write(async (scope) => {
        const { trx } = scope;
        const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        await lockAgent(trx, agent.id);
        const proposal = await findProposal(agent.id, proposalId, trx);
        assertOpen(proposal);
        for (const id of [proposal.source_branch_id, proposal.target_branch_id].sort()) await lockBranch(trx, id);
        const source = await branchesStore(trx).findOrThrow(agent.id, proposal.source_branch_id);
        const target = await branchesStore(trx).findOrThrow(agent.id, proposal.target_branch_id);
        assertCanWriteBranch(caller, target);
        if (caller.role !== 'admin') {
          const reviews = await mergeProposalsStore(trx).reviews([proposal.id]);
          const reviewers = await workspacesStore(trx).usersIn(caller.workspaceId, reviews.map((review) => review.user_id));
          const problems = approvalProblems(
            proposal,
            reviews,
            new Map(reviewers.map((user) => [user.id, user.role])),
            new Map(reviewers.map((user) => [user.id, user.name])),
            source.head_version_id,
            target,
          );
          if (problems.length > 0) {
            throw new ConflictError('merge_proposal_not_approved', `Merge proposal ${proposal.id} cannot be merged yet: ${problems.join('; ')}.`);
          }
        }
        const result = await mergeBranches(scope, context, caller, agent.id, source.id, target.id, {
          force: options.force,
          archiveSourceBranch: options.archiveSourceBranch,
        });
        const now = context.now();
        await mergeProposalsStore(trx).update(proposal.id, {
          status: 'merged',
          // Archiving the source just closed every open proposal from it, this one included.
          close_reason: null,
          outcome_version_id: result.version_id,
          outcome_at_ms: now,
          outcome_by_user_id: caller.userId,
          updated_at_ms: now,
        });
        // The branch merge recorded its own `merge` event; this one is the proposal's outcome.
        await recordUserAction(trx, caller, now, { action: 'merge_proposal.merge', agentId: agent.id, resourceId: proposal.id, details: { version_id: result.version_id } });
        return agent;
      });
      return detailOf(agent.id, proposalId);
    },
  };
}

