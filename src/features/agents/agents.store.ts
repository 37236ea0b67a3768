import { type Kysely, type Selectable, sql } from 'kysely';

import type { AgentTable, Database } from '../../db/schema.js';
import { NotFoundError } from '../../errors.js';
import { containsText } from '../../db/contains.js';
import { compiledOnce } from '../../db/compiled-once.js';

export type AgentRow = Selectable<AgentTable>;

/** An agent row joined with one version's `version_*` columns, split back into the two. */
export function splitAgentVersionRow<T extends AgentRow & { version_id: string; version_branch_id: string; version_document_hash: string }>(row: T) {
  const { version_id, version_branch_id, version_document_hash, ...agent } = row;
  return { agent: agent as AgentRow, version: { id: version_id, branch_id: version_branch_id, document_hash: version_document_hash } };
}

export type AgentSort = 'created_at' | 'name' | 'call_count_7d';

export interface AgentListFilter {
  workspaceId: string;
  archived: boolean;
  search?: string;
  tags?: string[];
  createdByUserId?: string;
  sortBy: AgentSort;
  direction: 'asc' | 'desc';
  after?: { value: string | number; id: string };
  limit: number;
}

const agentIdOf = compiledOnce((db, agentId: string) => db.selectFrom('agents').select('id').where('id', '=', agentId));

export function agentsStore(db: Kysely<Database>) {
  const store = {
    find(workspaceId: string, agentId: string): Promise<AgentRow | undefined> {
      return db
        .selectFrom('agents')
        .selectAll()
        .where('id', '=', agentId)
        .where('workspace_id', '=', workspaceId)
        .executeTakeFirst();
    },

    /** The workspace's agent, or a 404. */
    async findOrThrow(workspaceId: string, agentId: string): Promise<AgentRow> {
      const agent = await store.find(workspaceId, agentId);
      if (!agent) throw new NotFoundError('agent', agentId);
      return agent;
    },

    /** An agent with the head version of a branch (main unless given), in one query. */
    async headView(workspaceId: string, agentId: string, branchId: string | undefined) {
      const row = await db
        .selectFrom('agents')
        .innerJoin('branches', (join) =>
          join
            .onRef('branches.agent_id', '=', 'agents.id')
            .on((eb) => (branchId === undefined ? eb('branches.id', '=', eb.ref('agents.main_branch_id')) : eb('branches.id', '=', branchId))),
        )
        .innerJoin('versions', 'versions.id', 'branches.head_version_id')
        .selectAll('agents')
        .select(['versions.id as version_id', 'versions.branch_id as version_branch_id', 'versions.document_hash as version_document_hash'])
        .where('agents.id', '=', agentId)
        .where('agents.workspace_id', '=', workspaceId)
        .executeTakeFirst();
      return row ? splitAgentVersionRow(row) : undefined;
    },

    /** Any workspace's agent: only for caches that check the workspace when they serve. */
    findById(agentId: string): Promise<AgentRow | undefined> {
      return db.selectFrom('agents').selectAll().where('id', '=', agentId).executeTakeFirst();
    },

    /** Whether the agent exists (in any workspace): its id only, none of its row (the exposure flush asks, a batch). */
    async exists(agentId: string): Promise<boolean> {
      return (await agentIdOf(db, agentId)).rows.length > 0;
    },

    findMany(workspaceId: string, agentIds: string[]): Promise<AgentRow[]> {
      if (agentIds.length === 0) return Promise.resolve([]);
      return db
        .selectFrom('agents')
        .selectAll()
        .where('workspace_id', '=', workspaceId)
        .where('id', 'in', agentIds)
        .execute();
    },

    async insert(row: Omit<AgentRow, 'revision'>, tags: string[]): Promise<void> {
      await db.insertInto('agents').values(row).execute();
      await replaceTags(db, row.id, tags);
    },

    /**
     * Changes the agent row and moves its `revision` in the same statement (every cache of what is
     * rendered from the row keys on it); returns the row as it now is.
     */
    async update(agentId: string, changes: Partial<Omit<AgentRow, 'id' | 'revision'>>, tags?: string[]): Promise<AgentRow> {
      const row = await db
        .updateTable('agents')
        .set({ ...changes, revision: sql<number>`revision + 1` })
        .where('id', '=', agentId)
        .returningAll()
        .executeTakeFirstOrThrow();
      if (tags) await replaceTags(db, agentId, tags);
      return row;
    },

    /** Removes the agent row and its tags; what else it owns goes first (`deleteAgentAndOwned`). */
    async delete(agentId: string): Promise<void> {
      await db.deleteFrom('agent_tags').where('agent_id', '=', agentId).execute();
      await db.deleteFrom('agents').where('id', '=', agentId).execute();
    },

    list(filter: AgentListFilter): Promise<AgentRow[]> {
      const column = filter.sortBy === 'name' ? 'name' : 'created_at_ms';
      let query = db
        .selectFrom('agents')
        .selectAll()
        .where('workspace_id', '=', filter.workspaceId)
        .where('archived', '=', filter.archived ? 1 : 0);
      if (filter.search) {
        query = query.where(containsText('name', filter.search));
      }
      if (filter.tags && filter.tags.length > 0) {
        const tags = filter.tags;
        query = query.where((eb) =>
          eb.exists(
            eb
              .selectFrom('agent_tags')
              .select('agent_tags.agent_id')
              .whereRef('agent_tags.agent_id', '=', 'agents.id')
              .where('agent_tags.tag', 'in', tags),
          ),
        );
      }
      if (filter.createdByUserId) query = query.where('created_by_user_id', '=', filter.createdByUserId);
      const after = filter.after;
      if (after) {
        const op = filter.direction === 'desc' ? '<' : '>';
        query = query.where((eb) =>
          eb.or([
            eb(column, op, after.value as never),
            eb.and([eb(column, '=', after.value as never), eb('id', op, after.id)]),
          ]),
        );
      }
      return query.orderBy(column, filter.direction).orderBy('id', filter.direction).limit(filter.limit).execute();
    },
  };
  return store;
}

async function replaceTags(db: Kysely<Database>, agentId: string, tags: string[]): Promise<void> {
  await db.deleteFrom('agent_tags').where('agent_id', '=', agentId).execute();
  const unique = [...new Set(tags)];
  if (unique.length > 0) await db.insertInto('agent_tags').values(unique.map((tag) => ({ agent_id: agentId, tag }))).execute();
}
