import { regressed } from '../../domain/experiment-stats.js';
import type { Decision, ExperimentResults, Interval } from './guarded-rollouts.sources.js';

/**
 * What the evaluator does with a running guarded rollout, given the experiment's results: a pure
 * function of the results, the rollout and the time, so every transition is tested with plain
 * inputs. The rules (issue 20):
 *
 * 1. A sample-ratio mismatch, or any guard metric that regressed beyond its `max_regression`, rolls
 *    the rollout back at once, whatever the step's duration.
 * 2. Otherwise nothing moves before the step's `min_duration_secs` has passed.
 * 3. Then, when every guard metric has at least `min_outcomes_per_branch` values on both the
 *    candidate and the baseline, the rollout advances to the next step, or completes after the
 *    last; if not, the step is extended once (an event) and the rollout keeps waiting.
 */

export interface RolloutStep {
  trafficPercentage: number;
  minDurationSecs: number;
  minOutcomesPerBranch: number;
}

export interface GuardMetric {
  metricKey: string;
  /** How much worse than the baseline the candidate may be, in the metric's units (≥ 0). */
  maxRegression: number;
}

/** What the decision needs of a rollout. */
export interface RolloutUnderEvaluation {
  branchId: string;
  baselineBranchId: string;
  steps: readonly RolloutStep[];
  guardMetrics: readonly GuardMetric[];
  currentStep: number;
  stepStartedAtMs: number;
  /** Whether the current step was extended already (an `extended` event is written once a step). */
  stepExtended: boolean;
}

/** One guard metric's numbers as the decision read them (snake_case: stored and shown as they are). */
export interface GuardNumbers {
  metric_key: string;
  /** Null when the results do not have the metric (no values yet, or it was deleted). */
  higher_is_better: boolean | null;
  max_regression: number;
  /** Values per branch: the candidate's and the baseline's. */
  n: Record<string, number>;
  difference: number | null;
  interval: Interval | null;
  decision: Decision | null;
  regressed: boolean;
}

export interface DecisionNumbers {
  sample_ratio_mismatch: { mismatch: boolean; e_value: number; alpha: number };
  guard_metrics: GuardNumbers[];
}

export type RolloutAction =
  | { type: 'rolled_back'; reason: string; numbers: DecisionNumbers }
  | { type: 'advanced'; toStep: number; reason: string; numbers: DecisionNumbers }
  | { type: 'completed'; reason: string; numbers: DecisionNumbers }
  | { type: 'extended'; reason: string; numbers: DecisionNumbers }
  | { type: 'wait'; reason: string; numbers: DecisionNumbers };

/**
 * A regression beyond `maxRegression` on the wire's comparison: the statistics' guard (the whole
 * always-valid interval beyond the allowed regression; no interval, below the minimum sample, is
 * no evidence).
 */
export function regressedBeyond(
  comparison: { branch_id: string; difference: number | null; interval: Interval | null; decision: Decision },
  maxRegression: number,
  higherIsBetter: boolean,
): boolean {
  const { branch_id: branchId, difference, interval, decision } = comparison;
  return regressed({ branchId, difference, interval, decision }, maxRegression, higherIsBetter);
}

/** The numbers of every guard metric, read from the results. */
export function guardNumbers(results: ExperimentResults, rollout: RolloutUnderEvaluation): DecisionNumbers {
  const srm = results.sample_ratio_mismatch;
  return {
    sample_ratio_mismatch: { mismatch: srm.mismatch, e_value: srm.e_value, alpha: srm.alpha },
    guard_metrics: rollout.guardMetrics.map((guard) => {
      const metric = results.metrics.find((candidate) => candidate.metric_key === guard.metricKey);
      const nOf = (branchId: string) => metric?.branches.find((branch) => branch.branch_id === branchId)?.n ?? 0;
      const comparison = metric?.comparisons.find((candidate) => candidate.branch_id === rollout.branchId);
      return {
        metric_key: guard.metricKey,
        higher_is_better: metric?.higher_is_better ?? null,
        max_regression: guard.maxRegression,
        n: { [rollout.branchId]: nOf(rollout.branchId), [rollout.baselineBranchId]: nOf(rollout.baselineBranchId) },
        difference: comparison?.difference ?? null,
        interval: comparison?.interval ?? null,
        decision: comparison?.decision ?? null,
        regressed: metric && comparison ? regressedBeyond(comparison, guard.maxRegression, metric.higher_is_better) : false,
      };
    }),
  };
}

const format = (value: number) => String(Math.round(value * 10_000) / 10_000);
const intervalText = (interval: Interval | null) => (interval ? `[${format(interval.lower)}, ${format(interval.upper)}]` : 'none');

export function decideRollout(results: ExperimentResults, rollout: RolloutUnderEvaluation, nowMs: number): RolloutAction {
  const numbers = guardNumbers(results, rollout);
  const srm = numbers.sample_ratio_mismatch;
  if (srm.mismatch) {
    return {
      type: 'rolled_back',
      reason: `sample ratio mismatch: the branches' exposures do not match the split (e-value ${format(srm.e_value)} ≥ 1/${srm.alpha})`,
      numbers,
    };
  }
  const regressed = numbers.guard_metrics.filter((guard) => guard.regressed);
  if (regressed.length > 0) {
    const what = regressed.map(
      (guard) =>
        `${guard.metric_key} regressed beyond ${format(guard.max_regression)} (difference ${format(guard.difference ?? 0)}, interval ${intervalText(guard.interval)})`,
    );
    return { type: 'rolled_back', reason: what.join('; '), numbers };
  }

  const step = rollout.steps[rollout.currentStep];
  const stepNumber = `step ${rollout.currentStep + 1} of ${rollout.steps.length}`;
  const elapsedMs = nowMs - rollout.stepStartedAtMs;
  if (elapsedMs < step.minDurationSecs * 1000) {
    return { type: 'wait', reason: `${stepNumber} has run ${Math.floor(elapsedMs / 1000)} s of its ${step.minDurationSecs} s`, numbers };
  }
  const short = numbers.guard_metrics.filter((guard) => Object.values(guard.n).some((n) => n < step.minOutcomesPerBranch));
  if (short.length > 0) {
    const what = short.map((guard) => `${guard.metric_key} has ${Object.entries(guard.n).map(([branch, n]) => `${n} on ${branch}`).join(', ')}`);
    const reason = `${stepNumber} needs ${step.minOutcomesPerBranch} values per branch of every guard metric: ${what.join('; ')}`;
    return rollout.stepExtended ? { type: 'wait', reason, numbers } : { type: 'extended', reason, numbers };
  }
  const enough = `every guard metric has at least ${step.minOutcomesPerBranch} values per branch and none regressed`;
  if (rollout.currentStep + 1 >= rollout.steps.length) {
    return { type: 'completed', reason: `${stepNumber} done: ${enough}`, numbers };
  }
  const next = rollout.steps[rollout.currentStep + 1];
  return {
    type: 'advanced',
    toStep: rollout.currentStep + 1,
    reason: `${stepNumber} done: ${enough}; step ${rollout.currentStep + 2} sends ${format(next.trafficPercentage)}% to the branch`,
    numbers,
  };
}
