import type { Kysely, Selectable } from 'kysely';

import type { Database, DraftTable } from '../../db/schema.js';

export type DraftRow = Selectable<DraftTable>;

/** Every query of the `drafts` table: one draft per (branch, user). */
export function draftsStore(db: Kysely<Database>) {
  return {
    /** The user's drafts on the agent's branches. */
    listOfUser(agentId: string, userId: string): Promise<Pick<DraftRow, 'branch_id' | 'created_at_ms' | 'based_on_seq_no'>[]> {
      return db
        .selectFrom('drafts')
        .select(['branch_id', 'created_at_ms', 'based_on_seq_no'])
        .where('agent_id', '=', agentId)
        .where('user_id', '=', userId)
        .execute();
    },

    /** The user's draft on the branch, if any. */
    findOfUser(branchId: string, userId: string): Promise<DraftRow | undefined> {
      return db.selectFrom('drafts').selectAll().where('branch_id', '=', branchId).where('user_id', '=', userId).executeTakeFirst();
    },

    /** Stores the user's draft on the branch, replacing theirs. */
    async save(row: DraftRow): Promise<void> {
      const { branch_id: _branch, user_id: _user, agent_id: _agent, ...draft } = row;
      // One statement, so that two saves racing on PostgreSQL cannot both insert.
      await db
        .insertInto('drafts')
        .values(row)
        .onConflict((conflict) => conflict.columns(['branch_id', 'user_id']).doUpdateSet(draft))
        .execute();
    },

    /** Discards the user's draft on the branch; whether there was one. */
    async discardOfUser(branchId: string, userId: string): Promise<boolean> {
      const result = await db.deleteFrom('drafts').where('branch_id', '=', branchId).where('user_id', '=', userId).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },

    /** Discards every user's draft on the branch. */
    async discardAll(branchId: string): Promise<void> {
      await db.deleteFrom('drafts').where('branch_id', '=', branchId).execute();
    },

    async deleteForAgent(agentId: string): Promise<void> {
      await db.deleteFrom('drafts').where('agent_id', '=', agentId).execute();
    },
  };
}
