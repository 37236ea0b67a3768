import type { Kysely, Selectable } from 'kysely';

import type { Database, DeploymentTable } from '../../db/schema.js';

export type DeploymentRow = Selectable<DeploymentTable>;

export function deploymentsStore(db: Kysely<Database>) {
  return {
    active(agentId: string): Promise<DeploymentRow | undefined> {
      return db
        .selectFrom('deployments')
        .selectAll()
        .where('agent_id', '=', agentId)
        .where('is_active', '=', 1)
        .executeTakeFirst();
    },

    find(agentId: string, deploymentId: string): Promise<DeploymentRow | undefined> {
      return db
        .selectFrom('deployments')
        .selectAll()
        .where('agent_id', '=', agentId)
        .where('id', '=', deploymentId)
        .executeTakeFirst();
    },

    /** Newest first. */
    page(agentId: string, offset: number, limit: number): Promise<DeploymentRow[]> {
      return db
        .selectFrom('deployments')
        .selectAll()
        .where('agent_id', '=', agentId)
        .orderBy('seq_no', 'desc')
        .offset(offset)
        .limit(limit)
        .execute();
    },

    async count(agentId: string): Promise<number> {
      const row = await db
        .selectFrom('deployments')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('agent_id', '=', agentId)
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },

    async lastSeqNo(agentId: string): Promise<number> {
      const row = await db
        .selectFrom('deployments')
        .select((eb) => eb.fn.max('seq_no').as('seq_no'))
        .where('agent_id', '=', agentId)
        .executeTakeFirst();
      return Number(row?.seq_no ?? 0);
    },

    async deactivate(agentId: string): Promise<void> {
      await db.updateTable('deployments').set({ is_active: 0 }).where('agent_id', '=', agentId).where('is_active', '=', 1).execute();
    },

    async insert(row: DeploymentRow): Promise<void> {
      await db.insertInto('deployments').values(row).execute();
    },

    async deleteForAgent(agentId: string): Promise<void> {
      await db.deleteFrom('deployments').where('agent_id', '=', agentId).execute();
    },
  };
}
