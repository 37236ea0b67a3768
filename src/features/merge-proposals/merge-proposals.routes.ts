import * as z from 'zod';

import type { AppContext } from '../../context.js';
import { queryInteger } from '../../http/query.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import {
  zAgentMergeProposalResponse,
  zBodyCommentOnAMergeProposalV1ConvaiAgentsAgentIdMergeProposalsMergeProposalIdCommentsPost,
  zBodyCreateAMergeProposalV1ConvaiAgentsAgentIdMergeProposalsPost,
  zBodyMergeAMergeProposalV1ConvaiAgentsAgentIdMergeProposalsMergeProposalIdMergePost,
  zBodyUpdateAMergeProposalV1ConvaiAgentsAgentIdMergeProposalsMergeProposalIdPatch,
  zCreateAgentMergeProposalResponseModel,
  zPaginatedResultAgentMergeProposalResponse,
} from '../../wire/generated/zod.gen.js';
import { accessInfo } from '../workspaces/user-directory.js';
import type { Caller } from '../../domain/caller.js';
import { mergeProposalsService, type ProposalDetail } from './merge-proposals.service.js';
import type { ProposalRow } from './merge-proposals.store.js';

/** Upstream's `AgentMergeProposalResponse` of a proposal, as `caller` sees it. */
function proposalWire({ proposal, reviews, comments, author }: ProposalDetail, caller: Caller) {
  return {
    id: proposal.id,
    agent_id: proposal.agent_id,
    source_branch_id: proposal.source_branch_id,
    target_branch_id: proposal.target_branch_id,
    source_tip_version_id_at_creation: proposal.source_tip_version_id_at_creation,
    title: proposal.title,
    description: proposal.description,
    requested_reviewer_user_ids: JSON.parse(proposal.requested_reviewer_user_ids) as string[],
    reviews: reviews.map(({ review, isStale }) => ({
      user_id: review.user_id,
      state: review.state,
      submitted_at: Math.floor(review.submitted_at_ms / 1000),
      comment: review.comment,
      reviewer_role: review.reviewer_role,
      // Extension: which source tip the review saw, and whether the source has moved since.
      source_version_id: review.source_version_id,
      is_stale: isStale,
    })),
    comments: comments.map((comment) => ({ id: comment.id, user_id: comment.user_id, body: comment.body, created_at: Math.floor(comment.created_at_ms / 1000) })),
    outcome: outcomeOf(proposal),
    created_at: Math.floor(proposal.created_at_ms / 1000),
    updated_at: Math.floor(proposal.updated_at_ms / 1000),
    author_user_id: proposal.author_user_id,
    access_info: accessInfo(author, caller),
    triage_ticket_id: proposal.triage_ticket_id,
  };
}

function outcomeOf(proposal: ProposalRow) {
  const at = proposal.outcome_at_ms === null ? 0 : Math.floor(proposal.outcome_at_ms / 1000);
  if (proposal.status === 'merged') return { status: 'merged' as const, at, version_id: proposal.outcome_version_id, by_user_id: proposal.outcome_by_user_id };
  if (proposal.status === 'closed') return { status: 'closed' as const, at, reason: proposal.close_reason, by_user_id: proposal.outcome_by_user_id };
  return { status: 'open' as const };
}

const TAG = 'merge-proposals';
const agentParams = z.object({ agent_id: z.string() });
const proposalParams = z.object({ agent_id: z.string(), merge_proposal_id: z.string() });

const GATING =
  'Upstream: anyone with edit access may open one; merging needs write access to the target (admin for ' +
  '`admin_perms_required`), and non-admins need an approval from another user. Extensions (ours): nobody approves ' +
  'their own proposal; only reviews of the current source tip by users who may write to the target count: one such ' +
  'approval from a user other than the author is needed, and one such `changes_requested` blocks a non-admin merge ' +
  'until its author approves or the source changes. Other reviews (stale, or by a commenter) are reported and never ' +
  'block. Refusals: 403 for permission, 409 `merge_proposal_not_approved` naming the missing, stale or vetoed approval.';

export function mergeProposalRoutes(context: AppContext): RouteDefinition[] {
  const proposals = mergeProposalsService(context);
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/:agent_id/merge-proposals',
      operationId: 'list_merge_proposals_route',
      summary: 'List Proposals',
      description: 'List the proposals for an agent, newest first, filtered by status, branches and a search over title and description.',
      tag: TAG,
      permission: 'read',
      params: agentParams,
      query: z.object({
        status: z.enum(['open', 'merged', 'closed']).optional(),
        source_branch_id: z.string().optional(),
        target_branch_id: z.string().optional(),
        search: z.string().max(1_000).optional(),
        page_size: queryInteger({ min: 1, max: 100, fallback: 100 }),
        cursor: z.string().optional(),
      }),
      example: {
        params: { agent_id: 'agentId' },
        references: (ids) => ({ query: { source_branch_id: ids.branchId, target_branch_id: ids.mainBranchId } }),
        queryIds: { source_branch_id: { kind: 'branch', role: 'filters' }, target_branch_id: { kind: 'branch', role: 'filters' } },
      },
      responses: { 200: zPaginatedResultAgentMergeProposalResponse },
      handler: async ({ caller, params, query }) => {
        const page = await proposals.list(caller, params.agent_id, {
          status: query.status,
          sourceBranchId: query.source_branch_id,
          targetBranchId: query.target_branch_id,
          search: query.search,
          pageSize: query.page_size,
          cursor: query.cursor,
        });
        return { results: page.proposals.map((detail) => proposalWire(detail, caller)), has_more: page.hasMore, next_cursor: page.nextCursor };
      },
    }),

    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/merge-proposals',
      operationId: 'create_merge_proposal_route',
      summary: 'Create A Merge Proposal',
      description: `Record a request to merge a source branch into a target branch; records the source tip at creation. ${GATING} \`triage_ticket_id\` is stored and returned (triage tickets themselves are out of scope).`,
      tag: TAG,
      permission: 'write',
      params: agentParams,
      body: zBodyCreateAMergeProposalV1ConvaiAgentsAgentIdMergeProposalsPost,
      example: {
        params: { agent_id: 'agentId' },
        body: (ids) => ({
          source_branch_id: ids.branchId,
          target_branch_id: ids.mainBranchId,
          title: 'Sample proposal',
          requested_reviewer_user_ids: [ids.reviewerUserId],
        }),
      },
      responses: { 200: zCreateAgentMergeProposalResponseModel },
      handler: ({ caller, params, body }) => proposals.create(caller, params.agent_id, body),
    }),

    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/:agent_id/merge-proposals/:merge_proposal_id',
      operationId: 'get_merge_proposal_route',
      summary: 'Get A Merge Proposal',
      description:
        'Get a single merge proposal with its reviews, comments and outcome. Extensions: each review has ' +
        '`source_version_id` (the source tip it saw) and `is_stale`; the proposal has `triage_ticket_id`.',
      tag: TAG,
      permission: 'read',
      params: proposalParams,
      example: { params: { agent_id: 'agentId', merge_proposal_id: 'proposalId' } },
      responses: { 200: zAgentMergeProposalResponse },
      handler: async ({ caller, params }) => proposalWire(await proposals.get(caller, params.agent_id, params.merge_proposal_id), caller),
    }),

    defineRoute({
      method: 'PATCH',
      url: '/v1/convai/agents/:agent_id/merge-proposals/:merge_proposal_id',
      operationId: 'update_merge_proposal_route',
      summary: 'Update A Merge Proposal',
      description:
        "Edit an open merge proposal's title, description or requested reviewers, or close it. The author closing it " +
        'is recorded as withdrawn; anyone else as rejected. A merged or closed proposal is 409 `merge_proposal_not_open`.',
      tag: TAG,
      permission: 'write',
      params: proposalParams,
      body: zBodyUpdateAMergeProposalV1ConvaiAgentsAgentIdMergeProposalsMergeProposalIdPatch,
      example: {
        params: { agent_id: 'agentId', merge_proposal_id: 'proposalId' },
        body: (ids) => ({ title: 'Renamed proposal', requested_reviewer_user_ids: [ids.reviewerUserId] }),
      },
      responses: { 200: zAgentMergeProposalResponse },
      handler: async ({ caller, params, body }) => proposalWire(await proposals.update(caller, params.agent_id, params.merge_proposal_id, body), caller),
    }),

    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/merge-proposals/:merge_proposal_id/reviews',
      operationId: 'submit_merge_proposal_review_route',
      summary: 'Review A Merge Proposal',
      description: `Approve a merge proposal or request changes on it. A user's latest review replaces their previous one; the review records the reviewer's role and the source tip it saw. Commenters may review. ${GATING}`,
      tag: TAG,
      permission: 'comment',
      params: proposalParams,
      // Closed, unlike most enums: an unknown verdict must not pass as one of these.
      body: z.object({ state: z.enum(['approved', 'changes_requested']), comment: z.string().default('') }),
      example: {
        params: { agent_id: 'agentId', merge_proposal_id: 'proposalId' },
        // The example proposal is the admin's own: an approval would be refused, a request for changes is not.
        body: () => ({ state: 'changes_requested', comment: 'please' }),
      },
      responses: { 200: zAgentMergeProposalResponse },
      handler: async ({ caller, params, body }) =>
        proposalWire(await proposals.review(caller, params.agent_id, params.merge_proposal_id, body.state, body.comment), caller),
    }),

    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/merge-proposals/:merge_proposal_id/comments',
      operationId: 'add_merge_proposal_comment_route',
      summary: 'Comment On A Merge Proposal',
      description:
        'Leave a comment without a review verdict. Comments accumulate and can still be added once the proposal is ' +
        'merged or closed. Markdown is kept as text.',
      tag: TAG,
      permission: 'comment',
      params: proposalParams,
      body: zBodyCommentOnAMergeProposalV1ConvaiAgentsAgentIdMergeProposalsMergeProposalIdCommentsPost,
      example: {
        params: { agent_id: 'agentId', merge_proposal_id: 'proposalId' },
        body: () => ({ body: 'A *comment*' }),
      },
      responses: { 200: zAgentMergeProposalResponse },
      handler: async ({ caller, params, body }) => proposalWire(await proposals.comment(caller, params.agent_id, params.merge_proposal_id, body.body), caller),
    }),

    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/merge-proposals/:merge_proposal_id/merge',
      operationId: 'accept_merge_proposal_route',
      summary: 'Merge A Merge Proposal',
      description: `Execute the merge (same semantics and body as the branch merge) and return the proposal with its merged outcome. ${GATING} A merged or closed proposal is 409 \`merge_proposal_not_open\`.`,
      tag: TAG,
      permission: 'write',
      params: proposalParams,
      body: zBodyMergeAMergeProposalV1ConvaiAgentsAgentIdMergeProposalsMergeProposalIdMergePost,
      example: {
        params: { agent_id: 'agentId', merge_proposal_id: 'proposalId' },
        body: () => ({ archive_source_branch: false }),
      },
      responses: { 200: zAgentMergeProposalResponse },
      handler: async ({ caller, params, body }) =>
        proposalWire(
          await proposals.merge(caller, params.agent_id, params.merge_proposal_id, { archiveSourceBranch: body.archive_source_branch, force: body.force }),
          caller,
        ),
    }),
  ];
}
