import type { Kysely } from 'kysely';

import { lockKeys } from '../../db/locks.js';
import type { Database } from '../../db/schema.js';
import type { WriteScope } from '../../db/write.js';
import { DAY_MS, dayOf } from './days.js';
import { ExposureBatch } from './exposure-batch.js';
import { type AgentExposures, type ExposureLogs, type ExposureRef, firstLiveDay } from './exposure-log.js';
import { type ExposureCellDelta, type ExposureRow, experimentsStore, type OutcomeCellDelta, type OutcomeValueRow } from './experiments.store.js';

// Exposures and values in, cells kept up to date (README.md): a value lands in its unit's
// exposure's cell when both exist, whichever came second adds it; a changed value replaces its
// old contribution. Callers pass the write's scope and the process's exposure logs; the agent's
// experiment lock is taken first, so that an exposure and a value of one unit arriving together
// in two transactions (PostgreSQL) see each other.

export { DAY_MS, dayOf };

/** What experiment writes need: the write's scope and this process's exposure logs. */
export type ExperimentScope = Pick<WriteScope, 'trx' | 'afterCommit' | 'afterRollback'> & { exposures: ExposureLogs };

/**
 * Serializes the experiment writes of one agent (exposures, values, a metric's removal) across
 * processes, for the rest of the transaction; nothing on SQLite, whose write transaction is
 * exclusive. One lock a transaction, where a lock per unit was up to 1,000: PostgreSQL keeps
 * advisory locks in a shared table of `max_locks_per_transaction` × `max_connections` slots (6,400
 * by default), which a few concurrent batches would fill ("out of shared memory"), and taking them
 * was a tenth of a batch's time. Transactions that lock several agents lock them in id order.
 */
export async function lockAgentExperiments(trx: Kysely<Database>, agentId: string): Promise<void> {
  await lockKeys(trx, [`experiments:${agentId}`]);
}

/** Sums deltas per cell: a statement may change each cell once. */
/** Where a unit's exposure is counted. */
type CellOf = Pick<ExposureRef, 'deployment_id' | 'branch_id' | 'day'>;

class CellDeltas {
  constructor(private readonly agentId: string) {}

  private readonly outcome = new Map<string, OutcomeCellDelta>();
  private readonly exposure = new Map<string, ExposureCellDelta>();

  addValue(exposure: CellOf, metricKey: string, n: number, sum: number, sumSquares: number): void {
    const { day } = exposure;
    const key = `${metricKey}\u0000${exposure.deployment_id}\u0000${exposure.branch_id}\u0000${day}`;
    const cell = this.outcome.get(key);
    if (cell) {
      cell.n += n;
      cell.sum += sum;
      cell.sum_squares += sumSquares;
    } else {
      this.outcome.set(key, { agent_id: this.agentId, metric_key: metricKey, deployment_id: exposure.deployment_id, branch_id: exposure.branch_id, day, n, sum, sum_squares: sumSquares });
    }
  }

  addExposure(exposure: CellOf, exposures: number, unitsWithOutcomes: number): void {
    const { day } = exposure;
    const key = `${exposure.deployment_id}\u0000${exposure.branch_id}\u0000${day}`;
    const cell = this.exposure.get(key);
    if (cell) {
      cell.exposures += exposures;
      cell.units_with_outcomes += unitsWithOutcomes;
    } else {
      this.exposure.set(key, { agent_id: this.agentId, deployment_id: exposure.deployment_id, branch_id: exposure.branch_id, day, exposures, units_with_outcomes: unitsWithOutcomes });
    }
  }

  async write(trx: Kysely<Database>): Promise<void> {
    const store = experimentsStore(trx);
    const outcome = [...this.outcome.values()].filter((cell) => cell.n !== 0 || cell.sum !== 0 || cell.sum_squares !== 0);
    const exposure = [...this.exposure.values()].filter((cell) => cell.exposures !== 0 || cell.units_with_outcomes !== 0);
    await store.addToOutcomeCells(outcome);
    await store.addToExposureCells(exposure);
  }
}

/**
 * Records exposures of one agent's units that have none yet (later ones are ignored: the first
 * exposure is the unit's) and adds them, and the values their units already have, to the cells.
 * Returns the exposures recorded.
 */
export async function recordExposures(scope: ExperimentScope, agentId: string, rows: readonly ExposureRow[]): Promise<ExposureRow[]> {
  if (rows.length === 0) return [];
  const added = await recordExposureBatch(scope, agentId, ExposureBatch.fromRows(rows));
  return added.map((index) => rows[index]);
}

/** `recordExposures` of a batch (what the recorder writes: no object per exposure). Returns the indexes recorded. */
export async function recordExposureBatch(scope: ExperimentScope, agentId: string, batch: ExposureBatch): Promise<number[]> {
  if (batch.length === 0) return [];
  const { trx } = scope;
  await lockAgentExperiments(trx, agentId);
  const exposures = await scope.exposures.open(scope, agentId);
  const { added, renewed } = await exposures.add(trx, agentId, batch);
  const valuesOf = await valuesWaitingFor(trx, agentId, exposures, batch, added, renewed);
  await exposures.save(trx, agentId);
  if (added.length === 0) return added;
  const deltas = new CellDeltas(agentId);
  // Exposures without values are counted per cell here (a batch has few: arm and day) and added once each.
  const cells: (CellOf & { armIndex: number })[] = [];
  const counts: number[] = [];
  let cell = -1;
  for (const index of added) {
    const armIndex = batch.armIndexes[index];
    const day = dayOf(batch.times[index]);
    if (cell < 0 || cells[cell].armIndex !== armIndex || cells[cell].day !== day) {
      cell = cells.findIndex((known) => known.armIndex === armIndex && known.day === day);
      if (cell < 0) {
        const arm = batch.arms[armIndex];
        cell = cells.push({ armIndex, deployment_id: arm.deploymentId, branch_id: arm.branchId, day }) - 1;
        counts.push(0);
      }
    }
    const unitValues = valuesOf.get(index);
    if (unitValues === undefined) {
      counts[cell]++;
      continue;
    }
    deltas.addExposure(cells[cell], 1, 1);
    for (const value of unitValues) deltas.addValue(cells[cell], value.metric_key, 1, value.value, value.value * value.value);
  }
  for (let index = 0; index < cells.length; index++) deltas.addExposure(cells[index], counts[index], 0);
  await deltas.write(trx);
  return added;
}

/**
 * The values of newly exposed units, by index in the batch. A unit can have values before its
 * exposure only if it is among the agent's unexposed value units (none: nothing to look up, the
 * usual case: outcomes follow calls) or its earlier exposure expired (`renewed`: its values may
 * have come while that one was live, uncounted). Units found that were counted leave the count.
 */
async function valuesWaitingFor(
  trx: Kysely<Database>,
  agentId: string,
  exposures: AgentExposures,
  batch: ExposureBatch,
  added: readonly number[],
  renewed: readonly number[],
): Promise<Map<number, OutcomeValueRow[]>> {
  const valuesOf = new Map<number, OutcomeValueRow[]>();
  const counted = exposures.unexposedValueUnits;
  const candidates = counted !== 0 ? added : renewed;
  if (candidates.length === 0) return valuesOf;
  const indexOf = new Map(candidates.map((index) => [batch.unitId(index), index]));
  for (const value of await experimentsStore(trx).valuesOfUnits(agentId, [...indexOf.keys()])) {
    const index = indexOf.get(value.unit_id)!;
    const list = valuesOf.get(index);
    if (list) list.push(value);
    else valuesOf.set(index, [value]);
  }
  if (counted !== 0) {
    // Counted were those found that had no exposure at all, and have a live one now.
    const renewedIndexes = new Set(renewed);
    let found = 0;
    for (const index of valuesOf.keys()) if (!renewedIndexes.has(index) && exposures.isLive(dayOf(batch.times[index]))) found++;
    // More found than counted cannot happen; should it, the agent is counted again when next used.
    exposures.unexposedValueUnits = counted >= found ? counted - found : -1;
  }
  return valuesOf;
}

/** One value reported for a unit and metric. */
export interface ValueEvent {
  unitId: string;
  metricKey: string;
  value: number;
  occurredAtMs: number;
  idempotencyKey: string | null;
}

export interface ValueOutcome {
  accepted: number;
  /** Events whose idempotency key the unit's value of that metric already carries. */
  duplicates: number;
}

/**
 * Records values of one agent: per (unit, metric) one value, the latest by `occurredAtMs` (a tie:
 * the later report); an event repeating the idempotency key of the value it would replace is a
 * duplicate. An older event than the stored value is accepted and changes nothing. Cells of
 * exposed units follow.
 */
export async function recordValues(scope: ExperimentScope, agentId: string, events: readonly ValueEvent[], nowMs: number): Promise<ValueOutcome> {
  if (events.length === 0) return { accepted: 0, duplicates: 0 };
  const { trx } = scope;
  const units = [...new Set(events.map((event) => event.unitId))];
  await lockAgentExperiments(trx, agentId);
  const exposures = await scope.exposures.open(scope, agentId);
  const store = experimentsStore(trx);
  const stored = await store.valuesOfUnits(agentId, units);
  const key = (unitId: string, metricKey: string) => `${unitId}\u0000${metricKey}`;
  const before = new Map(stored.map((row) => [key(row.unit_id, row.metric_key), row]));
  const current = new Map(before);
  const changed = new Map<string, OutcomeValueRow>();
  let accepted = 0;
  let duplicates = 0;
  for (const event of events) {
    const id = key(event.unitId, event.metricKey);
    const existing = current.get(id);
    if (existing && event.idempotencyKey !== null && existing.idempotency_key === event.idempotencyKey) {
      duplicates++;
      continue;
    }
    accepted++;
    if (existing && existing.occurred_at_ms > event.occurredAtMs) continue;
    const row: OutcomeValueRow = {
      agent_id: agentId,
      unit_id: event.unitId,
      metric_key: event.metricKey,
      value: event.value,
      occurred_at_ms: event.occurredAtMs,
      updated_at_ms: nowMs,
      idempotency_key: event.idempotencyKey,
    };
    current.set(id, row);
    changed.set(id, row);
  }
  if (changed.size === 0) return { accepted, duplicates };
  await store.upsertValues([...changed.values()]);

  const unitsWithValuesBefore = new Set(stored.map((row) => row.unit_id));
  const deltas = new CellDeltas(agentId);
  const gainedValues = new Set<string>();
  let unexposed = 0;
  for (const [id, row] of changed) {
    const exposure = exposures.find(row.unit_id);
    if (!exposure) {
      // A unit's first value, and no exposure yet: its exposure will have to look it up.
      if (!unitsWithValuesBefore.has(row.unit_id) && !gainedValues.has(row.unit_id)) {
        gainedValues.add(row.unit_id);
        unexposed++;
      }
      continue;
    }
    const old = before.get(id);
    if (old) deltas.addValue(exposure, row.metric_key, 0, row.value - old.value, row.value * row.value - old.value * old.value);
    else deltas.addValue(exposure, row.metric_key, 1, row.value, row.value * row.value);
    if (!unitsWithValuesBefore.has(row.unit_id) && !gainedValues.has(row.unit_id)) {
      gainedValues.add(row.unit_id);
      deltas.addExposure(exposure, 0, 1);
    }
  }
  await deltas.write(trx);
  // (-1, not counted: stays so, and is counted when next opened.)
  if (exposures.unexposedValueUnits >= 0) exposures.unexposedValueUnits += unexposed;
  await exposures.save(trx, agentId);
  return { accepted, duplicates };
}

/**
 * Counts again, for every exposure cell of the agent, the exposed units that have any value
 * (after a metric and its values were deleted). Inside the agent's experiment lock.
 */
export async function recountUnitsWithOutcomes(scope: ExperimentScope, agentId: string): Promise<void> {
  const exposures = await scope.exposures.open(scope, agentId);
  const store = experimentsStore(scope.trx);
  const counts = new Map<string, { deployment_id: string; branch_id: string; day: number; units_with_outcomes: number }>();
  let unexposed = 0;
  for (const unitId of await store.unitsWithValues(agentId)) {
    const exposure = exposures.find(unitId);
    if (!exposure) {
      unexposed++;
      continue;
    }
    const key = `${exposure.deployment_id}\u0000${exposure.branch_id}\u0000${exposure.day}`;
    const count = counts.get(key);
    if (count) count.units_with_outcomes++;
    else counts.set(key, { deployment_id: exposure.deployment_id, branch_id: exposure.branch_id, day: exposure.day, units_with_outcomes: 1 });
  }
  await store.setUnitsWithOutcomes(agentId, [...counts.values()]);
  exposures.unexposedValueUnits = unexposed;
  await exposures.save(scope.trx, agentId);
}

/**
 * Retention (`EXPERIMENT_RETENTION_DAYS`): drops the days older than `retentionDays` before `nowMs`
 * (0 keeps everything): the exposures of those days with their units' values (unless exposed again
 * since), values of units never exposed that last changed before them, and their cells and
 * deliveries. One write; to be run by one process at a time, under a lease (the lead wires it to
 * `src/db/leases.ts`). Every process treats exposures of those days as gone already (exposure-log.ts).
 */
export async function dropExpiredDays(scope: ExperimentScope, retentionDays: number, nowMs: number): Promise<void> {
  if (retentionDays <= 0) return;
  const cutoffDay = firstLiveDay(retentionDays, nowMs);
  const store = experimentsStore(scope.trx);
  // Units whose exposure expires, and units with values unchanged since before the cutoff.
  const candidates = new Map<string, Set<string>>();
  const add = (agentId: string, unitId: string) => {
    const units = candidates.get(agentId) ?? new Set<string>();
    units.add(unitId);
    candidates.set(agentId, units);
  };
  for (let after: { agent_id: string; seq: number } | undefined; ; ) {
    const page = await store.segmentsBefore(cutoffDay, after, 200);
    for (const segment of page) for (const [unitId] of JSON.parse(segment.body) as [string][]) add(segment.agent_id, unitId);
    if (page.length < 200) break;
    after = page[page.length - 1];
  }
  for (const { agent_id: agentId, unit_id: unitId } of await store.staleValueUnits(cutoffDay * DAY_MS)) add(agentId, unitId);
  // Those without an exposure of a day kept lose their values.
  // (No experiment lock: one per agent could fill PostgreSQL's lock table. Nor does it wait for
  // another transaction of this process that holds the log: it only reads it, and may see that
  // one's units before it commits.)
  for (const [agentId, units] of candidates) {
    const exposures = await scope.exposures.open(scope, agentId, 'read');
    await store.deleteValuesOfUnits(agentId, [...units].filter((unitId) => !exposures.find(unitId, cutoffDay)));
  }
  await store.dropDaysBefore(cutoffDay);
}
