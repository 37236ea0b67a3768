import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { LruCache } from '../../src/domain/lru.js';

type Operation = { kind: 'set'; key: number; value: number } | { kind: 'get'; key: number } | { kind: 'delete'; key: number };

const key = fc.integer({ min: 0, max: 6 });
const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key, value: fc.integer() }),
  fc.record({ kind: fc.constant('get' as const), key }),
  fc.record({ kind: fc.constant('delete' as const), key }),
);

describe('LruCache', () => {
  it('evicts the entry set longest ago once it is over capacity', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    expect(cache.size).toBe(2);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBe(2);
    expect(cache.get('c')).toBe(3);
  });

  it('counts a read as a use: the entry read is kept, the other one goes', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1);
    cache.set('c', 3);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(1);
    expect(cache.get('c')).toBe(3);
  });

  it('counts setting an existing key as a use, replacing its value without growing', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('a', 10);
    expect(cache.size).toBe(2);
    cache.set('c', 3);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(10);
  });

  it('does not count a miss as a use', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.size).toBe(1);
  });

  it('forgets deleted entries and all entries on clear', () => {
    const cache = new LruCache<string, number>(3);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.delete('a');
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(1);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.get('b')).toBeUndefined();
  });

  it('behaves like a list ordered by last use, cut to its capacity', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(operation, { maxLength: 60 }), (capacity, operations) => {
        const cache = new LruCache<number, number>(capacity);
        // Most recently used last.
        let model: [number, number][] = [];
        for (const op of operations) {
          const index = model.findIndex(([k]) => k === op.key);
          if (op.kind === 'set') {
            cache.set(op.key, op.value);
            if (index >= 0) model.splice(index, 1);
            model.push([op.key, op.value]);
            if (model.length > capacity) model = model.slice(1);
          } else if (op.kind === 'get') {
            const expected = index >= 0 ? model[index][1] : undefined;
            expect(cache.get(op.key)).toBe(expected);
            if (index >= 0) model.push(...model.splice(index, 1));
          } else {
            cache.delete(op.key);
            if (index >= 0) model.splice(index, 1);
          }
          expect(cache.size).toBe(model.length);
        }
        const remaining = new Map(model);
        for (let k = 0; k <= 6; k++) expect(cache.get(k)).toBe(remaining.get(k));
      }),
      { numRuns: 200 },
    );
  });

  it.each([false, true])('with a byte budget (keepOversized %s): drops least recently used entries until the bytes fit; an oversized one is kept alone or not at all', (keepOversized) => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.array(operation, { maxLength: 60 }), (maxBytes, operations) => {
        // A value's size is its absolute value modulo 25.
        const sizeOf = (value: number) => Math.abs(value) % 25;
        const cache = new LruCache<number, number>({ maxEntries: 100, maxBytes, sizeOf, keepOversized });
        let model: [number, number][] = [];
        const bytes = () => model.reduce((sum, [, value]) => sum + sizeOf(value), 0);
        for (const op of operations) {
          const index = model.findIndex(([k]) => k === op.key);
          if (op.kind === 'set') {
            cache.set(op.key, op.value);
            if (index >= 0) model.splice(index, 1);
            const oversized = sizeOf(op.value) > maxBytes;
            if (!oversized || keepOversized) model.push([op.key, op.value]);
            // Oldest first, never the one just set.
            while (bytes() > maxBytes && model.length > 1) model = model.slice(1);
          } else if (op.kind === 'get') {
            expect(cache.get(op.key)).toBe(index >= 0 ? model[index][1] : undefined);
            if (index >= 0) model.push(...model.splice(index, 1));
          } else {
            cache.delete(op.key);
            if (index >= 0) model.splice(index, 1);
          }
          expect(cache.bytes).toBe(bytes());
          if (model.length !== 1 || !keepOversized) expect(cache.bytes).toBeLessThanOrEqual(maxBytes);
          expect(cache.size).toBe(model.length);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('counts hits and misses', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    cache.get('a');
    cache.get('a');
    cache.get('b');
    expect([cache.hits, cache.misses]).toEqual([2, 1]);
  });
});
