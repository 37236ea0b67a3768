import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  armEstimates,
  compareToBaseline,
  confidenceSequenceRadius,
  logDirichletMultinomialBayesFactor,
  logGamma,
  metricKindOf,
  MIN_VALUES_PER_ARM,
  mixtureRho,
  PLANNED_SAMPLE_SIZE,
  regressed,
  routedShares,
  sampleRatioMismatch,
  SRM_ALPHA,
  SRM_PRIOR_WEIGHT,
  type ArmCell,
  type Comparison,
  type DeploymentShares,
} from '../../src/domain/experiment-stats.js';

// ---------------------------------------------------------------------------------------------
// Helpers: a seeded generator (xorshift32: deterministic runs), units, and their cells.

function xorshift32(seed: number): () => number {
  // The seed is scrambled first (MurmurHash3's finalizer): from a small seed, xorshift's first
  // outputs would be tiny numbers.
  let state = Math.imul(seed ^ (seed >>> 16), 0x85ebca6b);
  state = Math.imul(state ^ (state >>> 13), 0xc2b2ae35);
  state = (state ^ (state >>> 16)) >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 4294967296;
  };
}

function gaussian(random: () => number): number {
  let u = 0;
  while (u === 0) u = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

interface Unit {
  deploymentId: string;
  branchId: string;
  y: number;
}

function splits(entries: Record<string, Record<string, number>>): DeploymentShares {
  return new Map(Object.entries(entries).map(([deploymentId, split]) => [deploymentId, new Map(Object.entries(split))]));
}

function cellsOf(units: readonly Unit[]): ArmCell[] {
  const cells = new Map<string, ArmCell>();
  for (const unit of units) {
    const key = `${unit.deploymentId}\u0000${unit.branchId}`;
    let cell = cells.get(key);
    if (!cell) {
      cell = { deploymentId: unit.deploymentId, branchId: unit.branchId, exposures: 0, n: 0, sum: 0, sumSquares: 0 };
      cells.set(key, cell);
    }
    cell.exposures++;
    cell.n++;
    cell.sum += unit.y;
    cell.sumSquares += unit.y * unit.y;
  }
  return [...cells.values()];
}

/** Running cells of a two-branch experiment in one deployment, as the ingestion keeps them. */
class TwoArms {
  readonly arms = {
    baseline: { n: 0, sum: 0, sumSquares: 0 },
    candidate: { n: 0, sum: 0, sumSquares: 0 },
  };

  constructor(private readonly deploymentId = 'dep_1') {}

  add(arm: 'baseline' | 'candidate', y: number): void {
    const cell = this.arms[arm];
    cell.n++;
    cell.sum += y;
    cell.sumSquares += y * y;
  }

  cells(): ArmCell[] {
    return (['baseline', 'candidate'] as const).map((branchId) => ({
      deploymentId: this.deploymentId,
      branchId,
      exposures: this.arms[branchId].n,
      ...this.arms[branchId],
    }));
  }
}

function twoWay(candidateShare: number, deploymentId = 'dep_1'): DeploymentShares {
  return splits({ [deploymentId]: { baseline: 1 - candidateShare, candidate: candidateShare } });
}

/** Sampling slack for a rate over `runs` independent experiments: three binomial standard deviations. */
function slack(rate: number, runs: number): number {
  return 3 * Math.sqrt((rate * (1 - rate)) / runs);
}

/**
 * The estimator written per unit, as the method states it (AIPW pseudo-outcomes with the branch's
 * mean in the deployment as the outcome model): the cells must give the same numbers.
 */
function referenceInterval(pseudoOutcomes: readonly number[], alpha: number) {
  const units = pseudoOutcomes.length;
  const mean = pseudoOutcomes.reduce((a, b) => a + b, 0) / units;
  const variance = Math.max(0, pseudoOutcomes.reduce((a, b) => a + b * b, 0) / units - mean * mean);
  const radius = confidenceSequenceRadius(units, Math.sqrt(variance), alpha, mixtureRho(alpha));
  return { mean, lower: mean - radius, upper: mean + radius };
}

function shareOf(shares: DeploymentShares, deploymentId: string, branchId: string): number {
  return shares.get(deploymentId)?.get(branchId) ?? 0;
}

function referenceArmPseudoOutcomes(units: readonly Unit[], shares: DeploymentShares, branchIds: readonly string[]) {
  const randomized = units.filter(
    (unit) => shareOf(shares, unit.deploymentId, unit.branchId) > 0 && branchIds.every((b) => shareOf(shares, unit.deploymentId, b) > 0),
  );
  const models = (branchId: string) => {
    const own = randomized.filter((unit) => unit.branchId === branchId);
    const fallback = own.reduce((a, unit) => a + unit.y, 0) / own.length;
    return (deploymentId: string) => {
      const inDeployment = own.filter((unit) => unit.deploymentId === deploymentId);
      return inDeployment.length === 0 ? fallback : inDeployment.reduce((a, unit) => a + unit.y, 0) / inDeployment.length;
    };
  };
  const modelOf = new Map(branchIds.map((b) => [b, models(b)]));
  const psi = (unit: Unit, branchId: string) => {
    const model = modelOf.get(branchId)!(unit.deploymentId);
    return unit.branchId === branchId ? model + (unit.y - model) / shareOf(shares, unit.deploymentId, branchId) : model;
  };
  return { randomized, psi };
}

function expectClose(actual: number | null | undefined, expected: number, tolerance = 1e-9): void {
  expect(actual).not.toBeNull();
  expect(Math.abs((actual as number) - expected)).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(expected)));
}

// ---------------------------------------------------------------------------------------------

describe('logGamma', () => {
  it('matches ln((x − 1)!) for whole numbers up to 170', () => {
    let logFactorial = 0;
    for (let x = 1; x <= 170; x++) {
      if (x > 1) logFactorial += Math.log(x - 1);
      expectClose(logGamma(x), logFactorial, 1e-13);
    }
  });

  it('matches Γ(½) = √π, Γ(x + 1) = xΓ(x) near 0, and Stirling for large x', () => {
    expectClose(logGamma(0.5), 0.5 * Math.log(Math.PI), 1e-14);
    for (const x of [1e-6, 0.01, 0.1, 0.3, 0.7, 2.5, 33.3]) expectClose(logGamma(x + 1), Math.log(x) + logGamma(x), 1e-12);
    for (const x of [1e4, 1e6, 1e8]) {
      const stirling = (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + 1 / (12 * x) - 1 / (360 * x ** 3);
      expectClose(logGamma(x), stirling, 1e-13);
    }
  });

  it('refuses x ≤ 0', () => {
    expect(() => logGamma(0)).toThrow(RangeError);
    expect(() => logGamma(-1)).toThrow(RangeError);
  });
});

describe('the confidence sequence', () => {
  it('is tightest near the planned sample size with the chosen ρ', () => {
    for (const alpha of [0.01, 0.05, 0.1]) {
      const rho = mixtureRho(alpha);
      const atPlan = confidenceSequenceRadius(PLANNED_SAMPLE_SIZE, 1, alpha, rho);
      for (const factor of [0.5, 0.8, 1.25, 2]) {
        expect(confidenceSequenceRadius(PLANNED_SAMPLE_SIZE, 1, alpha, rho * factor)).toBeGreaterThan(atPlan);
      }
    }
  });

  it('is wider than a fixed-horizon interval (the price of looking at any time) and shrinks as n grows', () => {
    const rho = mixtureRho(0.05);
    let previous = Infinity;
    for (const n of [30, 100, 1_000, 10_000, 100_000, 1_000_000]) {
      const radius = confidenceSequenceRadius(n, 1, 0.05, rho);
      expect(radius).toBeGreaterThan(1.96 / Math.sqrt(n));
      expect(radius).toBeLessThan(previous);
      previous = radius;
    }
    // At the planned size the price is about half again the fixed-horizon width.
    expect(confidenceSequenceRadius(PLANNED_SAMPLE_SIZE, 1, 0.05, rho) * Math.sqrt(PLANNED_SAMPLE_SIZE)).toBeCloseTo(1.96 * 1.55, 1);
  });
});

describe('armEstimates and compareToBaseline: the numbers', () => {
  it('one deployment: each branch its mean, the difference of means, intervals once the minimum is met', () => {
    const units: Unit[] = [];
    for (let i = 0; i < 100; i++) units.push({ deploymentId: 'd', branchId: 'main', y: i < 40 ? 1 : 0 });
    for (let i = 0; i < 100; i++) units.push({ deploymentId: 'd', branchId: 'b', y: i < 60 ? 1 : 0 });
    const shares = splits({ d: { main: 0.5, b: 0.5 } });
    const [main, b] = armEstimates(cellsOf(units), shares, 0.05);
    expect(main).toMatchObject({ branchId: 'main', n: 100, estimate: 0.4 });
    expect(b).toMatchObject({ branchId: 'b', n: 100, estimate: 0.6 });
    expect(main.interval!.lower).toBeLessThan(0.4);
    expect(main.interval!.upper).toBeGreaterThan(0.4);
    const [comparison] = compareToBaseline(cellsOf(units), shares, 'main', 0.05, true);
    expect(comparison.branchId).toBe('b');
    expectClose(comparison.difference, 0.2);
    expect(comparison.interval!.lower).toBeLessThan(0.2);
    expect(comparison.interval!.upper).toBeGreaterThan(0.2);
  });

  it('agrees with the estimator written per unit, over several deployments, shares and branches', () => {
    const branchIds = ['main', 'b', 'c'];
    const deployment = fc.record({
      main: fc.integer({ min: 0, max: 10 }),
      b: fc.integer({ min: 0, max: 10 }),
      c: fc.integer({ min: 0, max: 10 }),
    });
    const unit = fc.record({
      deployment: fc.integer({ min: 0, max: 2 }),
      branch: fc.constantFrom(...branchIds),
      y: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: -50, max: 500, noNaN: true })),
    });
    fc.assert(
      fc.property(fc.array(deployment, { minLength: 3, maxLength: 3 }), fc.array(unit, { maxLength: 300 }), (weights, drawn) => {
        const shares = new Map(
          weights.map((weight, index) => {
            const total = weight.main + weight.b + weight.c || 1;
            return [`d${index}`, new Map(branchIds.map((b) => [b, weight[b as 'main'] / total]))] as const;
          }),
        );
        const units = drawn.map((u) => ({ deploymentId: `d${u.deployment}`, branchId: u.branch, y: u.y }));
        const cells = cellsOf(units);
        const alpha = 0.1;
        const arms = armEstimates(cells, shares, alpha, 'mean');
        for (const branchId of branchIds) {
          const arm = arms.find((a) => a.branchId === branchId);
          const { randomized, psi } = referenceArmPseudoOutcomes(units, shares, [branchId]);
          const own = randomized.filter((u) => u.branchId === branchId);
          if (own.length === 0) {
            expect(arm?.estimate ?? null).toBeNull();
            continue;
          }
          const reference = referenceInterval(
            randomized.map((u) => psi(u, branchId)),
            alpha,
          );
          expect(arm!.n).toBe(own.length);
          expectClose(arm!.estimate, reference.mean, 1e-7);
          if (own.length >= MIN_VALUES_PER_ARM) {
            expectClose(arm!.interval!.lower, reference.lower, 1e-6);
            expectClose(arm!.interval!.upper, reference.upper, 1e-6);
          } else {
            expect(arm!.interval).toBeNull();
          }
        }
        const comparisons = compareToBaseline(cells, shares, 'main', alpha, true, 'mean');
        for (const branchId of ['b', 'c']) {
          const comparison = comparisons.find((c) => c.branchId === branchId);
          const { randomized, psi } = referenceArmPseudoOutcomes(units, shares, [branchId, 'main']);
          const candidate = randomized.filter((u) => u.branchId === branchId).length;
          const baseline = randomized.filter((u) => u.branchId === 'main').length;
          if (candidate === 0 || baseline === 0) {
            expect(comparison?.difference ?? null).toBeNull();
            continue;
          }
          const reference = referenceInterval(
            randomized.map((u) => psi(u, branchId) - psi(u, 'main')),
            alpha,
          );
          expectClose(comparison!.difference, reference.mean, 1e-7);
          if (candidate >= MIN_VALUES_PER_ARM && baseline >= MIN_VALUES_PER_ARM) {
            expectClose(comparison!.interval!.lower, reference.lower, 1e-6);
            expectClose(comparison!.interval!.upper, reference.upper, 1e-6);
          } else {
            expect(comparison!.interval).toBeNull();
            expect(comparison!.decision).toBe('inconclusive');
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('swapping candidate and baseline negates the difference and mirrors the interval; the order of the cells does not matter', () => {
    const cell = (deploymentId: string, branchId: string) =>
      fc.record({ n: fc.integer({ min: 0, max: 400 }), rate: fc.double({ min: 0, max: 1, noNaN: true }) }).map(({ n, rate }) => {
        const sum = Math.round(n * rate);
        return { deploymentId, branchId, exposures: n, n, sum, sumSquares: sum };
      });
    const cells = fc.tuple(cell('d1', 'main'), cell('d1', 'b'), cell('d2', 'main'), cell('d2', 'b'), cell('d2', 'c'));
    const shares = splits({ d1: { main: 0.8, b: 0.2 }, d2: { main: 0.4, b: 0.4, c: 0.2 } });
    fc.assert(
      fc.property(cells, fc.boolean(), (drawn, higherIsBetter) => {
        const forward = compareToBaseline(drawn, shares, 'main', 0.05, higherIsBetter).find((c) => c.branchId === 'b')!;
        const backward = compareToBaseline(drawn, shares, 'b', 0.05, higherIsBetter).find((c) => c.branchId === 'main')!;
        if (forward.difference === null) {
          expect(backward.difference).toBeNull();
          return;
        }
        expectClose(backward.difference, -forward.difference, 1e-12);
        if (forward.interval) {
          expectClose(backward.interval!.lower, -forward.interval.upper, 1e-12);
          expectClose(backward.interval!.upper, -forward.interval.lower, 1e-12);
          const mirrored = { better: 'worse', worse: 'better', inconclusive: 'inconclusive' } as const;
          expect(backward.decision).toBe(mirrored[forward.decision]);
        } else {
          expect(backward.interval).toBeNull();
        }
        const reversed = [...drawn].reverse();
        const again = compareToBaseline(reversed, shares, 'main', 0.05, higherIsBetter).find((c) => c.branchId === 'b')!;
        expectClose(again.difference, forward.difference, 1e-12);
        expect(again.decision).toBe(forward.decision);
      }),
      { numRuns: 300 },
    );
  });

  it('adds cells of the same deployment and branch (days), and ignores cells of a branch the split did not route to', () => {
    const units: Unit[] = [];
    for (let i = 0; i < 200; i++) units.push({ deploymentId: 'd', branchId: i % 2 ? 'main' : 'b', y: i % 3 === 0 ? 1 : 0 });
    const shares = splits({ d: { main: 0.5, b: 0.5, pinned: 0 } });
    const whole = compareToBaseline(cellsOf(units), shares, 'main', 0.05, true);
    const byDay = cellsOf(units.slice(0, 77)).concat(cellsOf(units.slice(77)));
    const pinned: ArmCell[] = [
      { deploymentId: 'd', branchId: 'pinned', exposures: 50, n: 50, sum: 50, sumSquares: 50 },
      { deploymentId: 'unknown_deployment', branchId: 'b', exposures: 50, n: 50, sum: 50, sumSquares: 50 },
    ];
    const split = compareToBaseline([...byDay, ...pinned], shares, 'main', 0.05, true);
    expect(split.find((c) => c.branchId === 'b')).toEqual(whole.find((c) => c.branchId === 'b'));
    expect(split.find((c) => c.branchId === 'pinned')).toEqual({ branchId: 'pinned', difference: null, interval: null, decision: 'inconclusive' });
    const arms = armEstimates([...byDay, ...pinned], shares, 0.05);
    expect(arms.find((a) => a.branchId === 'pinned')).toEqual({ branchId: 'pinned', n: 0, estimate: null, interval: null });
    expect(arms.find((a) => a.branchId === 'b')!.n).toBe(100);
  });

  it('compares only over deployments where both branches had traffic', () => {
    const units: Unit[] = [];
    // d1 routes main only: its units say nothing about b minus main.
    for (let i = 0; i < 500; i++) units.push({ deploymentId: 'd1', branchId: 'main', y: 0 });
    for (let i = 0; i < 200; i++) units.push({ deploymentId: 'd2', branchId: i % 2 ? 'main' : 'b', y: i % 4 < 2 ? 1 : 0 });
    const shares = splits({ d1: { main: 1 }, d2: { main: 0.5, b: 0.5 } });
    const [comparison] = compareToBaseline(cellsOf(units), shares, 'main', 0.05, true);
    const onlyD2 = compareToBaseline(cellsOf(units.filter((u) => u.deploymentId === 'd2')), shares, 'main', 0.05, true)[0];
    expect(comparison).toEqual(onlyD2);
  });

  it('a branch never routed with the baseline, or without values, has no difference', () => {
    const shares = splits({ d1: { main: 1 }, d2: { b: 1 } });
    const cells: ArmCell[] = [
      { deploymentId: 'd1', branchId: 'main', exposures: 100, n: 100, sum: 50, sumSquares: 50 },
      { deploymentId: 'd2', branchId: 'b', exposures: 100, n: 100, sum: 70, sumSquares: 70 },
    ];
    expect(compareToBaseline(cells, shares, 'main', 0.05, true)).toEqual([
      { branchId: 'b', difference: null, interval: null, decision: 'inconclusive' },
    ]);
    expect(compareToBaseline([], splits({ d: { main: 0.5, b: 0.5 } }), 'main', 0.05, true)).toEqual([
      { branchId: 'b', difference: null, interval: null, decision: 'inconclusive' },
    ]);
  });

  it('binary metrics: no interval before 30 successes and 30 failures per arm; the interval stays within the possible range', () => {
    const shares = twoWay(0.5);
    const arms = (baseline: [number, number], candidate: [number, number]): ArmCell[] => [
      { deploymentId: 'dep_1', branchId: 'baseline', exposures: baseline[0], n: baseline[0], sum: baseline[1], sumSquares: baseline[1] },
      { deploymentId: 'dep_1', branchId: 'candidate', exposures: candidate[0], n: candidate[0], sum: candidate[1], sumSquares: candidate[1] },
    ];
    // 29 failures on the candidate: a huge difference, still no decision.
    const early = compareToBaseline(arms([200, 100], [229, 200]), shares, 'baseline', 0.05, true)[0];
    expect(early.difference).toBeGreaterThan(0.3);
    expect(early).toMatchObject({ interval: null, decision: 'inconclusive' });
    const ready = compareToBaseline(arms([200, 100], [230, 200]), shares, 'baseline', 0.05, true)[0];
    expect(ready.decision).toBe('better');
    // The same sums read as a mean metric need only 30 values per arm.
    expect(compareToBaseline(arms([200, 100], [229, 200]), shares, 'baseline', 0.05, true, 'mean')[0].decision).toBe('better');
    // A 1% share with as many values as the 99% one (the mismatch check would flag it): an interval
    // far wider than the possible values, cut to them.
    const lopsided = splits({ dep_1: { baseline: 0.99, candidate: 0.01 } });
    const candidate = armEstimates(arms([60, 30], [60, 30]), lopsided, 0.05)[1];
    expect(candidate.interval).toEqual({ lower: 0, upper: 1 });
    expect(compareToBaseline(arms([60, 30], [60, 30]), lopsided, 'baseline', 0.05, true)[0].interval).toEqual({ lower: -1, upper: 1 });
  });

  it('reads the kind from the cells: Σy² = Σy is binary', () => {
    expect(metricKindOf([{ sum: 12, sumSquares: 12 }, { sum: 0, sumSquares: 0 }])).toBe('binary');
    expect(metricKindOf([{ sum: 12, sumSquares: 12 }, { sum: 3, sumSquares: 5 }])).toBe('mean');
  });

  it('the decision follows higherIsBetter', () => {
    const cells: ArmCell[] = [
      { deploymentId: 'dep_1', branchId: 'baseline', exposures: 100, n: 100, sum: 30, sumSquares: 30 },
      { deploymentId: 'dep_1', branchId: 'candidate', exposures: 100, n: 100, sum: 70, sumSquares: 70 },
    ];
    expect(compareToBaseline(cells, twoWay(0.5), 'baseline', 0.05, true)[0].decision).toBe('better');
    expect(compareToBaseline(cells, twoWay(0.5), 'baseline', 0.05, false)[0].decision).toBe('worse');
    expect(compareToBaseline(cells, twoWay(0.5), 'candidate', 0.05, true)[0]).toMatchObject({ branchId: 'baseline', decision: 'worse' });
  });

  it('refuses an alpha outside (0, 1) and counts that are not whole numbers', () => {
    for (const alpha of [0, 1, -0.1, Number.NaN]) {
      expect(() => compareToBaseline([], twoWay(0.5), 'baseline', alpha, true)).toThrow(RangeError);
      expect(() => armEstimates([], twoWay(0.5), alpha)).toThrow(RangeError);
      expect(() => sampleRatioMismatch([], twoWay(0.5), alpha)).toThrow(RangeError);
    }
    const bad: ArmCell = { deploymentId: 'dep_1', branchId: 'baseline', exposures: 1, n: 1.5, sum: 1, sumSquares: 1 };
    expect(() => armEstimates([bad], twoWay(0.5), 0.05)).toThrow(RangeError);
  });
});

describe('routedShares', () => {
  it('is the buckets of each branch over 10,000, as routing draws them', () => {
    expect(routedShares([
      { branchId: 'main', percentage: 33.333 },
      { branchId: 'b', percentage: 33.333 },
      { branchId: 'c', percentage: 33.334 },
    ])).toEqual(new Map([['main', 0.3333], ['b', 0.3333], ['c', 0.3334]]));
    expect(routedShares([
      { branchId: 'main', percentage: 100 },
      { branchId: 'b', percentage: 0 },
    ])).toEqual(new Map([['main', 1], ['b', 0]]));
  });
});

describe('regressed', () => {
  const comparison = (lower: number, upper: number): Comparison => ({
    branchId: 'b',
    difference: (lower + upper) / 2,
    interval: { lower, upper },
    decision: 'inconclusive',
  });

  it('needs the whole interval beyond the tolerated regression, on the side that is worse', () => {
    // Higher is better: worse is negative.
    expect(regressed(comparison(-0.2, -0.06), 0.05, true)).toBe(true);
    expect(regressed(comparison(-0.2, -0.04), 0.05, true)).toBe(false);
    expect(regressed(comparison(-0.2, -0.01), 0, true)).toBe(true);
    expect(regressed(comparison(0.01, 0.2), 0, true)).toBe(false);
    // Lower is better (handling time): worse is positive.
    expect(regressed(comparison(6, 30), 5, false)).toBe(true);
    expect(regressed(comparison(4, 30), 5, false)).toBe(false);
    expect(regressed(comparison(-30, -6), 5, false)).toBe(false);
  });

  it('without an interval there is no evidence', () => {
    expect(regressed({ branchId: 'b', difference: -0.9, interval: null, decision: 'inconclusive' }, 0, true)).toBe(false);
  });

  it('refuses a negative or non-finite tolerance', () => {
    expect(() => regressed(comparison(-1, 1), -0.01, true)).toThrow(RangeError);
    expect(() => regressed(comparison(-1, 1), Number.POSITIVE_INFINITY, true)).toThrow(RangeError);
  });
});

describe('sampleRatioMismatch: the numbers', () => {
  it('the closed form is the product of the Dirichlet-multinomial predictive probabilities over the stream', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 2, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 400 }),
        (weights, draws) => {
          const total = weights.reduce((a, b) => a + b, 0);
          const shares = new Map(weights.map((w, k) => [`b${k}`, w / total]));
          const counts = new Map<string, number>();
          let logProduct = 0;
          draws.forEach((draw, i) => {
            const branchId = `b${draw % weights.length}`;
            const share = shares.get(branchId)!;
            const seen = counts.get(branchId) ?? 0;
            logProduct += Math.log((SRM_PRIOR_WEIGHT * share + seen) / (SRM_PRIOR_WEIGHT + i) / share);
            counts.set(branchId, seen + 1);
          });
          expectClose(logDirichletMultinomialBayesFactor(shares, counts), logProduct, 1e-9);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('tests each deployment against its own split and multiplies the evidence', () => {
    const shares = splits({ d1: { main: 0.9, b: 0.1 }, d2: { main: 0.5, b: 0.5 } });
    const exposures = [
      { deploymentId: 'd1', branchId: 'main', exposures: 9_000 },
      { deploymentId: 'd1', branchId: 'b', exposures: 1_000 },
      { deploymentId: 'd2', branchId: 'main', exposures: 5_000 },
      { deploymentId: 'd2', branchId: 'b', exposures: 5_000 },
    ];
    const result = sampleRatioMismatch(exposures, shares);
    expect(result).toMatchObject({ mismatch: false, alpha: SRM_ALPHA, observed: { main: 14_000, b: 6_000 }, expected: { main: 14_000, b: 6_000 } });
    expect(result.eValue).toBeLessThan(1);
    // The same counts against one split (as if pooled) are a glaring mismatch.
    const pooled = sampleRatioMismatch(
      exposures.map((e) => ({ ...e, deploymentId: 'd2' })),
      shares,
    );
    expect(pooled.mismatch).toBe(true);
    // Evidence multiplies: two deployments each 3:2 off their split.
    const skewed = (deploymentId: string) => [
      { deploymentId, branchId: 'main', exposures: 600 },
      { deploymentId, branchId: 'b', exposures: 400 },
    ];
    const one = sampleRatioMismatch(skewed('d2'), shares).eValue;
    const both = sampleRatioMismatch([...skewed('d2'), ...skewed('d3')], splits({ d2: { main: 0.5, b: 0.5 }, d3: { main: 0.5, b: 0.5 } })).eValue;
    expectClose(both, one * one, 1e-9);
  });

  it('counts exposures of a branch the split gave no share, without testing them', () => {
    const shares = splits({ d: { main: 0.5, b: 0.5, pinned: 0 } });
    const result = sampleRatioMismatch(
      [
        { deploymentId: 'd', branchId: 'main', exposures: 500 },
        { deploymentId: 'd', branchId: 'b', exposures: 500 },
        { deploymentId: 'd', branchId: 'pinned', exposures: 5_000 },
      ],
      shares,
    );
    expect(result.mismatch).toBe(false);
    expect(result.observed).toEqual({ main: 500, b: 500, pinned: 5_000 });
    expect(result.expected).toEqual({ main: 500, b: 500, pinned: 0 });
  });

  it('takes any branch id as a key, even one named like an object property', () => {
    const result = sampleRatioMismatch(
      [
        { deploymentId: 'd', branchId: '__proto__', exposures: 40 },
        { deploymentId: 'd', branchId: 'constructor', exposures: 60 },
      ],
      new Map([['d', new Map([['__proto__', 0.4], ['constructor', 0.6]])]]),
    );
    expect(Object.entries(result.observed)).toEqual([['__proto__', 40], ['constructor', 60]]);
    expect(JSON.parse(JSON.stringify(result.expected))).toEqual(JSON.parse('{"__proto__": 40, "constructor": 60}'));
  });

  it('reports an overwhelming mismatch as a finite e-value', () => {
    const result = sampleRatioMismatch(
      [
        { deploymentId: 'd', branchId: 'main', exposures: 1_000_000 },
        { deploymentId: 'd', branchId: 'b', exposures: 0 },
      ],
      splits({ d: { main: 0.5, b: 0.5 } }),
    );
    expect(result.mismatch).toBe(true);
    expect(result.eValue).toBe(Number.MAX_VALUE);
    expect(JSON.parse(JSON.stringify(result)).eValue).toBe(Number.MAX_VALUE);
  });
});

// ---------------------------------------------------------------------------------------------
// The proof by simulation (issue 20). Every experiment is watched after every 50 outcomes (100
// exposures for the mismatch check); a rate over R runs is allowed α plus three binomial standard
// deviations of sampling slack, √(α(1 − α)/R) each.

function watchTwoArms(
  random: () => number,
  options: { candidateShare: number; horizon: number; every?: number; outcome: (arm: 'baseline' | 'candidate') => number },
  look: (cells: ArmCell[], seen: number) => boolean,
): number | null {
  const every = options.every ?? 50;
  const arms = new TwoArms();
  for (let seen = 1; seen <= options.horizon; seen++) {
    const arm = random() < options.candidateShare ? 'candidate' : 'baseline';
    arms.add(arm, options.outcome(arm));
    if (seen % every === 0 && look(arms.cells(), seen)) return seen;
  }
  return null;
}

describe('simulation: A/A experiments watched continuously', () => {
  const RUNS = 1_000;
  const HORIZON = 2_000;
  const ALPHA = 0.05;

  it(`call a difference in at most α = ${ALPHA} of ${RUNS} experiments (watched every 50 outcomes to ${HORIZON}); a fixed-horizon interval watched the same way does not`, () => {
    const random = xorshift32(20_2026);
    let sequentialCalls = 0;
    let fixedHorizonCalls = 0;
    for (let run = 0; run < RUNS; run++) {
      let fixedHorizonCalled = false;
      const called = watchTwoArms(
        random,
        { candidateShare: 0.5, horizon: HORIZON, outcome: () => (random() < 0.5 ? 1 : 0) },
        (cells) => {
          const [comparison] = compareToBaseline(cells, twoWay(0.5), 'baseline', ALPHA, true);
          // The textbook two-proportion z-interval, valid only if read once at a fixed n.
          const [baseline, candidate] = cells;
          const pc = baseline.sum / baseline.n;
          const pt = candidate.sum / candidate.n;
          const z = (pt - pc) / Math.sqrt((pc * (1 - pc)) / baseline.n + (pt * (1 - pt)) / candidate.n);
          if (Math.abs(z) > 1.96 && baseline.n >= 30 && candidate.n >= 30) fixedHorizonCalled = true;
          return comparison.decision !== 'inconclusive';
        },
      );
      if (called !== null) sequentialCalls++;
      if (fixedHorizonCalled) fixedHorizonCalls++;
    }
    // Seeded: 22 of 1,000 (2.2%; 1.6% over 10,000 runs of other seeds); allowed 5% + 2.1% slack.
    expect(sequentialCalls / RUNS).toBeLessThanOrEqual(ALPHA + slack(ALPHA, RUNS));
    // Peeking at the fixed-horizon interval calls a difference several times as often (the reason for
    // the confidence sequence; Johari et al., arXiv:1512.04922): 295 of 1,000 here. This harness can
    // tell the two apart.
    expect(fixedHorizonCalls / RUNS).toBeGreaterThan(3 * ALPHA);
  });

  it('stay within α for a 10% candidate share, a rare outcome and a skewed mean metric', () => {
    const scenarios = [
      { name: '10/90, rate 50%', candidateShare: 0.1, outcome: (random: () => number) => (random() < 0.5 ? 1 : 0) },
      { name: '50/50, rate 10%', candidateShare: 0.5, outcome: (random: () => number) => (random() < 0.1 ? 1 : 0) },
      { name: '20/80, log-normal durations', candidateShare: 0.2, outcome: (random: () => number) => Math.exp(5 + 0.8 * gaussian(random)) },
    ];
    const runs = 500;
    for (const scenario of scenarios) {
      const random = xorshift32(4_242);
      let calls = 0;
      for (let run = 0; run < runs; run++) {
        const called = watchTwoArms(
          random,
          { candidateShare: scenario.candidateShare, horizon: HORIZON, outcome: () => scenario.outcome(random) },
          (cells) => compareToBaseline(cells, twoWay(scenario.candidateShare), 'baseline', ALPHA, true)[0].decision !== 'inconclusive',
        );
        if (called !== null) calls++;
      }
      // Seeded: 8, 5 and 9 of 500.
      expect(calls / runs, scenario.name).toBeLessThanOrEqual(ALPHA + slack(ALPHA, runs));
    }
  });
});

describe('simulation: per-branch intervals', () => {
  it('cover the true rate or mean at every look in at least 1 − α of runs, each branch', () => {
    const runs = 500;
    const scenarios = [
      { name: 'rate 30% at a 20% share', candidateShare: 0.2, truth: 0.3, outcome: (random: () => number) => (random() < 0.3 ? 1 : 0) },
      // Log-normal with μ = 5, σ = 0.8: mean e^(5 + 0.32).
      { name: 'log-normal durations at 50%', candidateShare: 0.5, truth: Math.exp(5.32), outcome: (random: () => number) => Math.exp(5 + 0.8 * gaussian(random)) },
    ];
    for (const scenario of scenarios) {
      const random = xorshift32(71);
      const misses = { baseline: 0, candidate: 0 };
      for (let run = 0; run < runs; run++) {
        const missed = new Set<string>();
        watchTwoArms(
          random,
          { candidateShare: scenario.candidateShare, horizon: 2_000, outcome: () => scenario.outcome(random) },
          (cells) => {
            for (const { branchId, interval } of armEstimates(cells, twoWay(scenario.candidateShare), 0.05)) {
              if (interval && (interval.lower > scenario.truth || interval.upper < scenario.truth)) missed.add(branchId);
            }
            return false;
          },
        );
        if (missed.has('baseline')) misses.baseline++;
        if (missed.has('candidate')) misses.candidate++;
      }
      // Seeded: the rate misses 5 (baseline) and 9 (candidate) of 500; the durations 13 and 23 —
      // one skewed arm alone comes closest to α, as a central-limit method does.
      expect(misses.baseline / runs, `${scenario.name}, baseline`).toBeLessThanOrEqual(0.05 + slack(0.05, runs));
      expect(misses.candidate / runs, `${scenario.name}, candidate`).toBeLessThanOrEqual(0.05 + slack(0.05, runs));
    }
  });
});

describe('simulation: real differences are found', () => {
  it('an A/B with a 10-point higher success rate at 50/50 (50% → 60%) is called better by 3,000 outcomes in ≥ 95% of runs, never worse', () => {
    const random = xorshift32(7);
    const runs = 500;
    const firstCalls: number[] = [];
    let worse = 0;
    for (let run = 0; run < runs; run++) {
      let decision = 'inconclusive' as Comparison['decision'];
      const called = watchTwoArms(
        random,
        { candidateShare: 0.5, horizon: 6_000, outcome: (arm) => (random() < (arm === 'candidate' ? 0.6 : 0.5) ? 1 : 0) },
        (cells) => {
          decision = compareToBaseline(cells, twoWay(0.5), 'baseline', 0.05, true)[0].decision;
          return decision !== 'inconclusive';
        },
      );
      if (decision === 'worse') worse++;
      if (called !== null && decision === 'better') firstCalls.push(called);
    }
    expect(worse).toBe(0);
    // Seeded: median 900, 95th percentile 2,000, latest 4,450 outcomes.
    expect(firstCalls.filter((seen) => seen <= 3_000).length).toBeGreaterThanOrEqual(0.95 * runs);
  });

  it('a candidate 10 points worse (80% → 70%) at a 20% rollout step trips a 2-point guard by 6,000 outcomes in ≥ 99% of runs; an equal one almost never', () => {
    const runs = 500;
    const watch = (random: () => number, candidateRate: number, maxRegression: number) =>
      watchTwoArms(
        random,
        { candidateShare: 0.2, horizon: 8_000, outcome: (arm) => (random() < (arm === 'candidate' ? candidateRate : 0.8) ? 1 : 0) },
        (cells) => regressed(compareToBaseline(cells, twoWay(0.2), 'baseline', 0.05, true)[0], maxRegression, true),
      );
    const random = xorshift32(11);
    const tripped: number[] = [];
    for (let run = 0; run < runs; run++) {
      const at = watch(random, 0.7, 0.02);
      if (at !== null) tripped.push(at);
    }
    // Seeded: median 1,600, 99th percentile 5,200, latest 7,200 outcomes (all units, both branches).
    expect(tripped.filter((seen) => seen <= 6_000).length).toBeGreaterThanOrEqual(0.99 * runs);
    let falseTrips = 0;
    for (let run = 0; run < runs; run++) if (watch(random, 0.8, 0) !== null) falseTrips++;
    // A guard is one side of the two-sided interval: at most α/2 = 2.5%, plus slack. Seeded: 4 of 500.
    expect(falseTrips / runs).toBeLessThanOrEqual(0.025 + slack(0.025, runs));
  });

  it('handling time 30 s longer (log-normal, 120 s → 150 s median) at a 20% step trips a 5-second guard by 2,000 outcomes in ≥ 99% of runs', () => {
    const random = xorshift32(13);
    const runs = 500;
    let tripped = 0;
    for (let run = 0; run < runs; run++) {
      const at = watchTwoArms(
        random,
        { candidateShare: 0.2, horizon: 2_000, outcome: (arm) => Math.exp(Math.log(arm === 'candidate' ? 150 : 120) + 0.5 * gaussian(random)) },
        // Lower is better for handling time.
        (cells) => regressed(compareToBaseline(cells, twoWay(0.2), 'baseline', 0.05, false)[0], 5, false),
      );
      if (at !== null) tripped++;
    }
    expect(tripped / runs).toBeGreaterThanOrEqual(0.99);
  });
});

describe('simulation: sample-ratio mismatch', () => {
  function watchExposures(random: () => number, candidateProbability: number, horizon: number, alpha: number): number | null {
    let candidate = 0;
    for (let seen = 1; seen <= horizon; seen++) {
      if (random() < candidateProbability) candidate++;
      if (seen % 100 === 0) {
        const result = sampleRatioMismatch(
          [
            { deploymentId: 'dep_1', branchId: 'baseline', exposures: seen - candidate },
            { deploymentId: 'dep_1', branchId: 'candidate', exposures: candidate },
          ],
          twoWay(0.5),
          alpha,
        );
        if (result.mismatch) return seen;
      }
    }
    return null;
  }

  it('flags 45/55 exposures against a 50/50 split by 10,000 exposures in every one of 500 runs', () => {
    const random = xorshift32(31);
    const flaggedAt: number[] = [];
    for (let run = 0; run < 500; run++) {
      const at = watchExposures(random, 0.45, 10_000, SRM_ALPHA);
      if (at !== null) flaggedAt.push(at);
    }
    // Seeded: median 1,700, latest 5,500 exposures.
    expect(flaggedAt.length).toBe(500);
  });

  it('raises a false alarm on 50/50 in at most 0.001 of 2,000 experiments (and at most 0.05 at α = 0.05), watched every 100 exposures to 10,000', () => {
    const random = xorshift32(37);
    let alarms = 0;
    for (let run = 0; run < 2_000; run++) if (watchExposures(random, 0.5, 10_000, SRM_ALPHA) !== null) alarms++;
    // Seeded: 0 of 2,000; allowed 0.1% + 0.21% slack (6 alarms).
    expect(alarms / 2_000).toBeLessThanOrEqual(SRM_ALPHA + slack(SRM_ALPHA, 2_000));
    // At a level where the rate is measurable, a test that ignored the peeking would show here.
    // Seeded: 21 of 1,000.
    let loose = 0;
    for (let run = 0; run < 1_000; run++) if (watchExposures(random, 0.5, 10_000, 0.05) !== null) loose++;
    expect(loose / 1_000).toBeLessThanOrEqual(0.05 + slack(0.05, 1_000));
  });
});

describe('simulation: a split changed mid-experiment', () => {
  /**
   * 1,000 units at 90/10 (baseline/candidate) while both succeed 30% of the time, then 1,000 at
   * 50/50 while both succeed 60% (the baseline rate drifts, for both, as it does when callers
   * change). The candidate's units come mostly from the good period: an unweighted comparison of
   * means sees a 14-point improvement that is not there.
   */
  function changedSplitUnits(random: () => number, effect: number): Unit[] {
    const units: Unit[] = [];
    const phase = (deploymentId: string, candidateShare: number, rate: number) => {
      for (let i = 0; i < 1_000; i++) {
        const branchId = random() < candidateShare ? 'candidate' : 'baseline';
        const p = rate + (branchId === 'candidate' ? effect : 0);
        units.push({ deploymentId, branchId, y: random() < p ? 1 : 0 });
      }
    };
    phase('dep_90_10', 0.1, 0.3);
    phase('dep_50_50', 0.5, 0.6);
    return units;
  }
  const shares = splits({ dep_90_10: { baseline: 0.9, candidate: 0.1 }, dep_50_50: { baseline: 0.5, candidate: 0.5 } });
  // Unweighted: the cells pooled as if one split had routed them all.
  const pooled = (units: Unit[]) => cellsOf(units.map((u) => ({ ...u, deploymentId: 'dep_50_50' })));

  it('the weighted difference is unbiased and calls nothing on an A/A; the unweighted one is biased by +14 points and calls "better"', () => {
    const random = xorshift32(53);
    const runs = 300;
    let weightedSum = 0;
    let unweightedSum = 0;
    let weightedCalls = 0;
    let unweightedCalls = 0;
    for (let run = 0; run < runs; run++) {
      const units = changedSplitUnits(random, 0);
      const weighted = compareToBaseline(cellsOf(units), shares, 'baseline', 0.05, true)[0];
      const unweighted = compareToBaseline(pooled(units), shares, 'baseline', 0.05, true)[0];
      weightedSum += weighted.difference!;
      unweightedSum += unweighted.difference!;
      if (weighted.decision !== 'inconclusive') weightedCalls++;
      if (unweighted.decision === 'better') unweightedCalls++;
    }
    // Each weighted difference has a standard deviation of about 0.03: the mean of 300 about 0.002.
    // Seeded: weighted −0.001 (1 call in 300); unweighted +0.143 (300 calls of "better").
    expect(Math.abs(weightedSum / runs)).toBeLessThan(0.01);
    expect(weightedCalls / runs).toBeLessThanOrEqual(0.05 + slack(0.05, runs));
    // Expected bias: candidate 100×0.3 + 500×0.6 over 600 = 0.55; baseline 900×0.3 + 500×0.6 over 1,400 ≈ 0.407.
    expect(unweightedSum / runs).toBeGreaterThan(0.12);
    expect(unweightedCalls / runs).toBeGreaterThan(0.9);
  });

  it('watched every 50 units across the change, an A/A calls a difference in at most α of 1,000 runs', () => {
    const random = xorshift32(61);
    const runs = 1_000;
    let calls = 0;
    for (let run = 0; run < runs; run++) {
      const cells = ['dep_90_10', 'dep_50_50'].flatMap((deploymentId) =>
        ['baseline', 'candidate'].map((branchId) => ({ deploymentId, branchId, exposures: 0, n: 0, sum: 0, sumSquares: 0 })),
      );
      const units = changedSplitUnits(random, 0);
      for (let seen = 1; seen <= units.length; seen++) {
        const unit = units[seen - 1];
        const cell = cells[(unit.deploymentId === 'dep_90_10' ? 0 : 2) + (unit.branchId === 'baseline' ? 0 : 1)];
        cell.exposures++;
        cell.n++;
        cell.sum += unit.y;
        cell.sumSquares += unit.y * unit.y;
        if (seen % 50 === 0 && compareToBaseline(cells, shares, 'baseline', 0.05, true)[0].decision !== 'inconclusive') {
          calls++;
          break;
        }
      }
    }
    // Seeded: 13 of 1,000; allowed 5% + 2.1% slack.
    expect(calls / runs).toBeLessThanOrEqual(0.05 + slack(0.05, runs));
  });

  it('across the ramp of a guarded rollout (10%, 25%, 50%, each a deployment) with a drifting rate, an A/A trips no 2-point guard and a 10-point drop trips it in ≥ 95% of runs', () => {
    const steps = [
      { deploymentId: 'step_10', candidateShare: 0.1, rate: 0.7 },
      { deploymentId: 'step_25', candidateShare: 0.25, rate: 0.8 },
      { deploymentId: 'step_50', candidateShare: 0.5, rate: 0.75 },
    ];
    const rampShares = new Map(steps.map((step) => [step.deploymentId, new Map([['baseline', 1 - step.candidateShare], ['candidate', step.candidateShare]])]));
    const watchRamp = (random: () => number, drop: number) => {
      const cells = steps.flatMap(({ deploymentId }) =>
        ['baseline', 'candidate'].map((branchId) => ({ deploymentId, branchId, exposures: 0, n: 0, sum: 0, sumSquares: 0 })),
      );
      let seen = 0;
      for (const [index, step] of steps.entries()) {
        for (let i = 0; i < 2_000; i++) {
          const candidate = random() < step.candidateShare;
          const y = random() < step.rate - (candidate ? drop : 0) ? 1 : 0;
          const cell = cells[2 * index + (candidate ? 1 : 0)];
          cell.exposures++;
          cell.n++;
          cell.sum += y;
          cell.sumSquares += y;
          if (++seen % 50 === 0 && regressed(compareToBaseline(cells, rampShares, 'baseline', 0.05, true)[0], 0.02, true)) return seen;
        }
      }
      return null;
    };
    const random = xorshift32(67);
    const runs = 500;
    let falseTrips = 0;
    for (let run = 0; run < runs; run++) if (watchRamp(random, 0) !== null) falseTrips++;
    const tripped: number[] = [];
    for (let run = 0; run < runs; run++) {
      const at = watchRamp(random, 0.1);
      if (at !== null) tripped.push(at);
    }
    // Seeded: 2 false trips in 500; the drop tripped in 492 of 500 by the end of the ramp (6,000
    // outcomes), median 2,950, 95th percentile 5,500.
    expect(falseTrips / runs).toBeLessThanOrEqual(0.025 + slack(0.025, runs));
    expect(tripped.length).toBeGreaterThanOrEqual(0.95 * runs);
  });

  it('a real 5-point effect is estimated as 5 points across the change', () => {
    const random = xorshift32(59);
    const runs = 300;
    let weightedSum = 0;
    let unweightedSum = 0;
    for (let run = 0; run < runs; run++) {
      const units = changedSplitUnits(random, 0.05);
      weightedSum += compareToBaseline(cellsOf(units), shares, 'baseline', 0.05, true)[0].difference!;
      unweightedSum += compareToBaseline(pooled(units), shares, 'baseline', 0.05, true)[0].difference!;
    }
    // Seeded: weighted 0.051, unweighted 0.195.
    expect(Math.abs(weightedSum / runs - 0.05)).toBeLessThan(0.01);
    expect(unweightedSum / runs).toBeGreaterThan(0.15);
  });
});
