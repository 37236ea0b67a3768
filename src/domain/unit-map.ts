import { murmur3Pair, murmur3PairBytes } from './murmur3.js';

// Two seeds of MurmurHash3: a unit is known by 64 bits of hash. Two units of one agent collide
// with a chance of about n² / 2⁶⁵ (n = 1,000,000: 3 in 100,000,000); the second is then taken
// for the first (README, Guarantees).
const SEED_LOW = 0x9747b28c;
const SEED_HIGH = 0x5bd1e995;

/** Words a slot takes: the hash's two halves, the arm plus one (0: empty), the day. */
const WORDS = 4;
const MIN_SLOTS = 1024;

/** The last key `UnitMap.key` computed: its two halves. */
const KEY = new Uint32Array(2);

/**
 * A map from unit (a conversation id or routing key) to the arm and day of its exposure, for
 * millions of units: an open-addressing table over one Uint32Array (16 bytes a slot, at most half
 * full, so 32 bytes a unit), keyed by a 64-bit hash of the unit. No strings are kept, and the
 * garbage collector sees one object however many units it holds. Callers that look a unit up in
 * several maps hash it once (`UnitMap.key`) and pass the halves.
 */
export class UnitMap {
  /** `stateOfKey`: the unit has no exposure. */
  static readonly ABSENT = -1;
  /** `stateOfKey`: the unit has an exposure, from before the day asked for. */
  static readonly EXPIRED = -2;

  private slots: Uint32Array;
  private mask: number;
  private count = 0;
  /** Where the last `find` stopped: the unit's slot, or the empty slot it would take. */
  private at = 0;

  constructor(expected = 0) {
    let slots = MIN_SLOTS;
    while (slots < expected * 2) slots *= 2;
    this.slots = new Uint32Array(slots * WORDS);
    this.mask = slots - 1;
  }

  /** The unit's 64-bit key, in a shared array valid until the next call. */
  static key(unit: string): Uint32Array {
    murmur3Pair(unit, SEED_LOW, SEED_HIGH, KEY);
    return KEY;
  }

  /** `UnitMap.key` of the unit whose UTF-8 bytes are `bytes[start, end)`, in the same shared array. */
  static keyOfBytes(bytes: Uint8Array, start: number, end: number): Uint32Array {
    murmur3PairBytes(bytes, start, end, SEED_LOW, SEED_HIGH, KEY);
    return KEY;
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
    const key = UnitMap.key(unit);
    return this.armOfKey(key[0], key[1], minDay);
  }

  /** The day of the unit's exposure, or -1 (as `arm`). */
  day(unit: string, minDay = -Infinity): number {
    const key = UnitMap.key(unit);
    return this.dayOfKey(key[0], key[1], minDay);
  }

  /**
   * Records the unit's exposure unless it has one on or after `minDay` (the first exposure is the
   * unit's; one from before `minDay` has expired and is replaced). Whether it was recorded.
   */
  add(unit: string, arm: number, day: number, minDay = -Infinity): boolean {
    const key = UnitMap.key(unit);
    return this.addKey(key[0], key[1], arm, day, minDay);
  }

  armOfKey(low: number, high: number, minDay = -Infinity): number {
    if (!this.find(low, high)) return -1;
    const base = this.at * WORDS;
    return this.slots[base + 3] >= minDay ? this.slots[base + 2] - 1 : -1;
  }

  /** The unit's arm when it has an exposure on or after `minDay`; else `ABSENT` or `EXPIRED`. */
  stateOfKey(low: number, high: number, minDay: number): number {
    if (!this.find(low, high)) return UnitMap.ABSENT;
    const base = this.at * WORDS;
    return this.slots[base + 3] >= minDay ? this.slots[base + 2] - 1 : UnitMap.EXPIRED;
  }

  dayOfKey(low: number, high: number, minDay = -Infinity): number {
    if (!this.find(low, high)) return -1;
    const day = this.slots[this.at * WORDS + 3];
    return day >= minDay ? day : -1;
  }

  addKey(low: number, high: number, arm: number, day: number, minDay = -Infinity): boolean {
    if (this.find(low, high)) {
      const base = this.at * WORDS;
      if (this.slots[base + 3] >= minDay) return false;
      this.slots[base + 2] = arm + 1;
      this.slots[base + 3] = day;
      return true;
    }
    if ((this.count + 1) * 2 > this.mask + 1) {
      this.grow();
      this.find(low, high);
    }
    const base = this.at * WORDS;
    this.slots[base] = low;
    this.slots[base + 1] = high;
    this.slots[base + 2] = arm + 1;
    this.slots[base + 3] = day;
    this.count++;
    return true;
  }

  /** Adds every unit of `other` as `add` would, in no particular order. */
  addAll(other: UnitMap, minDay = -Infinity): void {
    const slots = other.slots;
    for (let base = 0; base < slots.length; base += WORDS) {
      if (slots[base + 2] !== 0) this.addKey(slots[base], slots[base + 1], slots[base + 2] - 1, slots[base + 3], minDay);
    }
  }

  /** Linear probing from the hash: true when the unit's slot was found (`at` is it). */
  private find(low: number, high: number): boolean {
    const slots = this.slots;
    let index = low & this.mask;
    for (;;) {
      const base = index * WORDS;
      if (slots[base + 2] === 0) {
        this.at = index;
        return false;
      }
      if (slots[base] === low && slots[base + 1] === high) {
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
      const to = index * WORDS;
      this.slots[to] = old[base];
      this.slots[to + 1] = old[base + 1];
      this.slots[to + 2] = old[base + 2];
      this.slots[to + 3] = old[base + 3];
    }
  }
}
