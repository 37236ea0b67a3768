import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

export async function up(db: Kysely<any>): Promise<void> {
  // Background work that must run once however many processes serve (src/db/leases.ts).
  await db.schema
    .createTable('leases')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at_ms', 'bigint', (c) => c.notNull())
    .execute();

  // A guarded rollout of one branch of an agent (src/features/experiments/guarded-rollouts*).
  await db.schema
    .createTable('guarded_rollouts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('branch_id', 'text', (c) => c.notNull())
    .addColumn('baseline_branch_id', 'text', (c) => c.notNull())
    // JSON arrays of the request's steps and guard metrics.
    .addColumn('steps', 'text', (c) => c.notNull())
    .addColumn('guard_metrics', 'text', (c) => c.notNull())
    .addColumn('alpha', 'real', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('current_step', 'integer', (c) => c.notNull())
    // 1 once the current step was extended (an `extended` event is written once per step).
    .addColumn('step_extended', 'integer', (c) => c.notNull())
    // JSON object {branch_id: percentage}: the split a rollback restores, and its deployment.
    .addColumn('before_split', 'text', (c) => c.notNull())
    .addColumn('before_deployment_id', 'text', (c) => c.notNull())
    .addColumn('created_by_user_id', 'text', (c) => c.notNull())
    .addColumn('started_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('step_started_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('ended_at_ms', 'bigint')
    // How many events it has: the next event's seq_no.
    .addColumn('event_count', 'integer', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('guarded_rollouts_agent').on('guarded_rollouts').columns(['agent_id', 'started_at_ms']).execute();
  // At most one open (running or paused) rollout per agent, enforced by the database itself.
  await sql`create unique index guarded_rollouts_one_open on guarded_rollouts (agent_id) where status in ('running', 'paused')`.execute(db);

  await db.schema
    .createTable('guarded_rollout_events')
    .addColumn('rollout_id', 'text', (c) => c.notNull())
    .addColumn('seq_no', 'integer', (c) => c.notNull())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('at_ms', 'bigint', (c) => c.notNull())
    .addColumn('step', 'integer', (c) => c.notNull())
    .addColumn('deployment_id', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    // JSON: what the evaluator decided on (null for a user's action).
    .addColumn('numbers', 'text')
    .addColumn('actor_kind', 'text', (c) => c.notNull())
    .addColumn('actor_user_id', 'text')
    .addPrimaryKeyConstraint('guarded_rollout_events_pk', ['rollout_id', 'seq_no'])
    .execute();
  await db.schema.createIndex('guarded_rollout_events_agent').on('guarded_rollout_events').columns(['agent_id']).execute();

  // Why a deployment was made, when a guarded rollout made it (history items show both).
  await db.schema.alterTable('deployments').addColumn('guarded_rollout_id', 'text').execute();
  await db.schema.alterTable('deployments').addColumn('reason', 'text').execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
