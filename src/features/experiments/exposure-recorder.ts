import { UnitMap } from '../../domain/unit-map.js';
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
}

/** Numbers a buffered exposure takes in `rows`: where its unit's bytes end, its arm, its time. */
const FIELDS = 3;
/** The buffers' first sizes (they double as needed, and shrink back when emptied). */
const INITIAL_ROWS = 4_096;
const INITIAL_UNIT_BYTES = 64 * 1024;

/**
 * Records the routed read's exposures without slowing it. `record` touches as little memory as it
 * can: measured in a server under load, each cache line or page a read's exposure touched cost
 * about as much as the rest of it (between two reads, the request's own work evicts everything
 * else), so that a set lookup cost 0.6 µs there against 0.05 µs in a loop. So it appends the
 * unit's bytes and three numbers to two buffers, and compares the arm with the last one; no hash,
 * no lookup. The rest is done per batch, where the caches are the batch's: each unit is hashed
 * (its key in the agent's exposure log) when the batch is taken, and a unit's first exposure wins
 * in the agent's exposure log as it is written, so a unit read again is buffered again and
 * ignored there. Batches are written by a timer, one write transaction each. `close` writes what
 * is buffered (SIGTERM); a SIGKILL loses at most the last interval.
 */
export class ExposureRecorder {
  // The buffer is numbers and bytes, no object per exposure: a row object, kept until its batch is
  // written, outlived young-generation collections and made old-generation garbage (measured: a
  // tenth of the routed read's CPU with nothing written at all). The units are kept as bytes, not
  // strings: a unit string is a slice of its request's URL and would keep all of it alive.
  /** The buffered units' UTF-8 bytes, one after the other. */
  private unitBytes = Buffer.allocUnsafe(INITIAL_UNIT_BYTES);
  private unitBytesUsed = 0;
  /** `FIELDS` numbers a buffered exposure: where its unit's bytes end, its arm (in `arms`), its time. */
  private rows = new Float64Array(INITIAL_ROWS * FIELDS);
  private count = 0;
  /** What buffered exposures were served: few (an agent's deployment and branch heads). */
  private arms: BatchArm[] = [];
  private lastArm = -1;
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
  }

  /** Exposures waiting to be written. */
  get pending(): number {
    return this.count;
  }

  /**
   * A routed read served `versionId` of `branchId` to `unitId` under `deploymentId`. The ids are
   * best the same strings read after read (the routing entry's): they are compared by identity first.
   */
  record(agentId: string, unitId: string, branchId: string, versionId: string, deploymentId: string, probability: number | undefined): void {
    const count = this.count;
    if (this.closed || count >= this.maxBuffered) {
      this.counters.exposuresDropped++;
      return;
    }
    const arm = this.armIndex(agentId, branchId, versionId, deploymentId, probability !== undefined && probability > 0 ? probability : null);
    if ((count + 1) * FIELDS > this.rows.length) this.growRows();
    const row = count * FIELDS;
    const rows = this.rows;
    rows[row] = this.appendUnit(unitId);
    rows[row + 1] = arm;
    rows[row + 2] = this.now();
    this.count = count + 1;
    if (count + 1 >= this.batchSize) this.flushSoon(0);
    else if (this.timer === undefined) this.flushSoon(this.flushIntervalMs);
  }

  private growRows(): void {
    const grown = new Float64Array(this.rows.length * 2);
    grown.set(this.rows.subarray(0, this.count * FIELDS));
    this.rows = grown;
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

  /** Takes the oldest `count` buffered exposures, as a batch of their own, their units hashed. */
  private take(count: number): ExposureBatch {
    const rows = this.rows;
    const bytes = this.unitBytes;
    const ends = new Uint32Array(count);
    const armIndexes = new Uint32Array(count);
    const times = new Float64Array(count);
    const keys = new Uint32Array(2 * count);
    let start = 0;
    for (let index = 0; index < count; index++) {
      const end = rows[index * FIELDS];
      ends[index] = end;
      armIndexes[index] = rows[index * FIELDS + 1];
      times[index] = rows[index * FIELDS + 2];
      const key = UnitMap.keyOfBytes(bytes, start, end);
      keys[2 * index] = key[0];
      keys[2 * index + 1] = key[1];
      start = end;
    }
    // The batch shares the arms: they are only ever added to (and replaced once nothing is buffered).
    const batch = new ExposureBatch(Buffer.from(bytes.subarray(0, start)), ends, keys, armIndexes, this.arms, times);
    // What is still buffered moves to the front.
    bytes.copy(bytes, 0, start, this.unitBytesUsed);
    this.unitBytesUsed -= start;
    rows.copyWithin(0, count * FIELDS, this.count * FIELDS);
    this.count -= count;
    for (let index = 0; index < this.count; index++) rows[index * FIELDS] -= start;
    // Nothing left refers to them: the arms start again (they would grow with every deployment).
    if (this.count === 0) {
      this.arms = [];
      this.lastArm = -1;
      if (this.unitBytes.length > INITIAL_UNIT_BYTES) this.unitBytes = Buffer.allocUnsafe(INITIAL_UNIT_BYTES);
      if (this.rows.length > INITIAL_ROWS * FIELDS) this.rows = new Float64Array(INITIAL_ROWS * FIELDS);
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
      for (let remaining = this.count; remaining > 0; ) {
        const batch = this.take(Math.min(this.batchSize, remaining));
        remaining -= batch.length;
        try {
          this.counters.exposuresRecorded += await this.write(batch);
        } catch {
          // The database refused (it is closing, or down): the batch is lost, and counted (a
          // later read of one of its units is recorded as any other).
          this.counters.exposureFlushFailures += batch.length;
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
