import fc from 'fast-check';
import reference from 'murmurhash3js-revisited';
import { describe, expect, it } from 'vitest';

import { murmur3, murmur3Bytes } from '../../src/domain/murmur3.js';

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
});
