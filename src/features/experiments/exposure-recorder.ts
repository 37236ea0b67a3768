import { murmur3 } from '../../domain/murmur3.js';
import { HashSet64, UnitMap } from '../../domain/unit-map.js';
import type { ExperimentCounters } from './experiment-counters.js';
import { type BatchArm, ExposureBatch } from './exposure-batch.js';

/** What the recorder needs of the app: a write of one batch (one transaction). Returns how many were new. */
export type WriteExposures = (batch: ExposureBatch) => Promise<number>;

export interface ExposureRecorderOptions {
  /** A batch is written this long after its first exposure at most (a SIGKILL loses at most this). */
  flushIntervalMs?: number;
  /**
   * A batch is written as soon as it has this many (5,000: a batch's own statements and round trips
   * cost as much as a thousand exposures on PostgreSQL; below 25,000 a second the interval comes first).
   */
  batchSize?: number;
  /** Exposures waiting at most; beyond, new ones are dropped and counted (the read never waits). */
  maxBuffered?: number;
  /** Units remembered as recorded, so that their later reads cost a set lookup only. */
  maxRemembered?: number;
}

const SEED_LOW = 0x2f6b_a1c3;
const SEED_HIGH = 0x7d31_94e5;
/** Agents whose hash seeds are kept (all of them again after a clear). */
const MAX_AGENT_SEEDS = 10_000;
/** The unit bytes' first size (it doubles as needed, and shrinks back when emptied). */
const INITIAL_UNIT_BYTES = 64 * 1024;

/**
 * Records the routed read's exposures without slowing it: `record` costs one 64-bit hash of the
 * unit (its key in the agent's exposure log, handed on to the writer), set lookups, a copy of its
 * bytes and a few pushes; batches are written by a timer, one write transaction each. The
 * first exposure of a unit wins (in memory here, by the agent's exposure log when written), so a
 * unit forgotten by the bounded set costs one more ignored entry, never a second exposure. A
 * unit taken for another by its 64-bit hash (about 1 in 10¹⁴ at the default bound) would go
 * unrecorded. `close` writes what is buffered (SIGTERM); a SIGKILL loses at most the last interval.
 */
export class ExposureRecorder {
  // The buffer, as parallel arrays (a row object per exposure, kept until its batch is written,
  // outlived young-generation collections and made old-generation garbage: measured, a tenth of
  // the routed read's CPU with nothing written at all). The units are kept as bytes, not strings:
  // a unit string is a slice of its request's URL and would keep all of it alive.
  /** The buffered units' UTF-8 bytes, one after the other; `unitEnds[i]` is where unit i ends. */
  private unitBytes = Buffer.allocUnsafe(INITIAL_UNIT_BYTES);
  private unitBytesUsed = 0;
  private unitEnds: number[] = [];
  /** The buffered units' keys (`UnitMap.key`), two numbers each. */
  private keys: number[] = [];
  private armIndexes: number[] = [];
  private times: number[] = [];
  /** What buffered exposures were served: few (an agent's deployment and branch heads). */
  private arms: BatchArm[] = [];
  private lastArm = -1;
  /** Units recorded, as 64-bit hashes (no strings kept): two generations, each half the bound. */
  private remembered: HashSet64;
  private rememberedBefore: HashSet64;
  /** Per agent, what its units' keys are mixed with in the remembered sets (one set serves every agent). */
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
    this.batchSize = options.batchSize ?? 5_000;
    this.maxBuffered = options.maxBuffered ?? 20_000;
    const generation = Math.max(1, Math.floor((options.maxRemembered ?? 200_000) / 2));
    this.remembered = new HashSet64(generation);
    this.rememberedBefore = new HashSet64(generation);
  }

  /** Exposures waiting to be written. */
  get pending(): number {
    return this.unitEnds.length;
  }

  /** A routed read served `versionId` of `branchId` to `unitId` under `deploymentId`. */
  record(agentId: string, unitId: string, branchId: string, versionId: string, deploymentId: string, probability: number | undefined): void {
    let seeds = this.agentSeeds.get(agentId);
    if (seeds === undefined) {
      if (this.agentSeeds.size >= MAX_AGENT_SEEDS) this.agentSeeds.clear();
      seeds = [murmur3(agentId, SEED_LOW), murmur3(agentId, SEED_HIGH)];
      this.agentSeeds.set(agentId, seeds);
    }
    // The unit's key in the agent's exposure log, computed once here and handed to the writer.
    const key = UnitMap.key(unitId);
    const unitLow = key[0];
    const unitHigh = key[1];
    const low = unitLow ^ seeds[0];
    const high = unitHigh ^ seeds[1];
    if (this.remembered.has(low, high) || this.rememberedBefore.has(low, high)) return;
    if (this.closed || this.unitEnds.length >= this.maxBuffered) {
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
    this.unitEnds.push(this.appendUnit(unitId));
    this.keys.push(unitLow, unitHigh);
    this.armIndexes.push(this.armIndex(agentId, branchId, versionId, deploymentId, probability !== undefined && probability > 0 ? probability : null));
    this.times.push(this.now());
    if (this.unitEnds.length >= this.batchSize) this.flushSoon(0);
    else if (this.timer === undefined) this.flushSoon(this.flushIntervalMs);
  }

  /** Appends the unit's UTF-8 bytes to the buffer; returns where they end. */
  private appendUnit(unitId: string): number {
    // At most 3 bytes a UTF-16 unit.
    const needed = this.unitBytesUsed + unitId.length * 3;
    if (needed > this.unitBytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.unitBytes.length * 2));
      this.unitBytes.copy(grown, 0, 0, this.unitBytesUsed);
      this.unitBytes = grown;
    }
    const bytes = this.unitBytes;
    let at = this.unitBytesUsed;
    // ASCII (what ids are) byte by byte: cheaper than a call into the encoder for a few dozen.
    for (let index = 0; index < unitId.length; index++) {
      const code = unitId.charCodeAt(index);
      if (code > 0x7f) {
        at = this.unitBytesUsed + bytes.write(unitId, this.unitBytesUsed, 'utf8');
        break;
      }
      bytes[at++] = code;
    }
    this.unitBytesUsed = at;
    return at;
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
    if (index === this.arms.length) this.arms.push({ agentId, branchId, versionId, deploymentId, probability, source: 'routed' });
    this.lastArm = index;
    return index;
  }

  /** Takes the oldest `count` buffered exposures, as a batch of their own. */
  private take(count: number): ExposureBatch {
    const ends = this.unitEnds.splice(0, count);
    const taken = ends.length > 0 ? ends[ends.length - 1] : 0;
    // The batch shares the arms: they are only ever added to (and replaced once nothing is buffered).
    const batch = new ExposureBatch(Buffer.from(this.unitBytes.subarray(0, taken)), ends, this.keys.splice(0, 2 * count), this.armIndexes.splice(0, count), this.arms, this.times.splice(0, count));
    // The bytes still buffered move to the front.
    this.unitBytes.copy(this.unitBytes, 0, taken, this.unitBytesUsed);
    this.unitBytesUsed -= taken;
    for (let index = 0; index < this.unitEnds.length; index++) this.unitEnds[index] -= taken;
    // Nothing left refers to them: the arms start again (they would grow with every deployment).
    if (this.unitEnds.length === 0) {
      this.arms = [];
      this.lastArm = -1;
      if (this.unitBytes.length > INITIAL_UNIT_BYTES) this.unitBytes = Buffer.allocUnsafe(INITIAL_UNIT_BYTES);
    }
    return batch;
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
      for (let remaining = this.unitEnds.length; remaining > 0; ) {
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
