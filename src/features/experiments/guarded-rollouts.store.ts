import type { Kysely, Selectable } from 'kysely';

import type { Database, GuardedRolloutEventTable, GuardedRolloutTable } from '../../db/schema.js';
import { ConflictError } from '../../errors.js';

export type GuardedRolloutRow = Selectable<GuardedRolloutTable>;
export type GuardedRolloutEventRow = Selectable<GuardedRolloutEventTable>;

/** Running or paused: the rollout owns the agent's split (manual deployments are refused). */
const OPEN = ['running', 'paused'] as const;

export function guardedRolloutsStore(db: Kysely<Database>) {
  return {
    find(agentId: string, id: string): Promise<GuardedRolloutRow | undefined> {
      return db.selectFrom('guarded_rollouts').selectAll().where('agent_id', '=', agentId).where('id', '=', id).executeTakeFirst();
    },

    /** The agent's running or paused rollout (at most one: a partial unique index). */
    open(agentId: string): Promise<GuardedRolloutRow | undefined> {
      return db.selectFrom('guarded_rollouts').selectAll().where('agent_id', '=', agentId).where('status', 'in', OPEN).executeTakeFirst();
    },

    /** Newest first. */
    list(agentId: string): Promise<GuardedRolloutRow[]> {
      return db.selectFrom('guarded_rollouts').selectAll().where('agent_id', '=', agentId).orderBy('started_at_ms', 'desc').orderBy('id', 'desc').execute();
    },

    /** Every running rollout, of every workspace: what the evaluator works through. */
    running(): Promise<GuardedRolloutRow[]> {
      return db.selectFrom('guarded_rollouts').selectAll().where('status', '=', 'running').orderBy('id').execute();
    },

    async anyRunning(): Promise<boolean> {
      return (await db.selectFrom('guarded_rollouts').select('id').where('status', '=', 'running').limit(1).executeTakeFirst()) !== undefined;
    },

    async insert(row: GuardedRolloutRow): Promise<void> {
      await db.insertInto('guarded_rollouts').values(row).execute();
    },

    async update(id: string, changes: Partial<Omit<GuardedRolloutRow, 'id' | 'agent_id'>>): Promise<void> {
      await db.updateTable('guarded_rollouts').set(changes).where('id', '=', id).execute();
    },

    /** Events of these rollouts, in order. */
    events(rolloutIds: readonly string[]): Promise<GuardedRolloutEventRow[]> {
      if (rolloutIds.length === 0) return Promise.resolve([]);
      return db.selectFrom('guarded_rollout_events').selectAll().where('rollout_id', 'in', rolloutIds).orderBy('rollout_id').orderBy('seq_no').execute();
    },

    async insertEvent(row: GuardedRolloutEventRow): Promise<void> {
      await db.insertInto('guarded_rollout_events').values(row).execute();
    },

    async deleteForAgent(agentId: string): Promise<void> {
      await db.deleteFrom('guarded_rollout_events').where('agent_id', '=', agentId).execute();
      await db.deleteFrom('guarded_rollouts').where('agent_id', '=', agentId).execute();
    },
  };
}

/**
 * Refuses a change of the agent's split made outside its guarded rollout (a manual deployment or
 * rollback, a merge moving traffic) while one is running or paused: the rollout owns the split,
 * and its rollback restores the split from before it. Call it under the agent lock.
 */
export async function assertNoGuardedRollout(trx: Kysely<Database>, agentId: string): Promise<void> {
  const open = await guardedRolloutsStore(trx).open(agentId);
  if (open) {
    throw new ConflictError(
      'guarded_rollout_in_progress',
      `Guarded rollout ${open.id} is ${open.status} on this agent and owns its traffic split: roll it back ` +
        `(POST …/guarded-rollouts/${open.id}/rollback) or let it finish before changing the split.`,
    );
  }
}
