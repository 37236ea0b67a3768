import fc from 'fast-check';
import reference from 'murmurhash3js-revisited';
import { describe, expect, it } from 'vitest';

import { murmur3, murmur3Bytes, murmur3Pair, murmur3PairBytes } from '../../src/domain/murmur3.js';

// The routing hash always runs with seed 0, but `murmur3` and `murmur3Bytes` take any seed: hold
// them to the published MurmurHash3 x86_32 vectors with seeds, and to the byte-based reference.

const encoder = new TextEncoder();

/** Widely published MurmurHash3 x86_32 vectors: text, seed, hash. */
const SEEDED_VECTORS: [string, number, number][] = [
  ['', 1, 0x514e28b7],
  ['', 0xffffffff, 0x81f16f39],
  ['\0\0\0\0', 0, 0x2362f9de],
  ['aaaa', 0x9747b28c, 0x5a97808a],
  ['Hello, world!', 0x9747b28c, 0x24884cba],
  ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
];

describe('murmur3 with a seed', () => {
  it.each(SEEDED_VECTORS)('%j with seed %d hashes to %d', (text, seed, hash) => {
    expect(murmur3(text, seed)).toBe(hash);
    expect(murmur3Bytes(encoder.encode(text), seed)).toBe(hash);
    const pair = new Uint32Array(2);
    murmur3Pair(text, seed, 0, pair);
    expect(pair[0]).toBe(hash);
    const bytes = encoder.encode(`x${text}yz`);
    murmur3PairBytes(bytes, 1, bytes.length - 2, 0, seed, pair);
    expect(pair[1]).toBe(hash);
  });

  it('agrees with the byte-based reference for any seed, ASCII or not', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 })), fc.nat({ max: 0xffffffff }), (text, seed) => {
        const expected = reference.x86.hash32(encoder.encode(text), seed) >>> 0;
        expect(murmur3(text, seed)).toBe(expected);
        expect(murmur3Bytes(encoder.encode(text), seed)).toBe(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('hashes a text\'s bytes anywhere in a larger buffer as the text itself, with two seeds at once', () => {
    const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 20 }));
    fc.assert(
      fc.property(text, text, text, fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (before, unit, after, seedA, seedB) => {
        // Encoded apart (a lone surrogate at an edge would pair up with its neighbour's).
        const parts = [before, unit, after].map((part) => encoder.encode(part));
        const bytes = Buffer.concat(parts);
        const start = parts[0].length;
        const end = start + parts[1].length;
        const fromBytes = new Uint32Array(2);
        murmur3PairBytes(bytes, start, end, seedA, seedB, fromBytes);
        const fromText = new Uint32Array(2);
        murmur3Pair(unit, seedA, seedB, fromText);
        expect([...fromBytes]).toEqual([murmur3(unit, seedA), murmur3(unit, seedB)]);
        expect([...fromText]).toEqual([...fromBytes]);
      }),
      { numRuns: 300 },
    );
  });
});
