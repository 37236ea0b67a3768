import type { Kysely } from 'kysely';

import type { AppContext } from '../../context.js';
import type { Database } from '../../db/schema.js';
import type { Decision, Interval } from '../../domain/experiment-stats.js';
import type { AgentRow } from '../agents/agents.store.js';
import { metricsOf } from './experiments.service.js';
import { type ExperimentResults, experimentResultsOf } from './results.service.js';

/**
 * What guarded rollouts read from the rest of the experiments slice: the results of an agent's
 * experiment (`GET …/experiment-results`, the same object) and the metrics it may guard. Tests
 * inject their own (`AppOptions.guardedRolloutSources`) to drive the evaluator through every
 * transition.
 */

export type { Decision, ExperimentResults, Interval };

/** An agent's experiment results against `baselineBranchId`, at `alpha` (no caller: the evaluator runs as the system). */
export type ExperimentResultsSource = (context: AppContext, agent: AgentRow, options: { baselineBranchId: string; alpha: number }) => Promise<ExperimentResults>;

/** A metric a rollout may guard: built in, or defined for the agent. */
export interface GuardableMetric {
  metric_key: string;
  higher_is_better: boolean;
}

/** The agent's metrics, read through `db` (a rollout is checked inside its write transaction). */
export type MetricCatalogue = (db: Kysely<Database>, agent: AgentRow) => Promise<GuardableMetric[]>;

export interface GuardedRolloutSources {
  results: ExperimentResultsSource;
  metrics: MetricCatalogue;
}

/** The sources the server runs with: the results service and the metric definitions of the experiments slice. */
export const DEFAULT_SOURCES: GuardedRolloutSources = {
  results: (context, agent, options) => experimentResultsOf(context.db, agent, options, context.now()),
  metrics: async (db, agent) => (await metricsOf(db, agent.id)).map((metric) => ({ metric_key: metric.key, higher_is_better: metric.higherIsBetter })),
};
