import { randomUUID } from 'node:crypto';

import fc from 'fast-check';
// A well-kept byte-based reference implementation (decisions.md D15).
import reference from 'murmurhash3js-revisited';
import { describe, expect, it } from 'vitest';

import { murmur3, murmur3Bytes, Murmur3Prefix } from '../../src/domain/murmur3.js';
import {
  AgentBuckets,
  BUCKETS,
  bucketCounts,
  bucketMovements,
  bucketOf,
  bucketsPerBranch,
  decodeBucketTable,
  encodeBucketTable,
  freshBucketTable,
  movedBuckets,
  nextBucketTable,
  routeToBranch,
} from '../../src/domain/traffic-split.js';
import { splitArbitrary as randomSplits } from './split-arbitraries.js';

const encoder = new TextEncoder();
const referenceHash = (text: string) => reference.x86.hash32(encoder.encode(text), 0) >>> 0;

/**
 * Published test vectors (also in the README): MurmurHash3 x86_32, seed 0, over the UTF-8 bytes
 * of `"{agent_id}:{routing_key}"`, and the bucket `floor(hash × 10000 / 2^32)`.
 */
export const VECTORS: [key: string, hash: number, bucket: number][] = [
  ['', 0, 0],
  ['a', 1009084850, 2349],
  ['abc', 3017643002, 7025],
  ['agent_x:café', 3044728402, 7089],
  ['agent_1000:conv_01HZX3K9Q4W7T2M800000000', 1361899246, 3170],
  ['agent_01m89pr0fy6w085wdrfph1rv7psd:+15550100', 2141752288, 4986],
  ['agent_01m89pr0fy6w085wdrfph1rv7psd:🤖 conversation', 1804487189, 4201],
];

describe('murmur3 and buckets', () => {
  it.each(VECTORS)('%j hashes to %d (bucket %d)', (key, hash, bucket) => {
    expect(murmur3(key)).toBe(hash);
    expect(referenceHash(key)).toBe(hash);
    expect(Math.floor((hash * BUCKETS) / 2 ** 32)).toBe(bucket);
  });

  it('agrees with the byte-based reference on any text, ASCII or not', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 80 }), fc.string({ maxLength: 80 }), (unicode, ascii) => {
        expect(murmur3(unicode)).toBe(referenceHash(unicode));
        expect(murmur3(ascii)).toBe(referenceHash(ascii));
        expect(murmur3Bytes(encoder.encode(unicode))).toBe(referenceHash(unicode));
      }),
      { numRuns: 300 },
    );
  });

  it('hashes a prefix once and any text after it as the whole string: every split of the blocks, ASCII or not', () => {
    const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }));
    fc.assert(
      fc.property(text, fc.array(text, { maxLength: 5 }), (prefix, texts) => {
        const hasher = new Murmur3Prefix(prefix);
        // Used again and again, as the hot path does: nothing carries over from one text to the next.
        for (const after of texts) expect(hasher.of(after)).toBe(murmur3(prefix + after));
      }),
      { numRuns: 500 },
    );
    const buckets = new AgentBuckets('agent_01m89pr0fy6w085wdrfph1rv7psd');
    expect(buckets.bucketOf('+15550100')).toBe(4986);
    expect(buckets.bucketOf('🤖 conversation')).toBe(4201);
    fc.assert(
      fc.property(fc.string(), fc.string(), (agentId, key) => {
        expect(new AgentBuckets(agentId).bucketOf(key)).toBe(bucketOf(agentId, key));
      }),
      { numRuns: 200 },
    );
  });

  it('hashes bytes, not UTF-16 code units: a non-ASCII key differs from its code-unit hash', () => {
    const key = 'agent_x:café';
    const codeUnits = new Uint8Array([...key].map((char) => char.charCodeAt(0) & 0xff));
    expect(murmur3(key)).not.toBe(murmur3Bytes(codeUnits));
  });

  it('maps every key to a bucket in 0…9999, the same one every time', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (agentId, key) => {
        const bucket = bucketOf(agentId, key);
        expect(Number.isInteger(bucket) && bucket >= 0 && bucket < BUCKETS).toBe(true);
        expect(bucketOf(agentId, key)).toBe(bucket);
      }),
      { numRuns: 200 },
    );
  });
});

/** Random splits over a few branches. */
const splitArbitrary = randomSplits(6);

function countsOf(table: ReturnType<typeof freshBucketTable>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const index of table.branchOf) {
    const id = table.branchIds[index];
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

describe('bucket tables', () => {
  it('gives each branch percentage × 100 buckets, rounded by largest remainder, 10,000 in all', () => {
    fc.assert(
      fc.property(splitArbitrary, (split) => {
        const counts = bucketCounts(split);
        expect([...counts.values()].reduce((sum, count) => sum + count, 0)).toBe(BUCKETS);
        for (const item of split) expect(Math.abs((counts.get(item.branchId) ?? 0) - item.percentage * 100)).toBeLessThan(1);
        const table = freshBucketTable(split);
        const actual = countsOf(table);
        for (const item of split) expect(actual.get(item.branchId) ?? 0).toBe(counts.get(item.branchId));
      }),
      { numRuns: 200 },
    );
    const thirds = bucketCounts([
      { branchId: 'a', percentage: 100 / 3 },
      { branchId: 'b', percentage: 100 / 3 },
      { branchId: 'c', percentage: 100 / 3 },
    ]);
    expect([...thirds.values()]).toEqual([3334, 3333, 3333]);
  });

  it('gives the extra buckets to the largest remainders of the exact decimal shares, ties to the branch listed first', () => {
    // Shares in thousandths of a percent: a branch's exact count is thousandths / 10 buckets, so
    // the rule can be computed here in integers, free of floating-point noise.
    const largestRemainder = (thousandths: number[]): number[] => {
      const counts = thousandths.map((share) => Math.floor(share / 10));
      const missing = BUCKETS - counts.reduce((sum, count) => sum + count, 0);
      const order = thousandths.map((_, index) => index).sort((a, b) => (thousandths[b] % 10) - (thousandths[a] % 10) || a - b);
      for (const index of order.slice(0, missing)) counts[index]++;
      return counts;
    };
    const countsFor = (thousandths: number[]) =>
      [...bucketCounts(thousandths.map((share, index) => ({ branchId: `branch_${index}`, percentage: share / 1000 }))).values()];
    // Cuts of 100.000%; multiples of 0.005% often leave equal half-bucket remainders.
    const cut = fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 20_000 }).map((share) => share * 5));
    const shares = fc.array(cut, { minLength: 1, maxLength: 5 }).map((cuts) => {
      const sorted = [...cuts].sort((a, b) => a - b);
      return [...sorted, 100_000].map((at, index) => at - (index === 0 ? 0 : sorted[index - 1]));
    });
    fc.assert(
      fc.property(shares, (thousandths) => {
        expect(countsFor(thousandths)).toEqual(largestRemainder(thousandths));
      }),
      { numRuns: 500 },
    );
    // Half a bucket left on two branches: the first listed gets it, whichever order they come in.
    expect(countsFor([33_335, 33_335, 33_330])).toEqual([3334, 3333, 3333]);
    expect(countsFor([33_330, 33_335, 33_335])).toEqual([3333, 3334, 3333]);
    expect(countsFor([80_085, 19_915])).toEqual([8009, 1991]);
    expect(countsFor([19_915, 80_085])).toEqual([1992, 8008]);
    // Unequal remainders: the larger one, wherever it is listed.
    expect(countsFor([33_334, 33_336, 33_330])).toEqual([3333, 3334, 3333]);
    expect(countsFor([33_336, 33_334, 33_330])).toEqual([3334, 3333, 3333]);
  });

  it('moves the fewest conversations possible between any two splits: half the L1 distance', () => {
    fc.assert(
      fc.property(splitArbitrary, splitArbitrary, (first, second) => {
        const before = freshBucketTable(first);
        const after = nextBucketTable(before, second);
        const oldCounts = bucketCounts(first);
        const newCounts = bucketCounts(second);
        const ids = new Set([...oldCounts.keys(), ...newCounts.keys()]);
        let mustMove = 0;
        let halfL1 = 0;
        for (const id of ids) {
          mustMove += Math.max(0, (oldCounts.get(id) ?? 0) - (newCounts.get(id) ?? 0));
          halfL1 += Math.abs((first.find((item) => item.branchId === id)?.percentage ?? 0) - (second.find((item) => item.branchId === id)?.percentage ?? 0)) / 2;
        }
        // Exactly the buckets that have to move, which is half the L1 distance to within one bucket per branch.
        expect(movedBuckets(before, after)).toBe(mustMove);
        expect(Math.abs(mustMove / 100 - halfL1)).toBeLessThanOrEqual(ids.size / 100);
        // And the new table has the new split's counts.
        for (const [id, count] of newCounts) expect(countsOf(after).get(id) ?? 0).toBe(count);
      }),
      { numRuns: 200 },
    );
  });

  it('rolls back to the previous split exactly: every conversation returns to its branch, still moving the minimum', () => {
    fc.assert(
      fc.property(splitArbitrary, splitArbitrary, splitArbitrary, (start, first, second) => {
        const earlier = nextBucketTable(freshBucketTable(start), first);
        const current = nextBucketTable(earlier, second);
        const rolledBack = nextBucketTable(current, first, earlier);
        expect(rolledBack.branchOf).toEqual(earlier.branchOf);
        expect(rolledBack.branchIds).toEqual(earlier.branchIds);
        expect(movedBuckets(current, rolledBack)).toBe(movedBuckets(current, nextBucketTable(current, first)));
      }),
      { numRuns: 150 },
    );
  });

  it('names every bucket that moves by its pair of branches: they add up to the moved buckets and turn the old counts into the new', () => {
    fc.assert(
      fc.property(splitArbitrary, splitArbitrary, (first, second) => {
        const before = freshBucketTable(first);
        const after = nextBucketTable(before, second);
        const movements = bucketMovements(before, after);
        expect(movements.reduce((sum, movement) => sum + movement.buckets, 0)).toBe(movedBuckets(before, after));
        const counts = bucketsPerBranch(before);
        for (const { from, to, buckets } of movements) {
          expect(from).not.toBe(to);
          expect(buckets).toBeGreaterThan(0);
          counts.set(from, counts.get(from)! - buckets);
          counts.set(to, (counts.get(to) ?? 0) + buckets);
        }
        const expected = bucketsPerBranch(after);
        for (const [id, count] of counts) expect(count, id).toBe(expected.get(id) ?? 0);
        const pairs = movements.map((movement) => `${movement.from}>${movement.to}`);
        expect(new Set(pairs).size).toBe(pairs.length);
      }),
      { numRuns: 100 },
    );
  });

  it('lists movements largest first: 90/10 to 55/5/40 moves 35% main→c and 5% b→c, nothing else', () => {
    const canary = freshBucketTable([
      { branchId: 'main', percentage: 90 },
      { branchId: 'b', percentage: 10 },
    ]);
    const next = nextBucketTable(canary, [
      { branchId: 'main', percentage: 55 },
      { branchId: 'b', percentage: 5 },
      { branchId: 'c', percentage: 40 },
    ]);
    expect(bucketMovements(canary, next)).toEqual([
      { from: 'main', to: 'c', buckets: 3_500 },
      { from: 'b', to: 'c', buckets: 500 },
    ]);
    expect(bucketsPerBranch(next)).toEqual(new Map([['main', 5_500], ['b', 500], ['c', 4_000]]));
  });

  it('keeps every conversation where it is when only a share grows from zero and shrinks elsewhere', () => {
    const main = freshBucketTable([{ branchId: 'main', percentage: 100 }]);
    const canary = nextBucketTable(main, [
      { branchId: 'main', percentage: 90 },
      { branchId: 'canary', percentage: 10 },
    ]);
    expect(movedBuckets(main, canary)).toBe(1_000);
    const wider = nextBucketTable(canary, [
      { branchId: 'main', percentage: 75 },
      { branchId: 'canary', percentage: 25 },
    ]);
    // Conversations already on the canary stay there; 15% more join it.
    expect(movedBuckets(canary, wider)).toBe(1_500);
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      if (canary.branchIds[canary.branchOf[bucket]] === 'canary') expect(wider.branchIds[wider.branchOf[bucket]]).toBe('canary');
    }
    const back = nextBucketTable(wider, [{ branchId: 'main', percentage: 100 }]);
    expect(movedBuckets(wider, back)).toBe(2_500);
  });

  it('routes 100,000 random conversations within ±1 percentage point of each share', () => {
    const split = [
      { branchId: 'main', percentage: 70 },
      { branchId: 'b', percentage: 20 },
      { branchId: 'c', percentage: 9.5 },
      { branchId: 'd', percentage: 0.5 },
    ];
    const table = freshBucketTable(split);
    const seen = new Map<string, number>();
    const agentId = 'agent_01m89pr0fy6w085wdrfph1rv7psd';
    for (let i = 0; i < 100_000; i++) {
      const branch = routeToBranch(table, agentId, randomUUID());
      seen.set(branch, (seen.get(branch) ?? 0) + 1);
    }
    for (const item of split) expect(Math.abs(((seen.get(item.branchId) ?? 0) / 100_000) * 100 - item.percentage)).toBeLessThan(1);
  });

  it('routes deterministically: the same key, the same branch, while the split stands', () => {
    fc.assert(
      fc.property(splitArbitrary, fc.string(), (split, key) => {
        const table = freshBucketTable(split);
        const stored = decodeBucketTable(table.branchIds, encodeBucketTable(table));
        expect(routeToBranch(stored, 'agent_a', key)).toBe(routeToBranch(table, 'agent_a', key));
      }),
      { numRuns: 200 },
    );
  });

  it('stores a table compactly and reads it back exactly', () => {
    fc.assert(
      fc.property(splitArbitrary, splitArbitrary, splitArbitrary, (a, b, c) => {
        const table = nextBucketTable(nextBucketTable(freshBucketTable(a), b), c);
        const text = encodeBucketTable(table);
        expect(decodeBucketTable(table.branchIds, text).branchOf).toEqual(table.branchOf);
      }),
      { numRuns: 40 },
    );
    expect(encodeBucketTable(freshBucketTable([{ branchId: 'main', percentage: 100 }]))).toBe('0*10000');
    expect(() => decodeBucketTable(['a'], '0*9999')).toThrow('10000');
  });
});
