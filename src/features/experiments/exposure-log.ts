import type { Kysely } from 'kysely';

import type { Database, ExposureArmTable } from '../../db/schema.js';
import type { WriteScope } from '../../db/write.js';
import { LruCache } from '../../domain/lru.js';
import { UnitMap } from '../../domain/unit-map.js';
import { DAY_MS, dayOf } from './days.js';
import { type ExperimentsStore, experimentsStore, type SegmentRow } from './experiments.store.js';
import type { BatchArm, ExposureBatch } from './exposure-batch.js';

// Which units of an agent have an exposure, and to what (README.md, "Exposures"). The database
// holds segments: a row per written batch, agent and day, its units as compact JSON. This keeps,
// per process and agent, a map from unit to arm and day (32 bytes a unit), read back from the
// segments the first time the agent is used and caught up from those written since (by any
// process) every time it is used inside the agent's experiment lock. A transaction adds its
// units to the map at once (no copy a unit); until it commits or rolls back, no other transaction
// of the process opens the agent, and one that rolls back takes the map with it (read again from
// the segments when the agent is next used).

export type Arm = Omit<ExposureArmTable, 'agent_id' | 'arm'>;

/** A unit's exposure, as cells need it. */
export interface ExposureRef {
  deployment_id: string;
  branch_id: string;
  day: number;
}

/** One unit in a segment's body: `[unit_id, arm, exposed_at_ms]`. */
type SegmentEntry = [string, number, number];

const SEGMENT_UNITS = 1_000;
/** Memory for arms and bookkeeping besides the unit map, per agent. */
const AGENT_OVERHEAD_BYTES = 4_096;
const ARM_BYTES = 256;

function armKey(arm: Arm): string {
  return JSON.stringify([arm.deployment_id, arm.branch_id, arm.version_id, arm.probability, arm.source]);
}

class AgentLog {
  readonly units = new UnitMap();
  /** By arm number (1-based; index 0 unused). */
  readonly arms: Arm[] = [];
  readonly armNumbers = new Map<string, number>();
  lastSeq = 0;
  lastArm = 0;

  get bytes(): number {
    return AGENT_OVERHEAD_BYTES + this.units.bytes + this.arms.length * ARM_BYTES;
  }

  addArm(number: number, arm: Arm): void {
    this.arms[number] = arm;
    this.armNumbers.set(armKey(arm), number);
  }

  addSegment(seq: number, entries: readonly SegmentEntry[], minDay: number): void {
    for (const [unit, arm, atMs] of entries) this.units.add(unit, arm, dayOf(atMs), minDay);
    this.lastSeq = seq;
  }
}

/**
 * What one transaction added to one agent's log besides its units (those go into the log at once):
 * joined to it once the transaction commits.
 */
interface Staged {
  /** The log it wrote to (kept, should the cache drop it meanwhile). */
  log: AgentLog;
  arms: Map<number, Arm>;
  armNumbers: Map<string, number>;
  /** The number of the first segment it wrote (none: undefined). */
  firstSeq: number | undefined;
  lastSeq: number;
  lastArm: number;
  /** The agent's `unexposed_value_units` as this transaction leaves it (counted at open when unknown). */
  unexposedValueUnits: number;
  /** Whether the header row must be written (a segment, an arm or the count changed). */
  dirty: boolean;
}

/** An agent's log as one transaction sees it: what was committed, and what it added itself. */
export class AgentExposures {
  constructor(
    private readonly log: AgentLog,
    private readonly staged: Staged,
    private readonly minDay: number,
  ) {}

  /** The unit's exposure of `minDay` or later (by default: unexpired), or undefined. */
  find(unitId: string, minDay = this.minDay): ExposureRef | undefined {
    const key = UnitMap.key(unitId);
    const arm = this.log.units.armOfKey(key[0], key[1], minDay);
    if (arm < 0) return undefined;
    const day = this.log.units.dayOfKey(key[0], key[1], minDay);
    const { deployment_id, branch_id } = this.armOf(arm);
    return { deployment_id, branch_id, day };
  }

  /** Whether an exposure of `day` is live (not expired by retention). */
  isLive(day: number): boolean {
    return day >= this.minDay;
  }

  armOf(number: number): Arm {
    return (this.staged.arms.get(number) ?? this.log.arms[number]) as Arm;
  }

  /** The agent's number of `arm`, a new one (added to `newArms`) if it has none like it. */
  private armNumber(agentId: string, arm: BatchArm, newArms: ExposureArmTable[]): number {
    const row: Arm = { deployment_id: arm.deploymentId, branch_id: arm.branchId, version_id: arm.versionId, probability: arm.probability, source: arm.source };
    const key = armKey(row);
    let number = this.staged.armNumbers.get(key) ?? this.log.armNumbers.get(key);
    if (number === undefined) {
      number = ++this.staged.lastArm;
      this.staged.arms.set(number, row);
      this.staged.armNumbers.set(key, number);
      newArms.push({ agent_id: agentId, arm: number, ...row });
    }
    return number;
  }

  /**
   * Adds the exposures of units that have none (the first of a unit in the batch wins) and writes
   * them as segments. Returns the indexes of those added, and of those among them whose earlier
   * exposure had expired. The batch's keys are used as they are (no unit is hashed or decoded here).
   */
  async add(trx: Kysely<Database>, agentId: string, batch: ExposureBatch): Promise<AddedExposures> {
    const added: number[] = [];
    const renewed: number[] = [];
    const texts = new Map<number, SegmentTexts>();
    const newArms: ExposureArmTable[] = [];
    // The agent's arm number of each of the batch's arms, looked up once.
    const armNumbers: number[] = [];
    const units = this.log.units;
    const { keys, armIndexes, times } = batch;
    let day = 0;
    let dayStartMs = 0;
    let dayEndMs = -Infinity;
    let text: SegmentTexts | undefined;
    for (let index = 0; index < batch.length; index++) {
      const low = keys[2 * index];
      const high = keys[2 * index + 1];
      // Exposed already (before, or earlier in this transaction): the first exposure is the unit's.
      const state = units.stateOfKey(low, high, this.minDay);
      if (state >= 0) continue;
      if (state === UnitMap.EXPIRED) renewed.push(index);
      const armIndex = armIndexes[index];
      let number = armNumbers[armIndex];
      if (number === undefined) number = armNumbers[armIndex] = this.armNumber(agentId, batch.arms[armIndex], newArms);
      const atMs = times[index];
      if (atMs < dayStartMs || atMs >= dayEndMs) {
        day = dayOf(atMs);
        dayStartMs = day * DAY_MS;
        dayEndMs = dayStartMs + DAY_MS;
        text = texts.get(day);
        if (!text) texts.set(day, (text = new SegmentTexts()));
      }
      units.addKey(low, high, number, day, this.minDay);
      text!.add(batch, index, number, atMs);
      added.push(index);
    }
    if (added.length === 0) return { added, renewed };
    const segments: SegmentRow[] = [];
    for (const [segmentDay, dayTexts] of texts) {
      for (const { units, body } of dayTexts.finish()) {
        const seq = ++this.staged.lastSeq;
        segments.push({ agent_id: agentId, seq, day: segmentDay, units, body });
        this.staged.firstSeq ??= seq;
      }
    }
    const store = experimentsStore(trx);
    await store.insertArms(newArms);
    await store.insertSegments(segments);
    this.staged.dirty = true;
    return { added, renewed };
  }

  /**
   * At least the number of the agent's units with a value and no exposure (migration 0014):
   * while it is not 0, new exposures look their units' values up.
   */
  get unexposedValueUnits(): number {
    return this.staged.unexposedValueUnits;
  }

  set unexposedValueUnits(count: number) {
    if (count === this.staged.unexposedValueUnits) return;
    this.staged.unexposedValueUnits = count;
    this.staged.dirty = true;
  }

  /** Writes the agent's header row (the numbers last given, the count above) if this transaction changed it. */
  async save(trx: Kysely<Database>, agentId: string): Promise<void> {
    const { staged } = this;
    if (!staged.dirty) return;
    await experimentsStore(trx).saveLog({ agent_id: agentId, last_seq: staged.lastSeq, last_arm: staged.lastArm, unexposed_value_units: staged.unexposedValueUnits });
    staged.dirty = false;
  }
}

/** What `AgentExposures.add` recorded: the batch's indexes of the exposures, and of those among them whose earlier exposure had expired. */
export interface AddedExposures {
  added: number[];
  renewed: number[];
}

/**
 * One day's segment bodies as a batch adds to them: JSON text (`SegmentEntry` each), written byte
 * by byte from the batch's unit bytes, a body every `SEGMENT_UNITS` units. A unit whose bytes
 * JSON must escape (a quote, a backslash, a control character) is written by `JSON.stringify`.
 */
class SegmentTexts {
  private buffer = Buffer.allocUnsafe(64 * 1024);
  private used = 0;
  private units = 0;
  private readonly bodies: { units: number; body: string }[] = [];

  add(batch: ExposureBatch, index: number, arm: number, atMs: number): void {
    const start = batch.start(index);
    const end = batch.ends[index];
    // Escaped, a byte takes 6 at most (`\u00XX`); the rest of an entry fewer than 64 (two numbers of 24 at most).
    this.reserve((end - start) * 6 + 64);
    const buffer = this.buffer;
    let at = this.used;
    buffer[at++] = this.units === 0 ? 0x5b : 0x2c; // `[` or `,`
    buffer[at++] = 0x5b; // `[`
    const quoted = at;
    buffer[at++] = 0x22; // `"`
    const bytes = batch.bytes;
    for (let from = start; from < end; from++) {
      const byte = bytes[from];
      if (byte < 0x20 || byte === 0x22 || byte === 0x5c) {
        at = quoted + buffer.write(JSON.stringify(batch.unitId(index)), quoted, 'utf8') - 1;
        break;
      }
      buffer[at++] = byte;
    }
    buffer[at++] = 0x22;
    buffer[at++] = 0x2c;
    at = writeNumber(buffer, at, arm);
    buffer[at++] = 0x2c;
    at = writeNumber(buffer, at, atMs);
    buffer[at++] = 0x5d; // `]`
    this.used = at;
    if (++this.units === SEGMENT_UNITS) this.close();
  }

  /** The bodies, the last one closed. */
  finish(): { units: number; body: string }[] {
    this.close();
    return this.bodies;
  }

  private close(): void {
    if (this.units === 0) return;
    this.buffer[this.used++] = 0x5d;
    this.bodies.push({ units: this.units, body: this.buffer.toString('utf8', 0, this.used) });
    this.used = 0;
    this.units = 0;
  }

  private reserve(bytes: number): void {
    if (this.used + bytes + 1 <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.used + bytes + 1));
    this.buffer.copy(grown, 0, 0, this.used);
    this.buffer = grown;
  }
}

/**
 * Writes `value` as JSON at `at`; returns where it ends. A whole number's digits are written with
 * 32-bit integer arithmetic, in parts of up to eight digits: on a double past 2³¹ (a time in
 * milliseconds) `%` and `Math.floor` cost V8 a call each, and a time's 13 digits took 300 ns.
 */
function writeNumber(buffer: Buffer, at: number, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) return at + buffer.write(JSON.stringify(value), at, 'latin1');
  if (value < EIGHT_DIGITS) return writeDigits(buffer, at, value, digitsOf(value));
  const high = Math.floor(value / EIGHT_DIGITS);
  at = writeDigits(buffer, at, high, digitsOf(high));
  return writeDigits(buffer, at, value - high * EIGHT_DIGITS, 8);
}

const EIGHT_DIGITS = 100_000_000;

/** How many digits `value` (a whole number under 2³¹) has. */
function digitsOf(value: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = (rest / 10) | 0) digits++;
  return digits;
}

/** Writes `value` (a whole number under 2³¹) as `digits` digits, zeros first if it has fewer. */
function writeDigits(buffer: Buffer, at: number, value: number, digits: number): number {
  let rest = value;
  for (let position = at + digits - 1; position >= at; position--) {
    const tenth = (rest / 10) | 0;
    buffer[position] = 0x30 + rest - tenth * 10;
    rest = tenth;
  }
  return at + digits;
}

/** The agent's units with a value and no exposure of `minDay` or later in `log` (committed state). */
async function unexposedValueUnits(store: ExperimentsStore, agentId: string, log: AgentLog, minDay: number): Promise<number> {
  let count = 0;
  for (const unitId of await store.unitsWithValues(agentId)) if (log.units.arm(unitId, minDay) < 0) count++;
  return count;
}

/** Day before which exposures have expired (`EXPERIMENT_RETENTION_DAYS`; 0: none do). */
export function firstLiveDay(retentionDays: number, nowMs: number): number {
  return retentionDays > 0 ? dayOf(nowMs) - retentionDays : -Infinity;
}

/**
 * Every agent's exposure log in this process, least recently used first out past `maxBytes`
 * (an agent's log is then read again from its segments when next used).
 */
export class ExposureLogs {
  private readonly logs: LruCache<string, AgentLog>;
  private readonly staged = new WeakMap<object, Map<string, Staged>>();
  /** Per agent, the transaction of this process that has its log open, until it commits or rolls back. */
  private readonly holders = new Map<string, { trx: object; released: Promise<void>; release: () => void }>();

  /** `EXPERIMENT_RETENTION_DAYS`: exposures of days before it are treated as gone (retention drops them). */
  retentionDays: number;

  constructor(private readonly options: { retentionDays: number; now: () => number; maxBytes?: number }) {
    this.retentionDays = options.retentionDays;
    // An agent whose map alone is past the budget keeps it (the others go): refused, it would be
    // read back from all of its segments for every batch written.
    this.logs = new LruCache({ maxEntries: 100_000, maxBytes: options.maxBytes ?? 512 * 1024 * 1024, sizeOf: (log) => log.bytes, keepOversized: true });
  }

  /** Bytes held by the logs in memory. */
  get bytes(): number {
    return this.logs.bytes;
  }

  /**
   * The agent's exposures as this write sees them. Call with the agent's experiment lock held
   * (cells.ts `lockAgentExperiments`): the log is caught up from the database in it. `read`: the
   * caller adds no exposures, and neither waits for nor holds off other transactions of this
   * process that write the log (it may see their units before they commit).
   */
  async open(scope: Pick<WriteScope, 'trx' | 'afterCommit' | 'afterRollback'>, agentId: string, use: 'write' | 'read' = 'write'): Promise<AgentExposures> {
    const minDay = firstLiveDay(this.retentionDays, this.options.now());
    let perAgent = this.staged.get(scope.trx);
    const staged = perAgent?.get(agentId);
    if (staged) return new AgentExposures(staged.log, staged, minDay);
    if (!perAgent) {
      // First, so that whatever fails below, the transaction's end releases what it took.
      perAgent = new Map();
      this.staged.set(scope.trx, perAgent);
      const transaction = perAgent;
      scope.afterCommit(() => this.commit(scope.trx, transaction));
      scope.afterRollback(() => this.rollBack(scope.trx, transaction));
    }
    if (use === 'write') await this.take(agentId, scope.trx);
    let log = this.logs.get(agentId);

    const store = experimentsStore(scope.trx);
    const header = await store.findLog(agentId);
    // Numbers behind what this process saw: the store was replaced (an import); read it again.
    if (!log || !header || header.last_seq < log.lastSeq || header.last_arm < log.lastArm) log = new AgentLog();
    if (header && header.last_arm > log.lastArm) {
      for (const row of await store.armsAfter(agentId, log.lastArm)) log.addArm(row.arm, row);
      log.lastArm = header.last_arm;
    }
    if (header && header.last_seq > log.lastSeq) {
      for (let after = log.lastSeq; ; ) {
        const page = await store.segmentsAfter(agentId, after, 200);
        for (const segment of page) log.addSegment(segment.seq, JSON.parse(segment.body) as SegmentEntry[], minDay);
        if (page.length < 200) break;
        after = page[page.length - 1].seq;
      }
      log.lastSeq = header.last_seq;
    }
    this.logs.set(agentId, log);

    const fresh: Staged = {
      log,
      arms: new Map(),
      armNumbers: new Map(),
      firstSeq: undefined,
      lastSeq: log.lastSeq,
      lastArm: log.lastArm,
      unexposedValueUnits: header?.unexposed_value_units ?? -1,
      dirty: false,
    };
    // Not counted yet (no header, or one from before migration 0014): counted now, exactly.
    if (fresh.unexposedValueUnits < 0) {
      fresh.unexposedValueUnits = await unexposedValueUnits(store, agentId, log, minDay);
      fresh.dirty = true;
    }
    perAgent.set(agentId, fresh);
    return new AgentExposures(log, fresh, minDay);
  }

  /**
   * Waits until no other transaction of this process holds the agent's log. Transactions that
   * open one agent are serialized by its experiment lock, but a commit's callback may run after
   * the next transaction took the lock: that one must not see the log before the first's units
   * are either kept (committed) or gone (rolled back).
   */
  private async take(agentId: string, trx: object): Promise<void> {
    for (let holder = this.holders.get(agentId); holder && holder.trx !== trx; holder = this.holders.get(agentId)) await holder.released;
    if (this.holders.has(agentId)) return;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    this.holders.set(agentId, { trx, released, release });
  }

  /** The transaction ended: the logs it held are free. */
  private releaseAll(trx: object): void {
    for (const [agentId, holder] of this.holders) {
      if (holder.trx !== trx) continue;
      this.holders.delete(agentId);
      holder.release();
    }
  }

  /** A transaction committed: its arms and numbers join the logs it wrote (its units are in them). */
  private commit(trx: object, transaction: Map<string, Staged>): void {
    this.releaseAll(trx);
    for (const [agentId, staged] of transaction) {
      const { log } = staged;
      // Dropped meanwhile (the budget, retention): read again, this transaction's segments too, when next used.
      if (this.logs.peek(agentId) !== log) continue;
      for (const [number, arm] of staged.arms) if (number > log.lastArm) log.addArm(number, arm);
      log.lastArm = Math.max(log.lastArm, staged.lastArm);
      if (staged.firstSeq === undefined) continue;
      log.lastSeq = Math.max(log.lastSeq, staged.lastSeq);
      // Set again: the budget counts what it holds now.
      this.logs.set(agentId, log);
    }
  }

  /** A transaction rolled back: the logs it opened may hold its units, so they are dropped (read again when next used). */
  private rollBack(trx: object, transaction: Map<string, Staged>): void {
    for (const [agentId, staged] of transaction) if (this.logs.peek(agentId) === staged.log) this.logs.delete(agentId);
    this.releaseAll(trx);
  }

  /** Forgets every agent's log (retention dropped segments: each is read again when next used). */
  clear(): void {
    this.logs.clear();
  }
}

