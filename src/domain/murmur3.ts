/**
 * MurmurHash3 x86_32 over UTF-8 bytes (decisions.md D15). Hashes the bytes, not UTF-16 code
 * units: `murmurhash-js` and `imurmurhash` hash code units and disagree on `agent_x:café`.
 * ASCII strings take a fast path without encoding.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const encoder = new TextEncoder();

export function murmur3Bytes(bytes: Uint8Array, seed = 0): number {
  let h = seed >>> 0;
  const length = bytes.length;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) h = mixBlock(h, bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
  let tail = 0;
  for (let i = blocks; i < length; i++) tail |= bytes[i] << (8 * (i - blocks));
  return finalize(length & 3 ? mixTail(h, tail) : h, length);
}

/** The same hash for a string, as the UTF-8 bytes of it. */
export function murmur3(text: string, seed = 0): number {
  return isAscii(text) ? murmur3Ascii(text, seed) : murmur3Bytes(encoder.encode(text), seed);
}

/**
 * Two hashes of one text with two seeds, `murmur3(text, seedA)` and `murmur3(text, seedB)`, read
 * in one pass for ASCII: a 64-bit key for the unit maps of experiments. Written to `out`.
 */
export function murmur3Pair(text: string, seedA: number, seedB: number, out: Uint32Array): void {
  if (!isAscii(text)) {
    const bytes = encoder.encode(text);
    murmur3PairBytes(bytes, 0, bytes.length, seedA, seedB, out);
    return;
  }
  let a = seedA >>> 0;
  let b = seedB >>> 0;
  const length = text.length;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    const block = asciiBlock(text, i);
    a = mixBlock(a, block);
    b = mixBlock(b, block);
  }
  let tail = 0;
  for (let i = blocks; i < length; i++) tail |= text.charCodeAt(i) << (8 * (i - blocks));
  out[0] = finalize(length & 3 ? mixTail(a, tail) : a, length);
  out[1] = finalize(length & 3 ? mixTail(b, tail) : b, length);
}

/**
 * `murmur3Pair` of the text whose UTF-8 bytes are `bytes[start, end)`: the same two hashes, from
 * the bytes as they are (no string, no copy).
 */
export function murmur3PairBytes(bytes: Uint8Array, start: number, end: number, seedA: number, seedB: number, out: Uint32Array): void {
  let a = seedA >>> 0;
  let b = seedB >>> 0;
  const length = end - start;
  const blocksEnd = start + (length & ~3);
  for (let i = start; i < blocksEnd; i += 4) {
    const block = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    a = mixBlock(a, block);
    b = mixBlock(b, block);
  }
  let tail = 0;
  for (let i = blocksEnd; i < end; i++) tail |= bytes[i] << (8 * (i - blocksEnd));
  out[0] = finalize(length & 3 ? mixTail(a, tail) : a, length);
  out[1] = finalize(length & 3 ? mixTail(b, tail) : b, length);
}

/** ASCII: one byte per code unit, so code units are the bytes. */
function murmur3Ascii(text: string, seed: number): number {
  let h = seed >>> 0;
  const length = text.length;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) h = mixBlock(h, asciiBlock(text, i));
  let tail = 0;
  for (let i = blocks; i < length; i++) tail |= text.charCodeAt(i) << (8 * (i - blocks));
  return finalize(length & 3 ? mixTail(h, tail) : h, length);
}

/** Four ASCII characters from `i` as a little-endian block. */
function asciiBlock(text: string, i: number): number {
  return text.charCodeAt(i) | (text.charCodeAt(i + 1) << 8) | (text.charCodeAt(i + 2) << 16) | (text.charCodeAt(i + 3) << 24);
}

function scramble(block: number): number {
  const k = Math.imul(block, C1);
  return Math.imul((k << 15) | (k >>> 17), C2);
}

function mixBlock(hash: number, block: number): number {
  const h = hash ^ scramble(block);
  return (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
}

/** The last 1–3 bytes, little-endian. */
function mixTail(hash: number, tail: number): number {
  return hash ^ scramble(tail);
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * `murmur3(prefix + text)` for many texts after one prefix, with the prefix's blocks mixed once
 * and no string built per call: the routed read hashes `"{agent_id}:"` and a fresh routing key
 * for every request.
 */
export class Murmur3Prefix {
  private readonly ascii: boolean;
  /** The hash after the prefix's whole 4-byte blocks. */
  private readonly hash: number = 0;
  /** The prefix's last 0–3 bytes, little-endian, waiting for the text to complete their block. */
  private readonly pending: number = 0;
  private readonly pendingLength: number = 0;

  constructor(private readonly prefix: string) {
    this.ascii = isAscii(prefix);
    if (!this.ascii) return;
    const blocks = prefix.length & ~3;
    for (let i = 0; i < blocks; i += 4) this.hash = mixBlock(this.hash, asciiBlock(prefix, i));
    for (let i = blocks; i < prefix.length; i++) this.pending |= prefix.charCodeAt(i) << (8 * (i - blocks));
    this.pendingLength = prefix.length - blocks;
  }

  /** Equal to `murmur3(prefix + text)`. */
  of(text: string): number {
    if (!this.ascii || !isAscii(text)) return murmur3(this.prefix + text);
    let h = this.hash;
    let k = this.pending;
    let n = this.pendingLength;
    let i = 0;
    if (n > 0) {
      while (n < 4 && i < text.length) k |= text.charCodeAt(i++) << (8 * n++);
      if (n === 4) {
        h = mixBlock(h, k);
        k = 0;
        n = 0;
      }
    }
    const blocksEnd = i + ((text.length - i) & ~3);
    for (; i < blocksEnd; i += 4) h = mixBlock(h, asciiBlock(text, i));
    while (i < text.length) k |= text.charCodeAt(i++) << (8 * n++);
    return finalize(n > 0 ? mixTail(h, k) : h, this.prefix.length + text.length);
  }
}

function finalize(hash: number, length: number): number {
  let h = hash ^ length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
