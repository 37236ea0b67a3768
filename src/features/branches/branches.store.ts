import type { Kysely, Selectable } from 'kysely';

import { queryInSlices } from '../../db/in-lists.js';
import { takesRowLocks } from '../../db/locks.js';
import type { BranchTable, Database } from '../../db/schema.js';
import { NotFoundError } from '../../errors.js';
import { branchNameKey } from './branch-name.js';

export type BranchRow = Selectable<BranchTable>;
/** A branch as callers write it: its `name_key` follows from its name. */
export type NewBranchRow = Omit<BranchRow, 'name_key'>;

/**
 * A branch as a user makes it: unprotected for writers, no auto-rebase, not archived, created
 * and last committed now by `userId`.
 */
export function newBranch(
  fields: Pick<NewBranchRow, 'id' | 'agent_id' | 'name' | 'description' | 'parent_branch_id'>,
  userId: string,
  nowMs: number,
): Omit<NewBranchRow, 'head_version_id' | 'head_seq_no'> {
  return {
    ...fields,
    protection_status: 'writer_perms_required',
    auto_rebase: 0,
    is_archived: 0,
    merged_into_branch_id: null,
    created_by_user_id: userId,
    created_at_ms: nowMs,
    last_committed_at_ms: nowMs,
  };
}

export function branchesStore(db: Kysely<Database>) {
  const store = {
    find(agentId: string, branchId: string): Promise<BranchRow | undefined> {
      return db
        .selectFrom('branches')
        .selectAll()
        .where('id', '=', branchId)
        .where('agent_id', '=', agentId)
        .executeTakeFirst();
    },

    /** The agent's branch, or a 404. */
    async findOrThrow(agentId: string, branchId: string): Promise<BranchRow> {
      const branch = await store.find(agentId, branchId);
      if (!branch) throw new NotFoundError('branch', branchId);
      return branch;
    },

    /** The branch, write-locked for the rest of the transaction (see `lockBranch`). */
    findLocked(agentId: string, branchId: string): Promise<BranchRow | undefined> {
      const query = db.selectFrom('branches').selectAll().where('id', '=', branchId).where('agent_id', '=', agentId);
      return (takesRowLocks(db) ? query.forUpdate() : query).executeTakeFirst();
    },

    /** The branch whose name looks like `name` (the same `branchNameKey`), if any. */
    findByNameKey(agentId: string, name: string): Promise<BranchRow | undefined> {
      return db
        .selectFrom('branches')
        .selectAll()
        .where('agent_id', '=', agentId)
        .where('name_key', '=', branchNameKey(name))
        .executeTakeFirst();
    },

    list(agentId: string, options: { includeArchived: boolean; limit?: number }): Promise<BranchRow[]> {
      let query = db.selectFrom('branches').selectAll().where('agent_id', '=', agentId);
      if (!options.includeArchived) query = query.where('is_archived', '=', 0);
      query = query.orderBy('created_at_ms').orderBy('id');
      if (options.limit !== undefined) query = query.limit(options.limit);
      return query.execute();
    },

    async count(agentId: string, includeArchived: boolean): Promise<number> {
      let query = db
        .selectFrom('branches')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('agent_id', '=', agentId);
      if (!includeArchived) query = query.where('is_archived', '=', 0);
      const row = await query.executeTakeFirstOrThrow();
      return Number(row.count);
    },

    /** The head version of each of these branches (of any agent: callers pass ids they hold). */
    async headVersionIds(branchIds: readonly string[]): Promise<Map<string, string>> {
      const rows = await queryInSlices([...branchIds], (slice) =>
        db.selectFrom('branches').select(['id', 'head_version_id']).where('id', 'in', slice).execute(),
      );
      return new Map(rows.map((row) => [row.id, row.head_version_id]));
    },

    /** Every branch's head version and its document, for routing. */
    heads(agentId: string) {
      return db
        .selectFrom('branches')
        .innerJoin('versions', 'versions.id', 'branches.head_version_id')
        .select(['branches.id as branch_id', 'versions.id as version_id', 'versions.document_hash'])
        .where('branches.agent_id', '=', agentId)
        .execute();
    },

    async insert(row: NewBranchRow): Promise<void> {
      await db.insertInto('branches').values({ ...row, name_key: branchNameKey(row.name) }).execute();
    },

    async update(branchId: string, changes: Partial<Omit<NewBranchRow, 'id' | 'agent_id'>>): Promise<void> {
      if (Object.keys(changes).length === 0) return;
      const keyed = changes.name === undefined ? changes : { ...changes, name_key: branchNameKey(changes.name) };
      await db.updateTable('branches').set(keyed).where('id', '=', branchId).execute();
    },

    async deleteForAgent(agentId: string): Promise<void> {
      await db.deleteFrom('branches').where('agent_id', '=', agentId).execute();
    },
  };
  return store;
}
