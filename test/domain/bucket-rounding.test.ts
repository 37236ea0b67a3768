import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { LruCache } from '../../src/domain/lru.js';
import {
  AgentBuckets,
  BUCKETS,
  bucketCounts,
  type BucketTable,
  freshBucketTable,
  movedBuckets,
  nextBucketTable,
  routeToBranch,
  type SplitItem,
} from '../../src/domain/traffic-split.js';
import { splitArbitrary } from './split-arbitraries.js';

// Edges of the bucket tables that the properties of traffic-split.test.ts do not reach (found by
// mutation testing, docs/testing.md): remainders that are not whole hundredths, a preferred table
// of another split, and the routed read's own `AgentBuckets.routeToBranch`.

const split = (...shares: [string, number][]): SplitItem[] => shares.map(([branchId, percentage]) => ({ branchId, percentage }));

function countsOf(table: BucketTable): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const index of table.branchOf) counts[table.branchIds[index]] = (counts[table.branchIds[index]] ?? 0) + 1;
  return counts;
}

describe('largest-remainder rounding of percentages to buckets', () => {
  // Percentages whose buckets are exact in binary floating point (eighths), so the expected counts
  // follow from the rule alone: floor every share, then one more bucket each, largest remainder
  // first, ties to the branch listed first.
  it.each([
    ['the larger remainder wins, wherever it is listed', split(['a', 12.34125], ['b', 87.65875]), [1234, 8766]],
    ['the larger remainder wins, even for the smaller share', split(['a', 0.01875], ['b', 99.98125]), [2, 9998]],
    ['an exact share gets no extra bucket; tied remainders go to the first listed', split(['a', 50], ['b', 0.125], ['c', 49.875]), [5000, 13, 4987]],
    ['the same, listed the other way round', split(['c', 49.875], ['b', 0.125], ['a', 50]), [4988, 12, 5000]],
    ['two extra buckets: the largest remainder, then the first of a tie', split(['a', 33.33625], ['b', 33.33625], ['c', 33.3275]), [3334, 3333, 3333]],
  ])('%s', (_, items, expected) => {
    const counts = bucketCounts(items);
    expect(items.map((item) => counts.get(item.branchId))).toEqual(expected);
    expect(expected.reduce((sum, count) => sum + count, 0)).toBe(BUCKETS);
    // The table built from the split has those counts.
    const table = countsOf(freshBucketTable(items));
    expect(items.map((item) => table[item.branchId] ?? 0)).toEqual(expected);
  });
});

describe('a new table that prefers an earlier one', () => {
  it('never gives a branch more buckets than the new split allows, whatever the preferred table says', () => {
    const allOn = (branch: string) => freshBucketTable(split([branch, 100]));
    // Previous and preferred agree on `a` everywhere; the new split leaves `a` 10%.
    const kept = nextBucketTable(allOn('a'), split(['a', 10], ['b', 90]), allOn('a'));
    expect(countsOf(kept)).toEqual({ a: 1_000, b: 9_000 });
    // Buckets freed from `c` are preferred on `a`, which has room for 1,000 of the 2,000.
    const moved = nextBucketTable(allOn('c'), split(['a', 10], ['b', 10], ['c', 80]), allOn('a'));
    expect(countsOf(moved)).toEqual({ a: 1_000, b: 1_000, c: 8_000 });
    expect(movedBuckets(allOn('c'), moved)).toBe(2_000);
  });

  it('has the new split’s counts and moves the minimum from the previous table, for any preferred table', () => {
    const splits = splitArbitrary(5);
    fc.assert(
      fc.property(splits, splits, splits, (before, after, preferredSplit) => {
        const previous = freshBucketTable(before);
        const preferred = nextBucketTable(freshBucketTable([...preferredSplit].reverse()), preferredSplit);
        const table = nextBucketTable(previous, after, preferred);
        const counts = bucketCounts(after);
        expect(countsOf(table)).toEqual(Object.fromEntries([...counts].filter(([, count]) => count > 0)));
        let mustMove = 0;
        const old = bucketCounts(before);
        for (const [id, count] of old) mustMove += Math.max(0, count - (counts.get(id) ?? 0));
        expect(movedBuckets(previous, table)).toBe(mustMove);
      }),
      { numRuns: 100 },
    );
  });
});

describe('AgentBuckets', () => {
  it('routes a key to the same branch as routeToBranch, for any agent and key', () => {
    const table = freshBucketTable(split(['a', 20], ['b', 30.5], ['c', 49.5]));
    fc.assert(
      fc.property(fc.string(), fc.string(), (agentId, key) => {
        expect(new AgentBuckets(agentId).routeToBranch(table, key)).toBe(routeToBranch(table, agentId, key));
      }),
      { numRuns: 200 },
    );
    // Each branch is reached: the answer depends on the key.
    const buckets = new AgentBuckets('agent_1');
    expect(new Set(Array.from({ length: 200 }, (_, i) => buckets.routeToBranch(table, `conversation-${i}`)))).toEqual(new Set(['a', 'b', 'c']));
  });
});

describe('LruCache byte budget', () => {
  it('refuses a value larger than the whole budget without dropping what it holds', () => {
    const cache = new LruCache<string, string>({ maxEntries: 10, maxBytes: 10, sizeOf: (value) => value.length });
    cache.set('a', 'aaaa');
    cache.set('b', 'bbbb');
    cache.set('c', 'c'.repeat(11));
    expect([cache.peek('a'), cache.peek('b'), cache.peek('c')]).toEqual(['aaaa', 'bbbb', undefined]);
    expect([cache.size, cache.bytes]).toEqual([2, 8]);
    // Replacing a held value with an oversized one drops the old value.
    cache.set('a', 'a'.repeat(11));
    expect([cache.peek('a'), cache.size, cache.bytes]).toEqual([undefined, 1, 4]);
  });
});
