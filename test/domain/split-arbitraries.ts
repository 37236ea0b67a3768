import fc from 'fast-check';

import type { SplitItem } from '../../src/domain/traffic-split.js';

/** Random splits over up to `maxBranches` branches, in percentages with up to two decimals, totalling 100. */
export function splitArbitrary(maxBranches: number): fc.Arbitrary<SplitItem[]> {
  return fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: maxBranches }).map((weights): SplitItem[] => {
    const total = weights.reduce((sum, weight) => sum + weight, 0) || 1;
    const hundredths = weights.map((weight) => Math.floor((weight * 10_000) / total));
    hundredths[0] += 10_000 - hundredths.reduce((sum, value) => sum + value, 0);
    return hundredths.map((value, index) => ({ branchId: `branch_${index}`, percentage: value / 100 }));
  });
}
