import type { Kysely, Selectable } from 'kysely';

import type { Database, VersionTable } from '../../db/schema.js';

export type VersionRow = Selectable<VersionTable>;

export function versionsStore(db: Kysely<Database>) {
  return {
    find(agentId: string, versionId: string): Promise<VersionRow | undefined> {
      return db
        .selectFrom('versions')
        .selectAll()
        .where('id', '=', versionId)
        .where('agent_id', '=', agentId)
        .executeTakeFirst();
    },

    /** Newest first. */
    recent(branchId: string, limit: number): Promise<VersionRow[]> {
      return db
        .selectFrom('versions')
        .selectAll()
        .where('branch_id', '=', branchId)
        .orderBy('seq_no_in_branch', 'desc')
        .limit(limit)
        .execute();
    },

    async insert(row: VersionRow): Promise<void> {
      await db.insertInto('versions').values(row).execute();
    },
  };
}
