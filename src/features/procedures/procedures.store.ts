import type { Kysely, Selectable } from 'kysely';

import { queryInSlices } from '../../db/in-lists.js';
import type { Database, ProcedureDraftTable, ProcedureTable, ProcedureVersionTable } from '../../db/schema.js';

export type ProcedureRow = Selectable<ProcedureTable>;
export type ProcedureVersionRow = Selectable<ProcedureVersionTable>;
export type ProcedureDraftRow = Selectable<ProcedureDraftTable>;

/** Every query of `procedures`, `procedure_versions` and `procedure_drafts`. */
export function proceduresStore(db: Kysely<Database>) {
  return {
    find(agentId: string, procedureId: string): Promise<ProcedureRow | undefined> {
      return db.selectFrom('procedures').selectAll().where('id', '=', procedureId).where('agent_id', '=', agentId).executeTakeFirst();
    },

    findMany(agentId: string, procedureIds: string[]): Promise<ProcedureRow[]> {
      return queryInSlices(procedureIds, (slice) => db.selectFrom('procedures').selectAll().where('agent_id', '=', agentId).where('id', 'in', slice).execute());
    },

    async insert(row: ProcedureRow): Promise<void> {
      await db.insertInto('procedures').values(row).execute();
    },

    /** Deletes a procedure that no version has: it was never published. */
    async deleteUnpublished(procedureId: string): Promise<void> {
      await db.deleteFrom('procedure_drafts').where('procedure_id', '=', procedureId).execute();
      await db.deleteFrom('procedures').where('id', '=', procedureId).execute();
    },

    findVersion(agentId: string, versionId: string): Promise<ProcedureVersionRow | undefined> {
      return db.selectFrom('procedure_versions').selectAll().where('id', '=', versionId).where('agent_id', '=', agentId).executeTakeFirst();
    },

    findVersions(agentId: string, versionIds: string[]): Promise<ProcedureVersionRow[]> {
      return queryInSlices(versionIds, (slice) =>
        db.selectFrom('procedure_versions').selectAll().where('agent_id', '=', agentId).where('id', 'in', slice).execute(),
      );
    },

    async hasVersions(procedureId: string): Promise<boolean> {
      const row = await db.selectFrom('procedure_versions').select('id').where('procedure_id', '=', procedureId).limit(1).executeTakeFirst();
      return row !== undefined;
    },

    async insertVersions(rows: ProcedureVersionRow[]): Promise<void> {
      if (rows.length === 0) return;
      await db.insertInto('procedure_versions').values(rows).execute();
    },

    /** The user's drafts (edits and staged removals) on the branch. */
    draftsOfUser(branchId: string, userId: string): Promise<ProcedureDraftRow[]> {
      return db.selectFrom('procedure_drafts').selectAll().where('branch_id', '=', branchId).where('user_id', '=', userId).orderBy('procedure_id').execute();
    },

    findDraft(branchId: string, userId: string, procedureId: string): Promise<ProcedureDraftRow | undefined> {
      return db
        .selectFrom('procedure_drafts')
        .selectAll()
        .where('branch_id', '=', branchId)
        .where('user_id', '=', userId)
        .where('procedure_id', '=', procedureId)
        .executeTakeFirst();
    },

    /** Stores the user's draft of the procedure on the branch, replacing theirs (one statement, so two racing saves cannot both insert). */
    async saveDraft(row: ProcedureDraftRow): Promise<void> {
      await db
        .insertInto('procedure_drafts')
        .values(row)
        .onConflict((conflict) => conflict.columns(['branch_id', 'user_id', 'procedure_id']).doUpdateSet({ body_hash: row.body_hash, updated_at_ms: row.updated_at_ms }))
        .execute();
    },

    /** Whether the user had a draft of the procedure on the branch. */
    async discardDraft(branchId: string, userId: string, procedureId: string): Promise<boolean> {
      const result = await db
        .deleteFrom('procedure_drafts')
        .where('branch_id', '=', branchId)
        .where('user_id', '=', userId)
        .where('procedure_id', '=', procedureId)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },

    async hasDrafts(procedureId: string): Promise<boolean> {
      const row = await db.selectFrom('procedure_drafts').select('procedure_id').where('procedure_id', '=', procedureId).limit(1).executeTakeFirst();
      return row !== undefined;
    },

    /** Discards every draft of the user on the branch (a publish). */
    async discardDraftsOfUser(branchId: string, userId: string): Promise<void> {
      await db.deleteFrom('procedure_drafts').where('branch_id', '=', branchId).where('user_id', '=', userId).execute();
    },

    async deleteForAgent(agentId: string): Promise<void> {
      await db.deleteFrom('procedure_drafts').where('agent_id', '=', agentId).execute();
      await db.deleteFrom('procedure_versions').where('agent_id', '=', agentId).execute();
      await db.deleteFrom('procedures').where('agent_id', '=', agentId).execute();
    },
  };
}
