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
import { mergeProposalsService } from './merge-proposals.service.js';

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
      handler: ({ caller, params, query }) =>
        proposals.list(caller, params.agent_id, {
          status: query.status,
          sourceBranchId: query.source_branch_id,
          targetBranchId: query.target_branch_id,
          search: query.search,
          pageSize: query.page_size,
          cursor: query.cursor,
        }),
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
      handler: ({ caller, params }) => proposals.get(caller, params.agent_id, params.merge_proposal_id),
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
      handler: ({ caller, params, body }) => proposals.update(caller, params.agent_id, params.merge_proposal_id, body),
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
      handler: ({ caller, params, body }) => proposals.review(caller, params.agent_id, params.merge_proposal_id, body.state, body.comment),
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
      handler: ({ caller, params, body }) => proposals.comment(caller, params.agent_id, params.merge_proposal_id, body.body),
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
      handler: ({ caller, params, body }) =>
        proposals.merge(caller, params.agent_id, params.merge_proposal_id, { archiveSourceBranch: body.archive_source_branch, force: body.force }),
    }),
  ];
}
