import { describe, expect, it } from 'vitest';

import { decideRollout, regressedBeyond, type RolloutUnderEvaluation } from '../src/features/experiments/guarded-rollouts.decision.js';
import type { Decision, ExperimentResults, Interval } from '../src/features/experiments/guarded-rollouts.sources.js';
import { stepSplit } from '../src/features/experiments/guarded-rollouts.service.js';

// The evaluator's decision (src/features/experiments/guarded-rollouts.decision.ts) on synthetic
// results: every transition of a running rollout, and the numbers each carries.

const CANDIDATE = 'agtbrch_candidate';
const BASELINE = 'agtbrch_baseline';
const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);

interface MetricSpec {
  key: string;
  higherIsBetter: boolean;
  n: [candidate: number, baseline: number];
  difference: number | null;
  interval: Interval | null;
  decision: Decision;
}

function results(metrics: MetricSpec[], srm: { mismatch: boolean; eValue: number } = { mismatch: false, eValue: 1.3 }): ExperimentResults {
  return {
    agent_id: 'agent_x',
    baseline_branch_id: BASELINE,
    alpha: 0.05,
    computed_at_unix_secs: T0 / 1000,
    sample_ratio_mismatch: { mismatch: srm.mismatch, e_value: srm.eValue, alpha: 0.001, observed: {}, expected: {} },
    branches: [],
    metrics: metrics.map((metric) => ({
      metric_key: metric.key,
      name: metric.key,
      kind: 'binary',
      higher_is_better: metric.higherIsBetter,
      branches: [
        { branch_id: CANDIDATE, n: metric.n[0], estimate: 0.5, interval: null },
        { branch_id: BASELINE, n: metric.n[1], estimate: 0.5, interval: null },
      ],
      comparisons: [{ branch_id: CANDIDATE, difference: metric.difference, interval: metric.interval, decision: metric.decision }],
    })),
  };
}

const success = (overrides: Partial<MetricSpec> = {}): MetricSpec => ({
  key: 'call_successful',
  higherIsBetter: true,
  n: [500, 5_000],
  difference: 0.01,
  interval: { lower: -0.03, upper: 0.05 },
  decision: 'inconclusive',
  ...overrides,
});

function rollout(overrides: Partial<RolloutUnderEvaluation> = {}): RolloutUnderEvaluation {
  return {
    branchId: CANDIDATE,
    baselineBranchId: BASELINE,
    steps: [
      { trafficPercentage: 10, minDurationSecs: 600, minOutcomesPerBranch: 200 },
      { trafficPercentage: 50, minDurationSecs: 1_200, minOutcomesPerBranch: 1_000 },
    ],
    guardMetrics: [{ metricKey: 'call_successful', maxRegression: 0.02 }],
    currentStep: 0,
    stepStartedAtMs: T0,
    stepExtended: false,
    ...overrides,
  };
}

const AFTER_STEP_0 = T0 + 600_000;

describe('rolling back', () => {
  it('on a sample-ratio mismatch, at once (before the step\'s duration), with the e-value', () => {
    const action = decideRollout(results([success()], { mismatch: true, eValue: 2_345.6 }), rollout(), T0 + 1_000);
    expect(action.type).toBe('rolled_back');
    expect(action.reason).toContain('sample ratio mismatch');
    expect(action.numbers.sample_ratio_mismatch).toEqual({ mismatch: true, e_value: 2_345.6, alpha: 0.001 });
  });

  it('on a guard metric worse beyond max_regression (the whole interval below −max), with the numbers it decided on', () => {
    const worse = success({ difference: -0.1, interval: { lower: -0.15, upper: -0.05 }, decision: 'worse' });
    const action = decideRollout(results([worse]), rollout(), T0 + 1_000);
    expect(action.type).toBe('rolled_back');
    expect(action.reason).toContain('call_successful regressed beyond 0.02');
    expect(action.numbers.guard_metrics).toEqual([
      {
        metric_key: 'call_successful',
        higher_is_better: true,
        max_regression: 0.02,
        n: { [CANDIDATE]: 500, [BASELINE]: 5_000 },
        difference: -0.1,
        interval: { lower: -0.15, upper: -0.05 },
        decision: 'worse',
        regressed: true,
      },
    ]);
  });

  it('for a metric where lower is better, when the whole interval is above +max', () => {
    const slower = { key: 'call_duration_secs', higherIsBetter: false, n: [500, 500] as [number, number], difference: 30, interval: { lower: 12, upper: 48 }, decision: 'worse' as const };
    const guards = [{ metricKey: 'call_duration_secs', maxRegression: 10 }];
    expect(decideRollout(results([slower]), rollout({ guardMetrics: guards }), T0).type).toBe('rolled_back');
    // Faster is better: never a regression.
    const faster = { ...slower, difference: -30, interval: { lower: -48, upper: -12 }, decision: 'better' as const };
    expect(decideRollout(results([faster]), rollout({ guardMetrics: guards }), T0).type).toBe('wait');
    // Slower, but not beyond the 10 s allowed.
    expect(decideRollout(results([{ ...slower, interval: { lower: 8, upper: 48 } }]), rollout({ guardMetrics: guards }), T0).type).toBe('wait');
  });

  it('not while the interval allows a regression within max_regression, nor without evidence', () => {
    const within = success({ difference: -0.03, interval: { lower: -0.05, upper: -0.01 }, decision: 'worse' });
    expect(decideRollout(results([within]), rollout(), T0).type).toBe('wait');
    // The point estimate alone is beyond it, the interval is not: no evidence yet.
    const unsure = success({ difference: -0.1, interval: { lower: -0.3, upper: 0.1 }, decision: 'inconclusive' });
    expect(decideRollout(results([unsure]), rollout(), T0).type).toBe('wait');
    // Below its minimum sample the comparison has no interval: no evidence, whatever the estimate.
    expect(decideRollout(results([success({ interval: null, difference: -0.5, decision: 'inconclusive' })]), rollout(), T0).type).toBe('wait');
  });

  it('when any one of several guards regressed', () => {
    const guards = [
      { metricKey: 'call_successful', maxRegression: 0.02 },
      { metricKey: 'csat', maxRegression: 0.1 },
    ];
    const csat = success({ key: 'csat', difference: -0.5, interval: { lower: -0.8, upper: -0.2 }, decision: 'worse' });
    const action = decideRollout(results([success(), csat]), rollout({ guardMetrics: guards }), AFTER_STEP_0);
    expect(action.type).toBe('rolled_back');
    expect(action.reason).toContain('csat');
    expect(action.reason).not.toContain('call_successful');
    expect(action.numbers.guard_metrics.map((guard) => guard.regressed)).toEqual([false, true]);
  });
});

describe('advancing, extending, completing', () => {
  it('waits until the step\'s min_duration_secs has passed', () => {
    const action = decideRollout(results([success()]), rollout(), AFTER_STEP_0 - 1);
    expect(action).toMatchObject({ type: 'wait', reason: expect.stringContaining('599 s of its 600 s') });
  });

  it('advances to the next step once the duration has passed and every guard has its values on both branches', () => {
    const action = decideRollout(results([success({ n: [200, 200] })]), rollout(), AFTER_STEP_0);
    expect(action).toMatchObject({ type: 'advanced', toStep: 1 });
    expect(action.reason).toContain('step 2 sends 50%');
    expect(action.numbers.guard_metrics[0].n).toEqual({ [CANDIDATE]: 200, [BASELINE]: 200 });
  });

  it('completes after the last step', () => {
    const action = decideRollout(results([success({ n: [1_000, 4_000] })]), rollout({ currentStep: 1 }), AFTER_STEP_0 + 600_000);
    expect(action.type).toBe('completed');
  });

  it('extends a step once when a guard lacks values on either branch, then keeps waiting', () => {
    for (const n of [[199, 5_000], [5_000, 199], [0, 0]] as [number, number][]) {
      const action = decideRollout(results([success({ n })]), rollout(), AFTER_STEP_0);
      expect(action.type, JSON.stringify(n)).toBe('extended');
      expect(action.reason).toContain('needs 200 values per branch');
      expect(decideRollout(results([success({ n })]), rollout({ stepExtended: true }), AFTER_STEP_0 + 3_600_000).type).toBe('wait');
    }
    // Once the values are there, the extended step advances.
    expect(decideRollout(results([success()]), rollout({ stepExtended: true }), AFTER_STEP_0 + 3_600_000).type).toBe('advanced');
  });

  it('counts a guard metric the results do not have as no values', () => {
    const action = decideRollout(results([]), rollout(), AFTER_STEP_0);
    expect(action.type).toBe('extended');
    expect(action.numbers.guard_metrics[0]).toMatchObject({ higher_is_better: null, n: { [CANDIDATE]: 0, [BASELINE]: 0 }, decision: null, regressed: false });
  });
});

describe('regressedBeyond', () => {
  it('is the interval beyond the allowed regression, in the metric\'s direction; no interval is no evidence', () => {
    const worse = (lower: number, upper: number) => ({ branch_id: CANDIDATE, difference: (lower + upper) / 2, interval: { lower, upper }, decision: 'worse' as const });
    expect(regressedBeyond(worse(-0.2, -0.05), 0.02, true)).toBe(true);
    expect(regressedBeyond(worse(-0.2, -0.02), 0.02, true)).toBe(false);
    expect(regressedBeyond(worse(-0.2, -0.05), 0, true)).toBe(true);
    expect(regressedBeyond(worse(0.05, 0.2), 0.02, false)).toBe(true);
    expect(regressedBeyond(worse(0.02, 0.2), 0.02, false)).toBe(false);
    expect(regressedBeyond({ ...worse(-0.2, -0.05), interval: null, decision: 'inconclusive' }, 0.02, true)).toBe(false);
  });
});

describe('stepSplit', () => {
  it('gives the candidate its share from the baseline; other branches keep theirs', () => {
    const before = { main: 70, beta: 20, canary: 10 };
    expect(stepSplit(before, 'canary', 'main', 50)).toEqual([
      { branchId: 'main', percentage: 30 },
      { branchId: 'beta', percentage: 20 },
      { branchId: 'canary', percentage: 50 },
    ]);
    expect(stepSplit({ main: 100 }, 'canary', 'main', 100)).toEqual([
      { branchId: 'main', percentage: 0 },
      { branchId: 'canary', percentage: 100 },
    ]);
    // Fractions do not leave residues.
    expect(stepSplit({ main: 66.7, beta: 33.3 }, 'canary', 'main', 0.1)[0].percentage).toBe(66.6);
  });
});
