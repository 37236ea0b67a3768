import type { Kysely } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

// Experiments (issue 20): who was routed where, what their conversations achieved, and the cells
// the results are computed from. Every table is keyed by agent; a workspace reaches them through it.
// Values and sums are `double precision` (REAL on SQLite): 64-bit on both dialects.

export async function up(db: Kysely<any>): Promise<void> {
  // The first time a unit (conversation id or routing key) was routed or reported, per agent.
  await db.schema
    .createTable('exposures')
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('unit_id', 'text', (c) => c.notNull())
    .addColumn('branch_id', 'text', (c) => c.notNull())
    .addColumn('version_id', 'text', (c) => c.notNull())
    .addColumn('deployment_id', 'text', (c) => c.notNull())
    // The branch's share of traffic under that deployment then; null: none (kept, not weighted).
    .addColumn('probability', 'double precision')
    .addColumn('exposed_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('exposures_pk', ['agent_id', 'unit_id'])
    .execute();
  await db.schema.createIndex('exposures_agent_time').on('exposures').columns(['agent_id', 'exposed_at_ms']).execute();

  // Endpoints that accept upstream's signed post-call webhook, per workspace.
  await db.schema
    .createTable('outcome_webhooks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('created_by_user_id', 'text', (c) => c.notNull())
    .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('last_received_at_ms', 'bigint')
    .execute();
  await db.schema.createIndex('outcome_webhooks_workspace').on('outcome_webhooks').columns(['workspace_id']).execute();

  // One row per delivered webhook (idempotency), with what was extracted from it (compact JSON),
  // so that a metric defined later is filled from deliveries already received.
  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('conversation_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('received_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('extracted', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('webhook_deliveries_pk', ['agent_id', 'conversation_id', 'type'])
    .execute();
  await db.schema.createIndex('webhook_deliveries_time').on('webhook_deliveries').columns(['agent_id', 'received_at_ms']).execute();

  // One value per unit and metric: the latest by occurred_at.
  await db.schema
    .createTable('outcome_values')
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('unit_id', 'text', (c) => c.notNull())
    .addColumn('metric_key', 'text', (c) => c.notNull())
    .addColumn('value', 'double precision', (c) => c.notNull())
    .addColumn('occurred_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('updated_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('idempotency_key', 'text')
    .addPrimaryKeyConstraint('outcome_values_pk', ['agent_id', 'unit_id', 'metric_key'])
    .execute();
  await db.schema.createIndex('outcome_values_metric').on('outcome_values').columns(['agent_id', 'metric_key']).execute();

  // Metrics defined per agent (the built-in ones are not stored).
  await db.schema
    .createTable('experiment_metrics')
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('metric_key', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('higher_is_better', 'integer', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('experiment_metrics_pk', ['agent_id', 'metric_key'])
    .execute();

  // Aggregates of values whose unit has an exposure, by the exposure's deployment, branch and UTC day.
  await db.schema
    .createTable('outcome_cells')
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('metric_key', 'text', (c) => c.notNull())
    .addColumn('deployment_id', 'text', (c) => c.notNull())
    .addColumn('branch_id', 'text', (c) => c.notNull())
    .addColumn('day', 'integer', (c) => c.notNull())
    .addColumn('n', 'bigint', (c) => c.notNull())
    .addColumn('sum', 'double precision', (c) => c.notNull())
    .addColumn('sum_squares', 'double precision', (c) => c.notNull())
    .addPrimaryKeyConstraint('outcome_cells_pk', ['agent_id', 'metric_key', 'deployment_id', 'branch_id', 'day'])
    .execute();

  // Exposures, and the exposed units with any value, by deployment, branch and UTC day.
  await db.schema
    .createTable('exposure_cells')
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('deployment_id', 'text', (c) => c.notNull())
    .addColumn('branch_id', 'text', (c) => c.notNull())
    .addColumn('day', 'integer', (c) => c.notNull())
    .addColumn('exposures', 'bigint', (c) => c.notNull())
    .addColumn('units_with_outcomes', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('exposure_cells_pk', ['agent_id', 'deployment_id', 'branch_id', 'day'])
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
