import type { ExperimentCounters } from './experiment-counters.js';
import type { ExposureRow } from './experiments.store.js';

/** What the recorder needs of the app: a write of one batch (one transaction per agent batch). */
export type WriteExposures = (rows: ExposureRow[]) => Promise<number>;

export interface ExposureRecorderOptions {
  /** A batch is written this long after its first exposure at most (a SIGKILL loses at most this). */
  flushIntervalMs?: number;
  /** A batch is written as soon as it has this many. */
  batchSize?: number;
  /** Exposures waiting at most; beyond, new ones are dropped and counted (the read never waits). */
  maxBuffered?: number;
  /** Units remembered as recorded, so that their later reads cost a set lookup only. */
  maxRemembered?: number;
}

/**
 * Records the routed read's exposures without slowing it: `record` costs a set lookup and a push;
 * batches are written by a timer, one write transaction each. The first exposure of a unit wins
 * (in memory here, by the primary key in the database), so a unit forgotten by the bounded set
 * costs one more ignored insert, never a second exposure. `close` writes what is buffered
 * (SIGTERM); a SIGKILL loses at most the last interval.
 */
export class ExposureRecorder {
  private buffer: ExposureRow[] = [];
  private remembered = new Set<string>();
  private rememberedBefore = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private timerDueNow = false;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly flushIntervalMs: number;
  private readonly batchSize: number;
  private readonly maxBuffered: number;
  private readonly maxRemembered: number;

  constructor(
    private readonly write: WriteExposures,
    private readonly counters: ExperimentCounters,
    private readonly now: () => number,
    options: ExposureRecorderOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 200;
    this.batchSize = options.batchSize ?? 1_000;
    this.maxBuffered = options.maxBuffered ?? 20_000;
    this.maxRemembered = options.maxRemembered ?? 200_000;
  }

  /** Exposures waiting to be written. */
  get pending(): number {
    return this.buffer.length;
  }

  /** A routed read served `versionId` of `branchId` to `unitId` under `deploymentId`. */
  record(agentId: string, unitId: string, branchId: string, versionId: string, deploymentId: string, probability: number | undefined): void {
    const key = `${agentId}\u0000${unitId}`;
    if (this.remembered.has(key) || this.rememberedBefore.has(key)) return;
    if (this.closed || this.buffer.length >= this.maxBuffered) {
      this.counters.exposuresDropped++;
      return;
    }
    this.remember(key);
    const exposedAtMs = this.now();
    this.buffer.push({
      agent_id: agentId,
      unit_id: unitId,
      branch_id: branchId,
      version_id: versionId,
      deployment_id: deploymentId,
      probability: probability !== undefined && probability > 0 ? probability : null,
      exposed_at_ms: exposedAtMs,
      source: 'routed',
    });
    if (this.buffer.length >= this.batchSize) this.flushSoon(0);
    else if (this.timer === undefined) this.flushSoon(this.flushIntervalMs);
  }

  /**
   * Two generations, each at most half the bound: when the newer fills, the older is forgotten
   * whole. (Deleting the oldest member of one Set one at a time is quadratic in V8: deleted
   * entries stay as holes that finding the first member scans, until the table is rebuilt.)
   */
  private remember(key: string): void {
    if (this.remembered.size >= this.maxRemembered / 2) {
      this.rememberedBefore = this.remembered;
      this.remembered = new Set();
    }
    this.remembered.add(key);
  }

  private forget(key: string): void {
    this.remembered.delete(key);
    this.rememberedBefore.delete(key);
  }

  private flushSoon(delayMs: number): void {
    if (this.timer !== undefined) {
      // Already due at once, or due later and still later is asked: nothing to change (this runs
      // on the routed read: no timer churn per read).
      if (delayMs > 0 || this.timerDueNow) return;
      clearTimeout(this.timer);
    }
    this.timerDueNow = delayMs === 0;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDueNow = false;
      void this.flush();
    }, delayMs);
    // A pending batch does not keep a process alive; close() writes it.
    this.timer.unref();
  }

  /** Writes everything buffered now, after any write in progress. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      while (this.buffer.length > 0) {
        const batch = this.buffer.splice(0, this.batchSize);
        try {
          this.counters.exposuresRecorded += await this.write(batch);
        } catch {
          // The database refused (it is closing, or down): the batch is lost, and counted. Its
          // units are forgotten so that a later read of them is recorded again.
          this.counters.exposureFlushFailures += batch.length;
          for (const row of batch) this.forget(`${row.agent_id}\u0000${row.unit_id}`);
        }
      }
    });
    return this.flushing;
  }

  /** Writes what is buffered and takes no more (the server is closing). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDueNow = false;
    await this.flush();
  }
}

/** Groups a batch by agent: each agent's exposures are written (and their units locked) together. */
export function byAgent(rows: readonly ExposureRow[]): Map<string, ExposureRow[]> {
  const groups = new Map<string, ExposureRow[]>();
  for (const row of rows) {
    const group = groups.get(row.agent_id);
    if (group) group.push(row);
    else groups.set(row.agent_id, [row]);
  }
  return groups;
}
