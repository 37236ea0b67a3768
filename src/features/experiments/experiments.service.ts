import type { Kysely } from 'kysely';

import type { AppContext } from '../../context.js';
import type { Database } from '../../db/schema.js';
import type { Caller } from '../../domain/caller.js';
import { bucketsPerBranch, BUCKETS } from '../../domain/traffic-split.js';
import { ConflictError, NotFoundError, RequestValidationError, type ValidationIssue } from '../../errors.js';
import { type AgentRow, agentsStore } from '../agents/agents.store.js';
import { recordUserAction } from '../audit/audit.events.js';
import { branchesStore } from '../branches/branches.store.js';
import { bucketTableOf } from '../deployments/deployment-writer.js';
import { deploymentsStore } from '../deployments/deployments.store.js';
import { versionsStore } from '../versions/versions.store.js';
import { type ExperimentScope, lockAgentExperiments, recordExposures, recordValues, recountUnitsWithOutcomes, type ValueEvent } from './cells.js';
import { experimentScope } from './experiments.runtime.js';
import { type ExposureRow, experimentsStore, type MetricRow } from './experiments.store.js';
import { acceptsValue, BUILT_IN_METRICS, builtInMetric, type MetricDefinition, type MetricKind, type MetricSource, parseFacts, valueFromFacts } from './metric-definitions.js';

/** Deliveries read at a time when a new metric is filled from them. */
const BACKFILL_PAGE = 1_000;

export function metricOf(row: MetricRow): MetricDefinition {
  return {
    key: row.metric_key,
    name: row.name,
    kind: row.kind,
    higherIsBetter: row.higher_is_better === 1,
    source: JSON.parse(row.source) as MetricSource,
    builtIn: false,
  };
}

/** The agent's metrics: the built-in ones first, then those defined, oldest first. */
export async function metricsOf(db: Kysely<Database>, agentId: string): Promise<MetricDefinition[]> {
  return [...BUILT_IN_METRICS, ...(await experimentsStore(db).listMetrics(agentId)).map(metricOf)];
}

/** Each branch's share of traffic (0..1) under the agent's active deployment, by its buckets. */
export async function activeShares(db: Kysely<Database>, agentId: string): Promise<{ deploymentId: string; shares: Map<string, number> }> {
  const active = await deploymentsStore(db).active(agentId);
  if (!active) throw new Error(`agent ${agentId} has no active deployment`);
  return { deploymentId: active.id, shares: sharesOf(bucketsPerBranch(bucketTableOf(active))) };
}

export function sharesOf(buckets: Map<string, number>): Map<string, number> {
  return new Map([...buckets].map(([branchId, count]) => [branchId, count / BUCKETS]));
}

export interface NewMetric {
  metricKey: string;
  name: string;
  kind: MetricKind;
  higherIsBetter: boolean;
  source: MetricSource;
}

export interface ExposureReport {
  conversation_id: string;
  branch_id: string;
  version_id?: string;
}

export interface OutcomeEvent {
  conversation_id: string;
  metric_key: string;
  value: number;
  occurred_at_unix_secs?: number;
  idempotency_key?: string;
}

/**
 * Fills a metric from the agent's stored webhook deliveries (a metric defined after calls were
 * delivered). Inside the write that creates it.
 */
async function backfill(scope: ExperimentScope, agentId: string, metric: MetricDefinition, nowMs: number): Promise<void> {
  const store = experimentsStore(scope.trx);
  let after: string | undefined;
  for (;;) {
    const page = await store.deliveriesAfter(agentId, 'post_call_transcription', after, BACKFILL_PAGE);
    const events: ValueEvent[] = [];
    for (const delivery of page) {
      const value = valueFromFacts(metric, parseFacts(delivery.extracted));
      if (value !== undefined) {
        events.push({ unitId: delivery.conversation_id, metricKey: metric.key, value, occurredAtMs: delivery.received_at_ms, idempotencyKey: null });
      }
    }
    await recordValues(scope, agentId, events, nowMs);
    if (page.length < BACKFILL_PAGE) return;
    after = page[page.length - 1].conversation_id;
  }
}

export function experimentsService(context: AppContext) {
  const { db } = context;
  const agent = (caller: Caller, agentId: string, handle: Kysely<Database> = db): Promise<AgentRow> =>
    agentsStore(handle).findOrThrow(caller.workspaceId, agentId);

  return {
    async listMetrics(caller: Caller, agentId: string): Promise<MetricDefinition[]> {
      await agent(caller, agentId);
      return metricsOf(db, agentId);
    },

    /** 409 when the key is taken (built-in keys included); fills it from deliveries received. */
    async createMetric(caller: Caller, agentId: string, metric: NewMetric): Promise<MetricDefinition> {
      const nowMs = context.now();
      return context.write(async (scope) => {
        const { trx } = scope;
        await agent(caller, agentId, trx);
        if (builtInMetric(metric.metricKey) || (await experimentsStore(trx).findMetric(agentId, metric.metricKey))) {
          throw new ConflictError('metric_exists', `The agent already has a metric "${metric.metricKey}".`);
        }
        const row: MetricRow = {
          agent_id: agentId,
          metric_key: metric.metricKey,
          name: metric.name,
          kind: metric.kind,
          higher_is_better: metric.higherIsBetter ? 1 : 0,
          source: JSON.stringify(metric.source.id === undefined ? { type: metric.source.type } : { type: metric.source.type, id: metric.source.id }),
          created_at_ms: nowMs,
        };
        await experimentsStore(trx).insertMetric(row);
        const definition = metricOf(row);
        if (definition.source.type !== 'event') await backfill(experimentScope(context, scope), agentId, definition, nowMs);
        await recordUserAction(trx, caller, nowMs, {
          action: 'metric.create',
          agentId,
          resourceId: metric.metricKey,
          details: { kind: metric.kind, source: { ...definition.source } },
        });
        return definition;
      });
    },

    /** Deletes a defined metric with its values; built-in ones are a 422. */
    async deleteMetric(caller: Caller, agentId: string, metricKey: string): Promise<void> {
      const nowMs = context.now();
      await context.write(async (scope) => {
        const { trx } = scope;
        await agent(caller, agentId, trx);
        if (builtInMetric(metricKey)) throw RequestValidationError.at(['path', 'metric_key'], `"${metricKey}" is a built-in metric: it cannot be deleted.`);
        const store = experimentsStore(trx);
        if (!(await store.findMetric(agentId, metricKey))) throw new NotFoundError('metric', metricKey);
        // The recount must not interleave with exposures or values being added (PostgreSQL).
        await lockAgentExperiments(trx, agentId);
        await store.deleteMetric(agentId, metricKey);
        await recountUnitsWithOutcomes(experimentScope(context, scope), agentId);
        await recordUserAction(trx, caller, nowMs, { action: 'metric.delete', agentId, resourceId: metricKey });
      });
    },

    /**
     * Exposures reported by a runtime that pinned a branch itself: written at once. The
     * probability is the branch's share under the active deployment (null when it has none).
     */
    async reportExposures(caller: Caller, agentId: string, reports: readonly ExposureReport[]): Promise<{ recorded: number; already_recorded: number }> {
      const nowMs = context.now();
      return context.write(async (scope) => {
        const { trx } = scope;
        await agent(caller, agentId, trx);
        const branches = new Map((await branchesStore(trx).heads(agentId)).map((head) => [head.branch_id, head.version_id]));
        const versionIds = [...new Set(reports.flatMap((report) => (report.version_id === undefined ? [] : [report.version_id])))];
        const versions = new Map((await versionsStore(trx).findMany(agentId, versionIds)).map((version) => [version.id, version]));
        const issues: ValidationIssue[] = [];
        reports.forEach((report, index) => {
          if (!branches.has(report.branch_id)) {
            issues.push({ loc: ['body', 'exposures', index, 'branch_id'], msg: `Branch ${report.branch_id} is not a branch of this agent.`, type: 'value_error' });
          } else if (report.version_id !== undefined && versions.get(report.version_id)?.branch_id !== report.branch_id) {
            issues.push({ loc: ['body', 'exposures', index, 'version_id'], msg: `Version ${report.version_id} is not on branch ${report.branch_id}.`, type: 'value_error' });
          }
        });
        if (issues.length > 0) throw new RequestValidationError(issues);
        const { deploymentId, shares } = await activeShares(trx, agentId);
        const seen = new Set<string>();
        const rows: ExposureRow[] = [];
        for (const report of reports) {
          // The first report of a unit in the request is its exposure, as across requests.
          if (seen.has(report.conversation_id)) continue;
          seen.add(report.conversation_id);
          const share = shares.get(report.branch_id) ?? 0;
          rows.push({
            agent_id: agentId,
            unit_id: report.conversation_id,
            branch_id: report.branch_id,
            version_id: report.version_id ?? (branches.get(report.branch_id) as string),
            deployment_id: deploymentId,
            probability: share > 0 ? share : null,
            exposed_at_ms: nowMs,
            source: 'reported',
          });
        }
        const recorded = await recordExposures(experimentScope(context, scope), agentId, rows);
        return { recorded: recorded.length, already_recorded: reports.length - recorded.length };
      });
    },

    /** Plain outcome events, for metrics with an `event` source. */
    async recordOutcomes(caller: Caller, agentId: string, events: readonly OutcomeEvent[]): Promise<{ accepted: number; duplicates: number }> {
      const nowMs = context.now();
      return context.write(async (scope) => {
        const { trx } = scope;
        await agent(caller, agentId, trx);
        const metrics = new Map((await metricsOf(trx, agentId)).map((metric) => [metric.key, metric]));
        const issues: ValidationIssue[] = [];
        events.forEach((event, index) => {
          const metric = metrics.get(event.metric_key);
          if (!metric || metric.source.type !== 'event') {
            issues.push({
              loc: ['body', 'events', index, 'metric_key'],
              msg: metric ? `Metric "${event.metric_key}" takes its values from ${metric.source.type.replace('_', ' ')}s, not from events.` : `The agent has no metric "${event.metric_key}".`,
              type: 'value_error',
            });
          } else if (!acceptsValue(metric.kind, event.value)) {
            issues.push({ loc: ['body', 'events', index, 'value'], msg: `Metric "${event.metric_key}" is binary: its values are 0 and 1.`, type: 'value_error' });
          }
        });
        if (issues.length > 0) throw new RequestValidationError(issues);
        return recordValues(
          experimentScope(context, scope),
          agentId,
          events.map((event) => ({
            unitId: event.conversation_id,
            metricKey: event.metric_key,
            value: event.value,
            occurredAtMs: event.occurred_at_unix_secs === undefined ? nowMs : event.occurred_at_unix_secs * 1000,
            idempotencyKey: event.idempotency_key ?? null,
          })),
          nowMs,
        );
      });
    },
  };
}
