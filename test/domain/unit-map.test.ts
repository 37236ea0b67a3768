import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { UnitMap } from '../../src/domain/unit-map.js';

describe('UnitMap', () => {
  it('agrees with a Map for any sequence of additions and lookups, across growth, with expiry', () => {
    const unit = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 6 }), fc.integer({ min: 0, max: 3_000 }).map((n) => `conv_${n}`));
    const step = fc.record({ unit, arm: fc.integer({ min: 0, max: 70_000 }), day: fc.integer({ min: 0, max: 30 }), minDay: fc.integer({ min: 0, max: 30 }) });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 3_000 }), (steps) => {
        const map = new UnitMap();
        const model = new Map<string, { arm: number; day: number }>();
        for (const { unit: key, arm, day, minDay } of steps) {
          const known = model.get(key);
          const live = known !== undefined && known.day >= minDay;
          expect(map.arm(key, minDay)).toBe(live ? known.arm : -1);
          expect(map.day(key, minDay)).toBe(live ? known.day : -1);
          const hashed = UnitMap.key(key);
          expect(map.stateOfKey(hashed[0], hashed[1], minDay)).toBe(live ? known.arm : known ? UnitMap.EXPIRED : UnitMap.ABSENT);
          expect(map.add(key, arm, day, minDay)).toBe(!live);
          if (!live) model.set(key, { arm, day });
        }
        expect(map.size).toBe(model.size);
        for (const [key, { arm, day }] of model) {
          expect(map.arm(key)).toBe(arm);
          expect(map.day(key)).toBe(day);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('keeps 1,000,000 units in 32 MiB, and finds each', () => {
    const map = new UnitMap();
    let refused = 0;
    for (let i = 0; i < 1_000_000; i++) if (!map.add(`conv_${i.toString(36)}`, i % 7, 20_000 + (i % 3))) refused++;
    expect(refused).toBe(0);
    expect(map.size).toBe(1_000_000);
    expect(map.bytes).toBe(32 * 1024 * 1024);
    let wrong = 0;
    for (let i = 0; i < 1_000_000; i++) if (map.arm(`conv_${i.toString(36)}`) !== i % 7 || map.day(`conv_${i.toString(36)}`) !== 20_000 + (i % 3)) wrong++;
    expect(wrong).toBe(0);
    expect(map.arm('conv_unknown')).toBe(-1);
  });

  it('sizes its table for what it is told to expect', () => {
    expect(new UnitMap().bytes).toBe(1024 * 16);
    expect(new UnitMap(5_000).bytes).toBe(16_384 * 16);
  });
});
