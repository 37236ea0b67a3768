import type { Kysely, Selectable } from 'kysely';

import { queryInSlices } from '../../db/in-lists.js';
import type { Database, VersionTable } from '../../db/schema.js';
import type { SeqRange } from '../../domain/frontier.js';
import { NotFoundError } from '../../errors.js';

export type VersionRow = Selectable<VersionTable>;

/** Where a page of the agent's history ends (its last version's sort key). */
export interface AgentHistoryPosition {
  committedAtMs: number;
  generation: number;
  id: string;
}

export function versionsStore(db: Kysely<Database>) {
  const store = {
    find(agentId: string, versionId: string): Promise<VersionRow | undefined> {
      return db
        .selectFrom('versions')
        .selectAll()
        .where('id', '=', versionId)
        .where('agent_id', '=', agentId)
        .executeTakeFirst();
    },

    /** The agent's version, or a 404. */
    async findOrThrow(agentId: string, versionId: string): Promise<VersionRow> {
      const version = await store.find(agentId, versionId);
      if (!version) throw new NotFoundError('version', versionId);
      return version;
    },

    findMany(agentId: string, ids: string[]): Promise<VersionRow[]> {
      return queryInSlices(ids, (slice) => db.selectFrom('versions').selectAll().where('agent_id', '=', agentId).where('id', 'in', slice).execute());
    },

    /** Newest first, after the sequence number `beforeSeqNo` when given. */
    page(branchId: string, limit: number, beforeSeqNo?: number): Promise<VersionRow[]> {
      let query = db.selectFrom('versions').selectAll().where('branch_id', '=', branchId);
      if (beforeSeqNo !== undefined) query = query.where('seq_no_in_branch', '<', beforeSeqNo);
      return query.orderBy('seq_no_in_branch', 'desc').limit(limit).execute();
    },

    /**
     * The agent's versions on every branch, newest first: by commit time, then generation (a child's is
     * above its parents', so a version never lists below one it descends from), then id; after `before`.
     */
    agentPage(agentId: string, limit: number, before?: AgentHistoryPosition): Promise<VersionRow[]> {
      let query = db.selectFrom('versions').selectAll().where('agent_id', '=', agentId);
      if (before !== undefined) {
        query = query.where((eb) =>
          eb.or([
            eb('committed_at_ms', '<', before.committedAtMs),
            eb.and([
              eb('committed_at_ms', '=', before.committedAtMs),
              eb.or([eb('generation', '<', before.generation), eb.and([eb('generation', '=', before.generation), eb('id', '<', before.id)])]),
            ]),
          ]),
        );
      }
      return query.orderBy('committed_at_ms', 'desc').orderBy('generation', 'desc').orderBy('id', 'desc').limit(limit).execute();
    },

    /** Who authored the versions in these ranges of branches. */
    async authorsIn(agentId: string, ranges: SeqRange[]): Promise<string[]> {
      if (ranges.length === 0) return [];
      const rows = await db
        .selectFrom('versions')
        .select('author_user_id')
        .distinct()
        .where('agent_id', '=', agentId)
        .where((eb) =>
          eb.or(
            ranges.map((range) =>
              eb.and([
                eb('branch_id', '=', range.branchId),
                eb('seq_no_in_branch', '>', range.afterSeqNo),
                eb('seq_no_in_branch', '<=', range.throughSeqNo),
              ]),
            ),
          ),
        )
        .orderBy('author_user_id')
        .execute();
      return rows.map((row) => row.author_user_id);
    },

    /** Is some version a merge of this one? */
    async isMergedSomewhere(versionId: string): Promise<boolean> {
      const row = await db.selectFrom('versions').select('id').where('merged_from_version_id', '=', versionId).executeTakeFirst();
      return row !== undefined;
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

    async deleteForAgent(agentId: string): Promise<void> {
      await db.deleteFrom('versions').where('agent_id', '=', agentId).execute();
    },
  };
  return store;
}
