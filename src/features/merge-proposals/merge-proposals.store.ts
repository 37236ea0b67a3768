import type { Kysely, Selectable } from 'kysely';

import type { Database, MergeProposalCommentTable, MergeProposalReviewTable, MergeProposalTable } from '../../db/schema.js';
import { containsText } from '../../db/contains.js';

export type ProposalRow = Selectable<MergeProposalTable>;
export type ReviewRow = Selectable<MergeProposalReviewTable>;
export type CommentRow = Selectable<MergeProposalCommentTable>;

export interface ProposalFilter {
  agentId: string;
  status?: ProposalRow['status'];
  sourceBranchId?: string;
  targetBranchId?: string;
  search?: string;
  after?: { createdAtMs: number; id: string };
  limit: number;
}

export function mergeProposalsStore(db: Kysely<Database>) {
  return {
    find(agentId: string, proposalId: string): Promise<ProposalRow | undefined> {
      return db.selectFrom('merge_proposals').selectAll().where('agent_id', '=', agentId).where('id', '=', proposalId).executeTakeFirst();
    },

    /** Newest first. */
    list(filter: ProposalFilter): Promise<ProposalRow[]> {
      let query = db.selectFrom('merge_proposals').selectAll().where('agent_id', '=', filter.agentId);
      if (filter.status) query = query.where('status', '=', filter.status);
      if (filter.sourceBranchId) query = query.where('source_branch_id', '=', filter.sourceBranchId);
      if (filter.targetBranchId) query = query.where('target_branch_id', '=', filter.targetBranchId);
      if (filter.search) {
        const search = filter.search;
        query = query.where((eb) => eb.or([containsText('title', search), containsText('description', search)]));
      }
      const after = filter.after;
      if (after) {
        query = query.where((eb) =>
          eb.or([eb('created_at_ms', '<', after.createdAtMs), eb.and([eb('created_at_ms', '=', after.createdAtMs), eb('id', '<', after.id)])]),
        );
      }
      return query.orderBy('created_at_ms', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
    },

    async insert(row: ProposalRow): Promise<void> {
      await db.insertInto('merge_proposals').values(row).execute();
    },

    async update(proposalId: string, changes: Partial<Omit<ProposalRow, 'id' | 'agent_id'>>): Promise<void> {
      await db.updateTable('merge_proposals').set(changes).where('id', '=', proposalId).execute();
    },

    reviews(proposalIds: string[]): Promise<ReviewRow[]> {
      if (proposalIds.length === 0) return Promise.resolve([]);
      return db.selectFrom('merge_proposal_reviews').selectAll().where('proposal_id', 'in', proposalIds).orderBy('submitted_at_ms').execute();
    },

    /** A user's latest review replaces their previous one. */
    async upsertReview(row: ReviewRow): Promise<void> {
      await db.deleteFrom('merge_proposal_reviews').where('proposal_id', '=', row.proposal_id).where('user_id', '=', row.user_id).execute();
      await db.insertInto('merge_proposal_reviews').values(row).execute();
    },

    comments(proposalIds: string[]): Promise<CommentRow[]> {
      if (proposalIds.length === 0) return Promise.resolve([]);
      return db
        .selectFrom('merge_proposal_comments')
        .selectAll()
        .where('proposal_id', 'in', proposalIds)
        .orderBy('created_at_ms')
        .orderBy('id')
        .execute();
    },

    async insertComment(row: CommentRow): Promise<void> {
      await db.insertInto('merge_proposal_comments').values(row).execute();
    },

    async deleteForAgent(agentId: string): Promise<void> {
      const ids = db.selectFrom('merge_proposals').select('id').where('agent_id', '=', agentId);
      await db.deleteFrom('merge_proposal_reviews').where('proposal_id', 'in', ids).execute();
      await db.deleteFrom('merge_proposal_comments').where('proposal_id', 'in', ids).execute();
      await db.deleteFrom('merge_proposals').where('agent_id', '=', agentId).execute();
    },
  };
}

/** Archiving a branch closes the open proposals from or into it (reason `branch_archived`). */
export async function closeProposalsOfArchivedBranch(db: Kysely<Database>, branchId: string, byUserId: string, nowMs: number): Promise<void> {
  await db
    .updateTable('merge_proposals')
    .set({ status: 'closed', close_reason: 'branch_archived', outcome_at_ms: nowMs, outcome_by_user_id: byUserId, updated_at_ms: nowMs })
    .where('status', '=', 'open')
    .where((eb) => eb.or([eb('source_branch_id', '=', branchId), eb('target_branch_id', '=', branchId)]))
    .execute();
}
