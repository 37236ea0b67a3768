import { murmur3, Murmur3Prefix } from './murmur3.js';

/**
 * Traffic splits and conversation routing (decisions.md D15).
 *
 * A conversation's bucket is MurmurHash3 x86_32 (seed 0) of `"{agent_id}:{routing_key}"`, mapped
 * to 0…9999 by multiply-shift. Each deployment has a bucket table: which branch serves each
 * bucket. A new split keeps every bucket whose branch still has room and reassigns only the
 * buckets it must, so the share of conversations that change branch is the minimum possible:
 * half the L1 distance between the old and the new split (to within rounding to buckets).
 */

export const BUCKETS = 10_000;

export interface SplitItem {
  branchId: string;
  /** 0–100, fractions allowed. */
  percentage: number;
}

/** A bucket table: the branch (an index into `branchIds`) of every bucket. */
export interface BucketTable {
  branchIds: string[];
  branchOf: Uint16Array;
}

export function bucketOf(agentId: string, routingKey: string): number {
  return bucketOfHash(murmur3(`${agentId}:${routingKey}`));
}

function bucketOfHash(hash: number): number {
  return Math.floor((hash * BUCKETS) / 4294967296);
}

export function routeToBranch(table: BucketTable, agentId: string, routingKey: string): string {
  return branchAt(table, bucketOf(agentId, routingKey));
}

function branchAt(table: BucketTable, bucket: number): string {
  return table.branchIds[table.branchOf[bucket]];
}

/** One agent's routing keys to buckets, `bucketOf` without rehashing its id for every key. */
export class AgentBuckets {
  private readonly prefix: Murmur3Prefix;

  constructor(agentId: string) {
    this.prefix = new Murmur3Prefix(`${agentId}:`);
  }

  bucketOf(routingKey: string): number {
    return bucketOfHash(this.prefix.of(routingKey));
  }

  routeToBranch(table: BucketTable, routingKey: string): string {
    return branchAt(table, this.bucketOf(routingKey));
  }
}

/**
 * Percentages are counted in millionths of a percent, exact integers: in floating point,
 * `80.085 × 100` leaves a remainder just under one half and `19.915 × 100` one just over, so equal
 * remainders would be decided by rounding noise instead of by the order of the split.
 */
const UNITS_PER_PERCENT = 1_000_000;
const UNITS_PER_BUCKET = (100 * UNITS_PER_PERCENT) / BUCKETS;

/**
 * Buckets per branch: `percentage × 100` rounded by largest remainder so they sum to 10,000
 * (decisions.md D15). Ties go to the branch listed first.
 */
export function bucketCounts(split: readonly SplitItem[]): Map<string, number> {
  const units = split.map((item) => Math.round(item.percentage * UNITS_PER_PERCENT));
  const counts = units.map((value) => Math.floor(value / UNITS_PER_BUCKET));
  let missing = BUCKETS - counts.reduce((sum, count) => sum + count, 0);
  const order = units
    .map((value, index) => ({ index, remainder: value % UNITS_PER_BUCKET }))
    .sort((a, b) => b.remainder - a.remainder || a.index - b.index);
  for (const { index } of order) {
    if (missing <= 0) break;
    counts[index]++;
    missing--;
  }
  return new Map(split.map((item, index) => [item.branchId, counts[index]]));
}

/** The table of a split with no history: every bucket in order, branch after branch. */
export function freshBucketTable(split: readonly SplitItem[]): BucketTable {
  return nextBucketTable(undefined, split);
}

/**
 * The table for a new split, moving as few buckets as possible from `previous`: every branch
 * keeps min(old, new) of its buckets and only the rest are reassigned, in bucket order, to the
 * branches that need more. With `preferred` (a rollback's earlier table), the buckets kept and
 * given are chosen to agree with it wherever the counts allow, so rolling back to a split puts
 * conversations back where they were under it, still moving no more than the minimum.
 */
export function nextBucketTable(
  previous: BucketTable | undefined,
  split: readonly SplitItem[],
  preferred?: BucketTable,
): BucketTable {
  const counts = bucketCounts(split);
  const branchIds = split.map((item) => item.branchId);
  const indexOf = new Map(branchIds.map((id, index) => [id, index]));
  const room = branchIds.map((id) => counts.get(id) ?? 0);
  const branchOf = new Uint16Array(BUCKETS);
  const assigned = new Uint8Array(BUCKETS);
  const indexIn = (table: BucketTable | undefined, bucket: number) =>
    table ? indexOf.get(table.branchIds[table.branchOf[bucket]]) : undefined;
  const assign = (bucket: number, index: number) => {
    branchOf[bucket] = index;
    assigned[bucket] = 1;
    room[index]--;
  };

  // Keep buckets on their current branch while it has room: first those the preferred table
  // also puts there, then the others.
  if (preferred) {
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      const index = indexIn(previous, bucket);
      if (index !== undefined && room[index] > 0 && index === indexIn(preferred, bucket)) assign(bucket, index);
    }
  }
  for (let bucket = 0; bucket < BUCKETS; bucket++) {
    if (assigned[bucket]) continue;
    const index = indexIn(previous, bucket);
    if (index !== undefined && room[index] > 0) assign(bucket, index);
  }
  // Move the rest: to their preferred branch where it has room, then in order.
  if (preferred) {
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      if (assigned[bucket]) continue;
      const index = indexIn(preferred, bucket);
      if (index !== undefined && room[index] > 0) assign(bucket, index);
    }
  }
  let branch = 0;
  for (let bucket = 0; bucket < BUCKETS; bucket++) {
    if (assigned[bucket]) continue;
    while (room[branch] === 0) branch++;
    assign(bucket, branch);
  }
  return { branchIds, branchOf };
}

/** How many buckets serve a different branch in `after` than in `before`. */
export function movedBuckets(before: BucketTable, after: BucketTable): number {
  let moved = 0;
  for (let bucket = 0; bucket < BUCKETS; bucket++) {
    if (before.branchIds[before.branchOf[bucket]] !== after.branchIds[after.branchOf[bucket]]) moved++;
  }
  return moved;
}

/** Buckets per branch of a table (branches it lists with no bucket are left out). */
export function bucketsPerBranch(table: BucketTable): Map<string, number> {
  const counts = new Map<string, number>();
  for (let bucket = 0; bucket < BUCKETS; bucket++) {
    const branchId = branchAt(table, bucket);
    counts.set(branchId, (counts.get(branchId) ?? 0) + 1);
  }
  return counts;
}

/** A number of buckets that serve `from` in one table and `to` in another. */
export interface BucketMovement {
  from: string;
  to: string;
  buckets: number;
}

/**
 * Which buckets change branch between two tables, per pair of branches, most first: what a
 * deployment from `before` to `after` does to conversations (a deployment's preview shows it).
 * The buckets add up to `movedBuckets(before, after)`.
 */
export function bucketMovements(before: BucketTable, after: BucketTable): BucketMovement[] {
  const pairs = new Map<string, BucketMovement>();
  for (let bucket = 0; bucket < BUCKETS; bucket++) {
    const from = branchAt(before, bucket);
    const to = branchAt(after, bucket);
    if (from === to) continue;
    const key = JSON.stringify([from, to]);
    const pair = pairs.get(key);
    if (pair) pair.buckets++;
    else pairs.set(key, { from, to, buckets: 1 });
  }
  return [...pairs.values()].sort((a, b) => b.buckets - a.buckets || compareIds(a.from, b.from) || compareIds(a.to, b.to));
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Compact text form for storage: runs of `index*length`, comma-separated. */
export function encodeBucketTable(table: BucketTable): string {
  const runs: string[] = [];
  let start = 0;
  for (let bucket = 1; bucket <= BUCKETS; bucket++) {
    if (bucket === BUCKETS || table.branchOf[bucket] !== table.branchOf[start]) {
      runs.push(`${table.branchOf[start]}*${bucket - start}`);
      start = bucket;
    }
  }
  return runs.join(',');
}

export function decodeBucketTable(branchIds: string[], encoded: string): BucketTable {
  const branchOf = new Uint16Array(BUCKETS);
  let bucket = 0;
  for (const run of encoded.split(',')) {
    const [index, length] = run.split('*').map(Number);
    branchOf.fill(index, bucket, bucket + length);
    bucket += length;
  }
  if (bucket !== BUCKETS) throw new Error(`a bucket table must cover ${BUCKETS} buckets, not ${bucket}`);
  return { branchIds, branchOf };
}
