import { type Kysely, type Selectable, sql } from 'kysely';

import { compiledOnce } from '../../db/compiled-once.js';
import { columnList, type JsonColumnType, jsonRows, jsonTextList, selectJsonRows, selectJsonText } from '../../db/json-rows.js';
import type {
  Database,
  ExperimentMetricTable,
  ExposureArmTable,
  ExposureCellTable,
  ExposureLogTable,
  ExposureSegmentTable,
  OutcomeCellTable,
  OutcomeValueTable,
  OutcomeWebhookTable,
  WebhookDeliveryTable,
} from '../../db/schema.js';

/** A unit's exposure as the routed read or a runtime reports it (stored in segments: exposure-log.ts). */
export interface ExposureRow {
  agent_id: string;
  /** A conversation id or a routing key: the two share one namespace. */
  unit_id: string;
  branch_id: string;
  version_id: string;
  deployment_id: string;
  /** The branch's share of traffic (0..1] under the deployment when exposed; null when it had none. */
  probability: number | null;
  exposed_at_ms: number;
  source: 'routed' | 'reported';
}
export type SegmentRow = Selectable<ExposureSegmentTable>;
export type ArmRow = Selectable<ExposureArmTable>;
export type LogRow = Selectable<ExposureLogTable>;
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

// The exposure flush's statements, compiled once (db/compiled-once.ts): each runs once a batch.
const findLog = compiledOnce((db, agentId: string) => db.selectFrom('exposure_logs').selectAll().where('agent_id', '=', agentId));
const saveLog = compiledOnce((db, agentId: string, lastSeq: number, lastArm: number, unexposedValueUnits: number) =>
  db
    .insertInto('exposure_logs')
    .values({ agent_id: agentId, last_seq: lastSeq, last_arm: lastArm, unexposed_value_units: unexposedValueUnits })
    .onConflict((conflict) => conflict.column('agent_id').doUpdateSet({ last_seq: lastSeq, last_arm: lastArm, unexposed_value_units: unexposedValueUnits })),
);
const insertSegment = compiledOnce((db, agentId: string, seq: number, day: number, units: number, body: string) =>
  db.insertInto('exposure_segments').values({ agent_id: agentId, seq, day, units, body }),
);
const addToExposureCells = compiledOnce(
  (db, json: string) =>
    sql`
      insert into exposure_cells ${columnList(EXPOSURE_CELL_COLUMNS)} ${selectJsonText(db, EXPOSURE_CELL_COLUMNS, json)}
      on conflict (agent_id, deployment_id, branch_id, day) do update set exposures = exposure_cells.exposures + excluded.exposures,
        units_with_outcomes = exposure_cells.units_with_outcomes + excluded.units_with_outcomes`.compile(db),
);

function chunks<T>(rows: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < rows.length; start += size) out.push(rows.slice(start, start + size));
  return out;
}

export type ExperimentsStore = ReturnType<typeof experimentsStore>;

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

    // Exposures (segments: exposure-log.ts) ------------------------------------------------------

    async findLog(agentId: string): Promise<LogRow | undefined> {
      return (await findLog(db, agentId)).rows[0];
    },

    async saveLog(row: LogRow): Promise<void> {
      await saveLog(db, row.agent_id, row.last_seq, row.last_arm, row.unexposed_value_units);
    },

    armsAfter(agentId: string, afterArm: number): Promise<ArmRow[]> {
      return db.selectFrom('exposure_arms').selectAll().where('agent_id', '=', agentId).where('arm', '>', afterArm).orderBy('arm').execute();
    },

    async insertArms(rows: readonly ArmRow[]): Promise<void> {
      if (rows.length > 0) await db.insertInto('exposure_arms').values([...rows]).execute();
    },

    async insertSegments(rows: readonly SegmentRow[]): Promise<void> {
      // A batch's: a row a thousand units (a batch of 5,000: five), one more a midnight it spans.
      // One or two, each compiled once; more, in one statement (fewer round trips).
      if (rows.length <= 2) for (const row of rows) await insertSegment(db, row.agent_id, row.seq, row.day, row.units, row.body);
      // Five columns a row stay far from bind limits.
      else for (const chunk of chunks(rows, 100)) await db.insertInto('exposure_segments').values(chunk).execute();
    },

    /** The agent's segments after `afterSeq`, in order, `limit` at most. */
    segmentsAfter(agentId: string, afterSeq: number, limit: number): Promise<Pick<SegmentRow, 'seq' | 'day' | 'body'>[]> {
      return db.selectFrom('exposure_segments').select(['seq', 'day', 'body']).where('agent_id', '=', agentId).where('seq', '>', afterSeq).orderBy('seq').limit(limit).execute();
    },

    /** Every exposure of the agent, its segments read back into rows, in the order they were written. */
    async exposureRows(agentId: string): Promise<ExposureRow[]> {
      const arms = new Map((await db.selectFrom('exposure_arms').selectAll().where('agent_id', '=', agentId).execute()).map((arm) => [arm.arm, arm]));
      const segments = await db.selectFrom('exposure_segments').select('body').where('agent_id', '=', agentId).orderBy('seq').execute();
      return segments.flatMap(({ body }) =>
        (JSON.parse(body) as [string, number, number][]).map(([unitId, arm, exposedAtMs]) => {
          const { deployment_id, branch_id, version_id, probability, source } = arms.get(arm) as ArmRow;
          return { agent_id: agentId, unit_id: unitId, branch_id, version_id, deployment_id, probability, exposed_at_ms: exposedAtMs, source };
        }),
      );
    },

    /** Segments of days before `cutoffDay`, any agent, in pages by (agent, seq). */
    segmentsBefore(cutoffDay: number, after: { agent_id: string; seq: number } | undefined, limit: number): Promise<Pick<SegmentRow, 'agent_id' | 'seq' | 'body'>[]> {
      let query = db.selectFrom('exposure_segments').select(['agent_id', 'seq', 'body']).where('day', '<', cutoffDay);
      if (after) {
        query = query.where((eb) => eb.or([eb('agent_id', '>', after.agent_id), eb.and([eb('agent_id', '=', after.agent_id), eb('seq', '>', after.seq)])]));
      }
      return query.orderBy('agent_id').orderBy('seq').limit(limit).execute();
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
        await addToExposureCells(db, jsonRows(EXPOSURE_CELL_COLUMNS, chunk));
      }
    },

    /** Sets the cells' count of exposed units with any value (a recount: cells.ts). */
    async setUnitsWithOutcomes(agentId: string, counts: readonly Pick<ExposureCellRow, 'deployment_id' | 'branch_id' | 'day' | 'units_with_outcomes'>[]): Promise<void> {
      await db.updateTable('exposure_cells').set({ units_with_outcomes: 0 }).where('agent_id', '=', agentId).execute();
      for (const count of counts) {
        await db
          .updateTable('exposure_cells')
          .set({ units_with_outcomes: count.units_with_outcomes })
          .where('agent_id', '=', agentId)
          .where('deployment_id', '=', count.deployment_id)
          .where('branch_id', '=', count.branch_id)
          .where('day', '=', count.day)
          .execute();
      }
    },

    /** Every unit of the agent with any value. */
    async unitsWithValues(agentId: string): Promise<string[]> {
      const rows = await db.selectFrom('outcome_values').select('unit_id').distinct().where('agent_id', '=', agentId).execute();
      return rows.map((row) => row.unit_id);
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

    /** Values of the agent's units that last changed before `cutoffMs`. */
    async staleValueUnits(cutoffMs: number): Promise<{ agent_id: string; unit_id: string }[]> {
      return db.selectFrom('outcome_values').select(['agent_id', 'unit_id']).distinct().where('updated_at_ms', '<', cutoffMs).execute();
    },

    async deleteValuesOfUnits(agentId: string, unitIds: readonly string[]): Promise<void> {
      for (const chunk of chunks(unitIds, ROWS_PER_STATEMENT)) {
        await db.deleteFrom('outcome_values').where('agent_id', '=', agentId).where('unit_id', 'in', jsonTextList(db, chunk)).execute();
      }
    },

    /** Segments, cells and deliveries of every day before `cutoffDay` (values: cells.ts `dropExpiredDays`). */
    async dropDaysBefore(cutoffDay: number): Promise<void> {
      const cutoffMs = cutoffDay * 86_400_000;
      await db.deleteFrom('exposure_segments').where('day', '<', cutoffDay).execute();
      await db.deleteFrom('outcome_cells').where('day', '<', cutoffDay).execute();
      await db.deleteFrom('exposure_cells').where('day', '<', cutoffDay).execute();
      await db.deleteFrom('webhook_deliveries').where('received_at_ms', '<', cutoffMs).execute();
      // Values went with them: the agents' counts of unexposed value units are counted again when next used.
      await db.updateTable('exposure_logs').set({ unexposed_value_units: -1 }).where('unexposed_value_units', '<>', 0).execute();
    },

    // Agents ------------------------------------------------------------------------------------

    /** Everything the experiment tables hold of an agent (deleting it). */
    async deleteForAgent(agentId: string): Promise<void> {
      for (const table of ['exposure_logs', 'exposure_arms', 'exposure_segments', 'webhook_deliveries', 'outcome_values', 'experiment_metrics', 'outcome_cells', 'exposure_cells'] as const) {
        await db.deleteFrom(table).where('agent_id', '=', agentId).execute();
      }
    },
  };
}
