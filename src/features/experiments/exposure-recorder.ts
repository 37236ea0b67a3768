import { murmur3, murmur3Pair } from '../../domain/murmur3.js';
import { HashSet64 } from '../../domain/unit-map.js';
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

interface BufferedArm {
  agentId: string;
  branchId: string;
  versionId: string;
  deploymentId: string;
  probability: number | null;
}

const SEED_LOW = 0x2f6b_a1c3;
const SEED_HIGH = 0x7d31_94e5;
const KEY = new Uint32Array(2);
/** Agents whose hash seeds are kept (all of them again after a clear). */
const MAX_AGENT_SEEDS = 10_000;

/**
 * Records the routed read's exposures without slowing it: `record` costs two hashes of the unit,
 * a set lookup and three pushes; batches are written by a timer, one write transaction each. The
 * first exposure of a unit wins (in memory here, by the agent's exposure log when written), so a
 * unit forgotten by the bounded set costs one more ignored entry, never a second exposure. A
 * unit taken for another by its 64-bit hash (about 1 in 10¹⁴ at the default bound) would go
 * unrecorded. `close` writes what is buffered (SIGTERM); a SIGKILL loses at most the last interval.
 */
export class ExposureRecorder {
  // The buffer, as parallel arrays (a row object per exposure, kept until its batch is written,
  // outlived young-generation collections and made old-generation garbage: measured, a tenth of
  // the routed read's CPU with nothing written at all).
  private units: string[] = [];
  private armIndexes: number[] = [];
  private times: number[] = [];
  /** What buffered exposures were served: few (an agent's deployment and branch heads). */
  private arms: BufferedArm[] = [];
  private lastArm = -1;
  /** Units recorded, as 64-bit hashes (no strings kept): two generations, each half the bound. */
  private remembered: HashSet64;
  private rememberedBefore: HashSet64;
  /** Per agent, the seeds its units are hashed with. */
  private agentSeeds = new Map<string, [number, number]>();
  private timer: NodeJS.Timeout | undefined;
  private timerDueNow = false;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly flushIntervalMs: number;
  private readonly batchSize: number;
  private readonly maxBuffered: number;

  constructor(
    private readonly write: WriteExposures,
    private readonly counters: ExperimentCounters,
    private readonly now: () => number,
    options: ExposureRecorderOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 200;
    this.batchSize = options.batchSize ?? 1_000;
    this.maxBuffered = options.maxBuffered ?? 20_000;
    const generation = Math.max(1, Math.floor((options.maxRemembered ?? 200_000) / 2));
    this.remembered = new HashSet64(generation);
    this.rememberedBefore = new HashSet64(generation);
  }

  /** Exposures waiting to be written. */
  get pending(): number {
    return this.units.length;
  }

  /** A routed read served `versionId` of `branchId` to `unitId` under `deploymentId`. */
  record(agentId: string, unitId: string, branchId: string, versionId: string, deploymentId: string, probability: number | undefined): void {
    let seeds = this.agentSeeds.get(agentId);
    if (seeds === undefined) {
      if (this.agentSeeds.size >= MAX_AGENT_SEEDS) this.agentSeeds.clear();
      seeds = [murmur3(agentId, SEED_LOW), murmur3(agentId, SEED_HIGH)];
      this.agentSeeds.set(agentId, seeds);
    }
    murmur3Pair(unitId, seeds[0], seeds[1], KEY);
    const low = KEY[0];
    const high = KEY[1];
    if (this.remembered.has(low, high) || this.rememberedBefore.has(low, high)) return;
    if (this.closed || this.units.length >= this.maxBuffered) {
      this.counters.exposuresDropped++;
      return;
    }
    // Two generations: when the newer is full, the older is forgotten whole.
    if (!this.remembered.add(low, high)) {
      const older = this.rememberedBefore;
      older.clear();
      this.rememberedBefore = this.remembered;
      this.remembered = older;
      this.remembered.add(low, high);
    }
    this.units.push(unitId);
    this.armIndexes.push(this.armIndex(agentId, branchId, versionId, deploymentId, probability !== undefined && probability > 0 ? probability : null));
    this.times.push(this.now());
    if (this.units.length >= this.batchSize) this.flushSoon(0);
    else if (this.timer === undefined) this.flushSoon(this.flushIntervalMs);
  }

  /** The buffered arm with these fields (the same strings, read after read: compared by identity first). */
  private armIndex(agentId: string, branchId: string, versionId: string, deploymentId: string, probability: number | null): number {
    // No closure here: each one made per read costs more than the rest (tsx names every function it makes).
    const last = this.lastArm >= 0 ? this.arms[this.lastArm] : undefined;
    if (last && last.agentId === agentId && last.branchId === branchId && last.versionId === versionId && last.deploymentId === deploymentId && last.probability === probability) {
      return this.lastArm;
    }
    let index = 0;
    for (; index < this.arms.length; index++) {
      const arm = this.arms[index];
      if (arm.agentId === agentId && arm.branchId === branchId && arm.versionId === versionId && arm.deploymentId === deploymentId && arm.probability === probability) break;
    }
    if (index === this.arms.length) this.arms.push({ agentId, branchId, versionId, deploymentId, probability });
    this.lastArm = index;
    return index;
  }

  /** Takes the oldest `count` buffered exposures as rows. */
  private take(count: number): ExposureRow[] {
    const units = this.units.splice(0, count);
    const arms = this.armIndexes.splice(0, count);
    const times = this.times.splice(0, count);
    const rows = units.map((unitId, index): ExposureRow => {
      const arm = this.arms[arms[index]];
      return {
        agent_id: arm.agentId,
        unit_id: unitId,
        branch_id: arm.branchId,
        version_id: arm.versionId,
        deployment_id: arm.deploymentId,
        probability: arm.probability,
        exposed_at_ms: times[index],
        source: 'routed',
      };
    });
    // Nothing left refers to them: the arms start again (they would grow with every deployment).
    if (this.units.length === 0) {
      this.arms = [];
      this.lastArm = -1;
    }
    return rows;
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
      // What is buffered now, in full batches and one last partial. Exposures recorded while these
      // are written wait for their own batch to fill or their interval to pass: taken as they
      // came, a batch could be as small as what arrives during one write, each paying a
      // transaction and its queries.
      for (let remaining = this.units.length; remaining > 0; ) {
        const batch = this.take(Math.min(this.batchSize, remaining));
        remaining -= batch.length;
        try {
          this.counters.exposuresRecorded += await this.write(batch);
        } catch {
          // The database refused (it is closing, or down): the batch is lost, and counted. Every
          // unit is forgotten, so that a later read of one of its units is recorded again (the
          // database keeps the first exposure of the others).
          this.counters.exposureFlushFailures += batch.length;
          this.remembered.clear();
          this.rememberedBefore.clear();
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
