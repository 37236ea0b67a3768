import type SqliteDatabase from 'better-sqlite3';
import { type Kysely, type Selectable, sql } from 'kysely';

import { columnList, type JsonColumnType, jsonTextList, selectJsonRows } from '../../db/json-rows.js';
import type {
  Database,
  ExperimentMetricTable,
  ExposureCellTable,
  ExposureTable,
  OutcomeCellTable,
  OutcomeValueTable,
  OutcomeWebhookTable,
  WebhookDeliveryTable,
} from '../../db/schema.js';

export type ExposureRow = Selectable<ExposureTable>;
export type OutcomeValueRow = Selectable<OutcomeValueTable>;
export type MetricRow = Selectable<ExperimentMetricTable>;
export type WebhookRow = Selectable<OutcomeWebhookTable>;
export type DeliveryRow = Selectable<WebhookDeliveryTable>;
export type OutcomeCellRow = Selectable<OutcomeCellTable>;
export type ExposureCellRow = Selectable<ExposureCellTable>;

/** A change to one outcome cell: added to what it holds (created at zero). */
export type OutcomeCellDelta = OutcomeCellRow;
export type ExposureCellDelta = ExposureCellRow;

/** Rows a statement takes at most (one JSON parameter: `selectJsonRows`). */
const ROWS_PER_STATEMENT = 5_000;

const EXPOSURE_COLUMNS: Record<keyof ExposureTable, JsonColumnType> = {
  agent_id: 'text',
  unit_id: 'text',
  branch_id: 'text',
  version_id: 'text',
  deployment_id: 'text',
  probability: 'real',
  exposed_at_ms: 'integer',
  source: 'text',
};
const VALUE_COLUMNS: Record<keyof OutcomeValueTable, JsonColumnType> = {
  agent_id: 'text',
  unit_id: 'text',
  metric_key: 'text',
  value: 'real',
  occurred_at_ms: 'integer',
  updated_at_ms: 'integer',
  idempotency_key: 'text',
};
const OUTCOME_CELL_COLUMNS: Record<keyof OutcomeCellTable, JsonColumnType> = {
  agent_id: 'text',
  metric_key: 'text',
  deployment_id: 'text',
  branch_id: 'text',
  day: 'integer',
  n: 'integer',
  sum: 'real',
  sum_squares: 'real',
};
const EXPOSURE_CELL_COLUMNS: Record<keyof ExposureCellTable, JsonColumnType> = {
  agent_id: 'text',
  deployment_id: 'text',
  branch_id: 'text',
  day: 'integer',
  exposures: 'integer',
  units_with_outcomes: 'integer',
};

function chunks<T>(rows: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < rows.length; start += size) out.push(rows.slice(start, start + size));
  return out;
}

/** Every query of the experiment tables (issue 20). */
export function experimentsStore(db: Kysely<Database>) {
  return {
    // Metrics -----------------------------------------------------------------------------------

    listMetrics(agentId: string): Promise<MetricRow[]> {
      return db.selectFrom('experiment_metrics').selectAll().where('agent_id', '=', agentId).orderBy('created_at_ms').orderBy('metric_key').execute();
    },

    findMetric(agentId: string, metricKey: string): Promise<MetricRow | undefined> {
      return db.selectFrom('experiment_metrics').selectAll().where('agent_id', '=', agentId).where('metric_key', '=', metricKey).executeTakeFirst();
    },

    async insertMetric(row: MetricRow): Promise<void> {
      await db.insertInto('experiment_metrics').values(row).execute();
    },

    /** The metric, its values and its cells. */
    async deleteMetric(agentId: string, metricKey: string): Promise<void> {
      await db.deleteFrom('experiment_metrics').where('agent_id', '=', agentId).where('metric_key', '=', metricKey).execute();
      await db.deleteFrom('outcome_values').where('agent_id', '=', agentId).where('metric_key', '=', metricKey).execute();
      await db.deleteFrom('outcome_cells').where('agent_id', '=', agentId).where('metric_key', '=', metricKey).execute();
    },

    // Exposures ---------------------------------------------------------------------------------

    /**
     * Inserts the exposures whose unit has none yet; returns those inserted. On SQLite, given the
     * write transaction's connection, one prepared statement a row: a fifth to a third of the CPU of
     * one statement over a JSON array (bench/README.md), and a batch of routed reads' exposures is
     * most of what recording them costs.
     */
    async insertNewExposures(rows: readonly ExposureRow[], sqlite?: SqliteDatabase.Database): Promise<ExposureRow[]> {
      const inserted: ExposureRow[] = [];
      if (sqlite) {
        // Prepared once a batch (microseconds), run once a row with the row's own fields as its
        // named parameters.
        const names = Object.keys(EXPOSURE_COLUMNS);
        const insert = sqlite.prepare(
          `insert into exposures (${names.join(', ')}) values (${names.map((name) => `@${name}`).join(', ')}) on conflict (agent_id, unit_id) do nothing`,
        );
        for (const row of rows) if (insert.run(row).changes > 0) inserted.push(row);
        return inserted;
      }
      for (const chunk of chunks(rows, ROWS_PER_STATEMENT)) {
        const { rows: units } = await sql<{ unit_id: string }>`
          insert into exposures ${columnList(EXPOSURE_COLUMNS)} ${selectJsonRows(db, EXPOSURE_COLUMNS, chunk)}
          on conflict (agent_id, unit_id) do nothing returning unit_id`.execute(db);
        const fresh = new Set(units.map((row) => row.unit_id));
        for (const row of chunk) if (fresh.has(row.unit_id)) inserted.push(row);
      }
      return inserted;
    },

    async exposuresOf(agentId: string, unitIds: readonly string[]): Promise<ExposureRow[]> {
      const rows: ExposureRow[] = [];
      for (const chunk of chunks(unitIds, ROWS_PER_STATEMENT)) {
        rows.push(...(await db.selectFrom('exposures').selectAll().where('agent_id', '=', agentId).where('unit_id', 'in', jsonTextList(db, chunk)).execute()));
      }
      return rows;
    },

    // Values ------------------------------------------------------------------------------------

    /** Every value (any metric) of these units. */
    async valuesOfUnits(agentId: string, unitIds: readonly string[]): Promise<OutcomeValueRow[]> {
      const rows: OutcomeValueRow[] = [];
      for (const chunk of chunks(unitIds, ROWS_PER_STATEMENT)) {
        rows.push(...(await db.selectFrom('outcome_values').selectAll().where('agent_id', '=', agentId).where('unit_id', 'in', jsonTextList(db, chunk)).execute()));
      }
      return rows;
    },

    async upsertValues(rows: readonly OutcomeValueRow[]): Promise<void> {
      for (const chunk of chunks(rows, ROWS_PER_STATEMENT)) {
        await sql`
          insert into outcome_values ${columnList(VALUE_COLUMNS)} ${selectJsonRows(db, VALUE_COLUMNS, chunk)}
          on conflict (agent_id, unit_id, metric_key) do update set value = excluded.value, occurred_at_ms = excluded.occurred_at_ms,
            updated_at_ms = excluded.updated_at_ms, idempotency_key = excluded.idempotency_key`.execute(db);
      }
    },

    // Cells -------------------------------------------------------------------------------------

    /** Adds each delta to its cell (one delta per cell: the caller sums them first). */
    async addToOutcomeCells(deltas: readonly OutcomeCellDelta[]): Promise<void> {
      for (const chunk of chunks(deltas, ROWS_PER_STATEMENT)) {
        await sql`
          insert into outcome_cells ${columnList(OUTCOME_CELL_COLUMNS)} ${selectJsonRows(db, OUTCOME_CELL_COLUMNS, chunk)}
          on conflict (agent_id, metric_key, deployment_id, branch_id, day) do update set n = outcome_cells.n + excluded.n,
            sum = outcome_cells.sum + excluded.sum, sum_squares = outcome_cells.sum_squares + excluded.sum_squares`.execute(db);
      }
    },

    async addToExposureCells(deltas: readonly ExposureCellDelta[]): Promise<void> {
      for (const chunk of chunks(deltas, ROWS_PER_STATEMENT)) {
        await sql`
          insert into exposure_cells ${columnList(EXPOSURE_CELL_COLUMNS)} ${selectJsonRows(db, EXPOSURE_CELL_COLUMNS, chunk)}
          on conflict (agent_id, deployment_id, branch_id, day) do update set exposures = exposure_cells.exposures + excluded.exposures,
            units_with_outcomes = exposure_cells.units_with_outcomes + excluded.units_with_outcomes`.execute(db);
      }
    },

    /**
     * Counts again, for every exposure cell of the agent, the exposed units that have any value
     * (after a metric and its values were deleted).
     */
    async recountUnitsWithOutcomes(agentId: string): Promise<void> {
      await sql`
        update exposure_cells set units_with_outcomes = (
          select count(*) from exposures e
          where e.agent_id = exposure_cells.agent_id and e.deployment_id = exposure_cells.deployment_id
            and e.branch_id = exposure_cells.branch_id and e.exposed_at_ms / 86400000 = exposure_cells.day
            and exists (select 1 from outcome_values v where v.agent_id = e.agent_id and v.unit_id = e.unit_id)
        )
        where agent_id = ${agentId}`.execute(db);
    },

    outcomeCells(agentId: string): Promise<Pick<OutcomeCellRow, 'metric_key' | 'deployment_id' | 'branch_id' | 'n' | 'sum' | 'sum_squares'>[]> {
      return db
        .selectFrom('outcome_cells')
        .select(['metric_key', 'deployment_id', 'branch_id'])
        .select((eb) => [eb.fn.sum<number>('n').as('n'), eb.fn.sum<number>('sum').as('sum'), eb.fn.sum<number>('sum_squares').as('sum_squares')])
        .where('agent_id', '=', agentId)
        .groupBy(['metric_key', 'deployment_id', 'branch_id'])
        .execute();
    },

    exposureCells(agentId: string): Promise<Pick<ExposureCellRow, 'deployment_id' | 'branch_id' | 'exposures' | 'units_with_outcomes'>[]> {
      return db
        .selectFrom('exposure_cells')
        .select(['deployment_id', 'branch_id'])
        .select((eb) => [eb.fn.sum<number>('exposures').as('exposures'), eb.fn.sum<number>('units_with_outcomes').as('units_with_outcomes')])
        .where('agent_id', '=', agentId)
        .groupBy(['deployment_id', 'branch_id'])
        .execute();
    },

    // Webhooks ----------------------------------------------------------------------------------

    listWebhooks(workspaceId: string): Promise<WebhookRow[]> {
      return db.selectFrom('outcome_webhooks').selectAll().where('workspace_id', '=', workspaceId).orderBy('id').execute();
    },

    findWebhook(webhookId: string): Promise<WebhookRow | undefined> {
      return db.selectFrom('outcome_webhooks').selectAll().where('id', '=', webhookId).executeTakeFirst();
    },

    async insertWebhook(row: WebhookRow): Promise<void> {
      await db.insertInto('outcome_webhooks').values(row).execute();
    },

    async deleteWebhook(workspaceId: string, webhookId: string): Promise<boolean> {
      const result = await db.deleteFrom('outcome_webhooks').where('workspace_id', '=', workspaceId).where('id', '=', webhookId).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },

    /**
     * Moves `last_received_at_ms` when it is a second or more behind: concurrent deliveries do not
     * all wait on the webhook's row (PostgreSQL locks only the rows an update changes).
     */
    async touchWebhook(webhookId: string, atMs: number): Promise<void> {
      await db
        .updateTable('outcome_webhooks')
        .set({ last_received_at_ms: atMs })
        .where('id', '=', webhookId)
        .where((eb) => eb.or([eb('last_received_at_ms', 'is', null), eb('last_received_at_ms', '<', atMs - 1_000)]))
        .execute();
    },

    /** Records a delivery unless one of its (agent, conversation, type) is there: whether it was new. */
    async insertDelivery(row: DeliveryRow): Promise<boolean> {
      const inserted = await db
        .insertInto('webhook_deliveries')
        .values(row)
        .onConflict((conflict) => conflict.columns(['agent_id', 'conversation_id', 'type']).doNothing())
        .returning(['agent_id'])
        .execute();
      return inserted.length > 0;
    },

    /** The agent's deliveries of a type, in pages by conversation id. */
    deliveriesAfter(agentId: string, type: string, afterConversationId: string | undefined, limit: number): Promise<DeliveryRow[]> {
      let query = db.selectFrom('webhook_deliveries').selectAll().where('agent_id', '=', agentId).where('type', '=', type);
      if (afterConversationId !== undefined) query = query.where('conversation_id', '>', afterConversationId);
      return query.orderBy('conversation_id').limit(limit).execute();
    },

    // Retention ---------------------------------------------------------------------------------

    /**
     * Drops every day before `cutoffDay`, all agents: exposures of those days with their values and
     * cells, values of units never exposed last changed before it, deliveries received before it.
     * Whole days go, so the cells of the days kept still add up to their rows.
     */
    async dropDaysBefore(cutoffDay: number): Promise<void> {
      const cutoffMs = cutoffDay * 86_400_000;
      await sql`delete from outcome_values where exists (
        select 1 from exposures e where e.agent_id = outcome_values.agent_id and e.unit_id = outcome_values.unit_id and e.exposed_at_ms < ${cutoffMs})`.execute(db);
      await sql`delete from outcome_values where updated_at_ms < ${cutoffMs} and not exists (
        select 1 from exposures e where e.agent_id = outcome_values.agent_id and e.unit_id = outcome_values.unit_id)`.execute(db);
      await db.deleteFrom('exposures').where('exposed_at_ms', '<', cutoffMs).execute();
      await db.deleteFrom('outcome_cells').where('day', '<', cutoffDay).execute();
      await db.deleteFrom('exposure_cells').where('day', '<', cutoffDay).execute();
      await db.deleteFrom('webhook_deliveries').where('received_at_ms', '<', cutoffMs).execute();
    },

    // Agents ------------------------------------------------------------------------------------

    /** Everything the experiment tables hold of an agent (deleting it). */
    async deleteForAgent(agentId: string): Promise<void> {
      for (const table of ['exposures', 'webhook_deliveries', 'outcome_values', 'experiment_metrics', 'outcome_cells', 'exposure_cells'] as const) {
        await db.deleteFrom(table).where('agent_id', '=', agentId).execute();
      }
    },
  };
}
