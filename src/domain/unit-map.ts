import { murmur3 } from './murmur3.js';

// Two seeds of MurmurHash3: a unit is known by 64 bits of hash. Two units of one agent collide
// with a chance of about n² / 2⁶⁵ (n = 1,000,000: 3 in 100,000,000); the second is then taken
// for the first (README, Guarantees).
const SEED_LOW = 0x9747b28c;
const SEED_HIGH = 0x5bd1e995;

/** Words a slot takes: the hash's two halves, the arm plus one (0: empty), the day. */
const WORDS = 4;
const MIN_SLOTS = 1024;

/**
 * A map from unit (a conversation id or routing key) to the arm and day of its exposure, for
 * millions of units: an open-addressing table over one Uint32Array (16 bytes a slot, at most half
 * full, so 32 bytes a unit), keyed by a 64-bit hash of the unit. No strings are kept, and the
 * garbage collector sees one object however many units it holds.
 */
export class UnitMap {
  private slots: Uint32Array;
  private mask: number;
  private count = 0;
  /** Where the last `find` stopped: the unit's slot, or the empty slot it would take. */
  private at = 0;
  private low = 0;
  private high = 0;

  constructor(expected = 0) {
    let slots = MIN_SLOTS;
    while (slots < expected * 2) slots *= 2;
    this.slots = new Uint32Array(slots * WORDS);
    this.mask = slots - 1;
  }

  get size(): number {
    return this.count;
  }

  /** What the table takes in memory. */
  get bytes(): number {
    return this.slots.byteLength;
  }

  /** The unit's arm, or -1 when it has none on or after `minDay`. */
  arm(unit: string, minDay = -Infinity): number {
    if (!this.find(unit)) return -1;
    const base = this.at * WORDS;
    return this.slots[base + 3] >= minDay ? this.slots[base + 2] - 1 : -1;
  }

  /** The day of the unit's exposure, or -1 (as `arm`). */
  day(unit: string, minDay = -Infinity): number {
    if (!this.find(unit)) return -1;
    const day = this.slots[this.at * WORDS + 3];
    return day >= minDay ? day : -1;
  }

  /**
   * Records the unit's exposure unless it has one on or after `minDay` (the first exposure is the
   * unit's; one from before `minDay` has expired and is replaced). Whether it was recorded.
   */
  add(unit: string, arm: number, day: number, minDay = -Infinity): boolean {
    if (this.find(unit)) {
      const base = this.at * WORDS;
      if (this.slots[base + 3] >= minDay) return false;
      this.slots[base + 2] = arm + 1;
      this.slots[base + 3] = day;
      return true;
    }
    if ((this.count + 1) * 2 > this.mask + 1) {
      this.grow();
      this.find(unit);
    }
    const base = this.at * WORDS;
    this.slots[base] = this.low;
    this.slots[base + 1] = this.high;
    this.slots[base + 2] = arm + 1;
    this.slots[base + 3] = day;
    this.count++;
    return true;
  }

  /** Linear probing from the hash: true when the unit's slot was found (`at` is it). */
  private find(unit: string): boolean {
    this.low = murmur3(unit, SEED_LOW) >>> 0;
    this.high = murmur3(unit, SEED_HIGH) >>> 0;
    const slots = this.slots;
    let index = this.low & this.mask;
    for (;;) {
      const base = index * WORDS;
      if (slots[base + 2] === 0) {
        this.at = index;
        return false;
      }
      if (slots[base] === this.low && slots[base + 1] === this.high) {
        this.at = index;
        return true;
      }
      index = (index + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    const slots = (this.mask + 1) * 2;
    this.slots = new Uint32Array(slots * WORDS);
    this.mask = slots - 1;
    for (let base = 0; base < old.length; base += WORDS) {
      if (old[base + 2] === 0) continue;
      let index = old[base] & this.mask;
      while (this.slots[index * WORDS + 2] !== 0) index = (index + 1) & this.mask;
      this.slots.set(old.subarray(base, base + WORDS), index * WORDS);
    }
  }
}
