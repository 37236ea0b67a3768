import { UnitMap } from '../../domain/unit-map.js';
import type { ExposureRow } from './experiments.store.js';

/** What some of a batch's exposures were served: few a batch (an agent's deployment and branch heads). */
export interface BatchArm {
  agentId: string;
  branchId: string;
  versionId: string;
  deploymentId: string;
  /** The branch's share of traffic (0..1] under the deployment; null when it had none. */
  probability: number | null;
  source: ExposureRow['source'];
}

/**
 * Exposures in columns, with no object or string per exposure: the units' UTF-8 bytes one after
 * another, each unit's 64-bit key (`UnitMap.key`), the arm it was served and when. What the
 * recorder buffers and hands the writer as it is; a unit's string is made only when needed (its
 * values looked up).
 */
export class ExposureBatch {
  constructor(
    /** Unit i is `bytes[i === 0 ? 0 : ends[i - 1], ends[i])`. */
    readonly bytes: Buffer,
    readonly ends: ArrayLike<number>,
    /** Unit i's key halves at `2i` and `2i + 1`. */
    readonly keys: ArrayLike<number>,
    /** Unit i's arm: an index into `arms`. */
    readonly armIndexes: ArrayLike<number>,
    readonly arms: readonly BatchArm[],
    readonly times: ArrayLike<number>,
  ) {}

  get length(): number {
    return this.ends.length;
  }

  start(index: number): number {
    return index === 0 ? 0 : this.ends[index - 1];
  }

  unitId(index: number): string {
    return this.bytes.toString('utf8', this.start(index), this.ends[index]);
  }

  arm(index: number): BatchArm {
    return this.arms[this.armIndexes[index]];
  }

  row(index: number): ExposureRow {
    const arm = this.arm(index);
    return {
      agent_id: arm.agentId,
      unit_id: this.unitId(index),
      branch_id: arm.branchId,
      version_id: arm.versionId,
      deployment_id: arm.deploymentId,
      probability: arm.probability,
      exposed_at_ms: this.times[index],
      source: arm.source,
    };
  }

  static fromRows(rows: readonly ExposureRow[]): ExposureBatch {
    const units = rows.map((row) => Buffer.from(row.unit_id, 'utf8'));
    const ends: number[] = [];
    let end = 0;
    for (const unit of units) ends.push((end += unit.length));
    const keys: number[] = [];
    for (const row of rows) {
      const key = UnitMap.key(row.unit_id);
      keys.push(key[0], key[1]);
    }
    const arms: BatchArm[] = [];
    const armIndexes = rows.map((row) => {
      const arm: BatchArm = {
        agentId: row.agent_id,
        branchId: row.branch_id,
        versionId: row.version_id,
        deploymentId: row.deployment_id,
        probability: row.probability,
        source: row.source,
      };
      const index = arms.findIndex((known) => sameArm(known, arm));
      return index >= 0 ? index : arms.push(arm) - 1;
    });
    return new ExposureBatch(Buffer.concat(units), ends, keys, armIndexes, arms, rows.map((row) => row.exposed_at_ms));
  }

  /** The batch's exposures per agent (the batch itself when it holds one agent's only: the usual case). */
  byAgent(): Map<string, ExposureBatch> {
    // Its arms may name agents it has no exposure of (the recorder's arms serve what is still buffered too).
    const indexes = new Map<string, number[]>();
    for (let index = 0; index < this.length; index++) {
      const { agentId } = this.arm(index);
      const chosen = indexes.get(agentId);
      if (chosen) chosen.push(index);
      else indexes.set(agentId, [index]);
    }
    if (indexes.size === 1) return new Map([[[...indexes.keys()][0], this]]);
    return new Map([...indexes].map(([agentId, chosen]) => [agentId, this.subset(chosen)]));
  }

  /** The exposures at `indexes`, in that order, as a batch of their own. */
  subset(indexes: readonly number[]): ExposureBatch {
    const parts = indexes.map((index) => this.bytes.subarray(this.start(index), this.ends[index]));
    const ends: number[] = [];
    let end = 0;
    for (const part of parts) ends.push((end += part.length));
    return new ExposureBatch(
      Buffer.concat(parts),
      ends,
      indexes.flatMap((index) => [this.keys[2 * index], this.keys[2 * index + 1]]),
      indexes.map((index) => this.armIndexes[index]),
      this.arms,
      indexes.map((index) => this.times[index]),
    );
  }
}

function sameArm(a: BatchArm, b: BatchArm): boolean {
  return a.agentId === b.agentId && a.branchId === b.branchId && a.versionId === b.versionId && a.deploymentId === b.deploymentId && a.probability === b.probability && a.source === b.source;
}
