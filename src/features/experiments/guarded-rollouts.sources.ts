import type { AppContext } from '../../context.js';
import type { Decision, Interval } from '../../domain/experiment-stats.js';
import type { AgentRow } from '../agents/agents.store.js';

/**
 * What guarded rollouts read from the rest of the experiments slice: the results of an agent's
 * experiment (`GET …/experiment-results`, the same object) and the metrics it may guard.
 */

export type { Decision, Interval };

/** The body of `GET /v1/convai/agents/{agent_id}/experiment-results`, which the evaluator decides on. */
export interface ExperimentResults {
  agent_id: string;
  baseline_branch_id: string;
  alpha: number;
  computed_at_unix_secs: number;
  sample_ratio_mismatch: { mismatch: boolean; e_value: number; alpha: number; observed: Record<string, number>; expected: Record<string, number> };
  branches: { branch_id: string; exposures: number; expected_share: number; observed_share: number; outcome_coverage: number }[];
  metrics: {
    metric_key: string;
    name: string;
    kind: 'binary' | 'mean';
    higher_is_better: boolean;
    branches: { branch_id: string; n: number; estimate: number | null; interval: Interval | null }[];
    comparisons: { branch_id: string; difference: number | null; interval: Interval | null; decision: Decision }[];
  }[];
}

/** An agent's experiment results against `baselineBranchId`, at `alpha` (no caller: the evaluator runs as the system). */
export type ExperimentResultsSource = (context: AppContext, agent: AgentRow, options: { baselineBranchId: string; alpha: number }) => Promise<ExperimentResults>;

/** A metric a rollout may guard: built in, or defined for the agent. */
export interface GuardableMetric {
  metric_key: string;
  higher_is_better: boolean;
}

export type MetricCatalogue = (context: AppContext, agent: AgentRow) => Promise<GuardableMetric[]>;

export interface GuardedRolloutSources {
  results: ExperimentResultsSource;
  metrics: MetricCatalogue;
}

/** The built-in metrics (every agent has them): success rate, and handling time (lower is better). */
export const BUILT_IN_METRICS: readonly GuardableMetric[] = [
  { metric_key: 'call_successful', higher_is_better: true },
  { metric_key: 'call_duration_secs', higher_is_better: false },
];

/**
 * The sources the server runs with. The results service of the experiments slice
 * (`results.service.ts`) and its metric definitions are wired in here: until they are, the
 * metrics are the built-in ones and results cannot be read, so no rollout advances (each
 * evaluation fails and is logged; a rollback by hand still works).
 */
export const DEFAULT_SOURCES: GuardedRolloutSources = {
  results: async () => {
    throw new Error('experiment results are not available in this build: guarded rollouts cannot be evaluated');
  },
  metrics: async () => [...BUILT_IN_METRICS],
};
