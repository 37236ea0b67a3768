import { describe, expect, it } from 'vitest';

import { OVER_BUDGET, spend, withinBudget } from '../../src/domain/work-budget.js';

describe('withinBudget', () => {
  it('returns what the work returns when it fits, to the last unit', () => {
    expect(
      withinBudget(3, () => {
        spend();
        spend(2);
        return 'done';
      }),
    ).toBe('done');
  });

  it('stops the work at the first unit over the budget and says so', () => {
    let reached = 0;
    const outcome = withinBudget(2, () => {
      for (let i = 0; i < 10; i++) {
        spend();
        reached++;
      }
      return 'done';
    });
    expect(outcome).toBe(OVER_BUDGET);
    expect(reached).toBe(2);
  });

  it('lets any other error through', () => {
    const failure = new Error('not about the budget');
    expect(() =>
      withinBudget(5, () => {
        throw failure;
      }),
    ).toThrow(failure);
  });

  it('gives the outer budget back when it ends, whether the work fitted or not', () => {
    // Outside any budget, work is unbounded.
    expect(withinBudget(1, () => spend(1))).toBeUndefined();
    expect(withinBudget(1, () => spend(2))).toBe(OVER_BUDGET);
    expect(() => spend(1_000_000)).not.toThrow();
    // Inside one, a nested budget neither adds to the outer one nor uses it up.
    const outer = withinBudget(5, () => {
      spend(2);
      expect(withinBudget(10, () => spend(4))).toBeUndefined();
      spend(3); // the 3 units left
      spend(1);
      return 'not reached';
    });
    expect(outer).toBe(OVER_BUDGET);
  });
});
