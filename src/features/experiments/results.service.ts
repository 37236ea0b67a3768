import type { Kysely } from 'kysely';

import type { AppContext } from '../../context.js';
import type { Database } from '../../db/schema.js';
import type { Caller } from '../../domain/caller.js';
import {
  type ArmCell,
  armEstimates,
  compareToBaseline,
  type DeploymentShares,
  type Interval,
  sampleRatioMismatch,
} from '../../domain/experiment-stats.js';
import { bucketsPerBranch } from '../../domain/traffic-split.js';
import { NotFoundError } from '../../errors.js';
import { type AgentRow, agentsStore } from '../agents/agents.store.js';
import { branchesStore } from '../branches/branches.store.js';
import { bucketTableOf } from '../deployments/deployment-writer.js';
import { deploymentsStore } from '../deployments/deployments.store.js';
import { metricsOf, sharesOf } from './experiments.service.js';
import { experimentsStore } from './experiments.store.js';

export const DEFAULT_ALPHA = 0.05;

export interface ResultsOptions {
  /** Default: the agent's main branch. */
  baselineBranchId?: string;
  /** In (0, 0.5]; default 0.05. */
  alpha?: number;
}

/** The results, as the wire shows them (snake_case): what the route returns and the rollout evaluator reads. */
export interface ExperimentResults {
  agent_id: string;
  baseline_branch_id: string;
  alpha: number;
  computed_at_unix_secs: number;
  sample_ratio_mismatch: { mismatch: boolean; e_value: number; alpha: number; observed: Record<string, number>; expected: Record<string, number> };
  branches: { branch_id: string; exposures: number; expected_share: number | null; observed_share: number | null; outcome_coverage: number | null }[];
  metrics: {
    metric_key: string;
    name: string;
    kind: 'binary' | 'mean';
    higher_is_better: boolean;
    branches: { branch_id: string; n: number; estimate: number | null; interval: Interval | null }[];
    comparisons: { branch_id: string; difference: number | null; interval: Interval | null; decision: 'better' | 'worse' | 'inconclusive' }[];
  }[];
}

/** What the cells say of an agent, summed over days, with the shares of every deployment they name. */
export interface ResultCells {
  /** Per (deployment, branch): exposures and exposed units with any value. */
  exposures: { deploymentId: string; branchId: string; exposures: number; unitsWithOutcomes: number }[];
  /** Per metric: its cells, with the exposures of their (deployment, branch). */
  metrics: Map<string, ArmCell[]>;
  shares: DeploymentShares;
  /** The active deployment's shares. */
  activeShares: Map<string, number>;
}

/** Reads the cells (two grouped queries) and the deployments they name. */
export async function resultCells(db: Kysely<Database>, agentId: string): Promise<ResultCells> {
  const store = experimentsStore(db);
  const [exposureRows, outcomeRows, active] = await Promise.all([store.exposureCells(agentId), store.outcomeCells(agentId), deploymentsStore(db).active(agentId)]);
  if (!active) throw new Error(`agent ${agentId} has no active deployment`);
  const key = (deploymentId: string, branchId: string) => `${deploymentId}\u0000${branchId}`;
  const exposures = exposureRows.map((row) => ({
    deploymentId: row.deployment_id,
    branchId: row.branch_id,
    // PostgreSQL sums bigints as numeric, which the driver hands over as text.
    exposures: Number(row.exposures),
    unitsWithOutcomes: Number(row.units_with_outcomes),
  }));
  const exposuresOf = new Map(exposures.map((row) => [key(row.deploymentId, row.branchId), row.exposures]));
  const metrics = new Map<string, ArmCell[]>();
  for (const row of outcomeRows) {
    const cells = metrics.get(row.metric_key) ?? [];
    cells.push({
      deploymentId: row.deployment_id,
      branchId: row.branch_id,
      exposures: exposuresOf.get(key(row.deployment_id, row.branch_id)) ?? 0,
      n: Number(row.n),
      sum: Number(row.sum),
      sumSquares: Number(row.sum_squares),
    });
    metrics.set(row.metric_key, cells);
  }
  const shares = new Map<string, Map<string, number>>();
  const activeShares = sharesOf(bucketsPerBranch(bucketTableOf(active)));
  shares.set(active.id, activeShares);
  for (const deploymentId of new Set(exposures.map((row) => row.deploymentId))) {
    if (shares.has(deploymentId)) continue;
    const deployment = await deploymentsStore(db).find(agentId, deploymentId);
    // A deployment that is gone (it cannot be, short of a hand edit) has no shares: its cells are left out.
    if (deployment) shares.set(deploymentId, sharesOf(bucketsPerBranch(bucketTableOf(deployment))));
  }
  return { exposures, metrics, shares, activeShares };
}

const ratio = (part: number, whole: number) => (whole > 0 ? part / whole : null);

/**
 * The results of an agent's experiment, for an agent already found (the guarded-rollout evaluator
 * calls this without a caller). A baseline that is not a branch of the agent is a 404.
 */
export async function experimentResultsOf(db: Kysely<Database>, agent: AgentRow, options: ResultsOptions, nowMs: number): Promise<ExperimentResults> {
  const alpha = options.alpha ?? DEFAULT_ALPHA;
  const baselineBranchId = options.baselineBranchId ?? agent.main_branch_id;
  if (options.baselineBranchId !== undefined && !(await branchesStore(db).find(agent.id, baselineBranchId))) {
    throw new NotFoundError('branch', baselineBranchId);
  }
  const [cells, metrics] = await Promise.all([resultCells(db, agent.id), metricsOf(db, agent.id)]);

  // Branches: the baseline, those of the active split, then any other with exposures.
  const order = [baselineBranchId, ...cells.activeShares.keys(), ...cells.exposures.map((row) => row.branchId)];
  const branchIds = [...new Set(order)];
  const totals = new Map<string, { exposures: number; withOutcomes: number }>(branchIds.map((id) => [id, { exposures: 0, withOutcomes: 0 }]));
  let allExposures = 0;
  for (const row of cells.exposures) {
    const total = totals.get(row.branchId)!;
    total.exposures += row.exposures;
    total.withOutcomes += row.unitsWithOutcomes;
    allExposures += row.exposures;
  }
  const srm = sampleRatioMismatch(cells.exposures, cells.shares);

  return {
    agent_id: agent.id,
    baseline_branch_id: baselineBranchId,
    alpha,
    computed_at_unix_secs: Math.floor(nowMs / 1000),
    sample_ratio_mismatch: { mismatch: srm.mismatch, e_value: srm.eValue, alpha: srm.alpha, observed: { ...srm.observed }, expected: { ...srm.expected } },
    branches: branchIds.map((branchId) => {
      const total = totals.get(branchId)!;
      return {
        branch_id: branchId,
        exposures: total.exposures,
        expected_share: cells.activeShares.get(branchId) ?? null,
        observed_share: ratio(total.exposures, allExposures),
        outcome_coverage: ratio(total.withOutcomes, total.exposures),
      };
    }),
    metrics: metrics.map((metric) => {
      const metricCells = cells.metrics.get(metric.key) ?? [];
      return {
        metric_key: metric.key,
        name: metric.name,
        kind: metric.kind,
        higher_is_better: metric.higherIsBetter,
        branches: armEstimates(metricCells, cells.shares, alpha, metric.kind).map((arm) => ({
          branch_id: arm.branchId,
          n: arm.n,
          estimate: arm.estimate,
          interval: arm.interval,
        })),
        comparisons: compareToBaseline(metricCells, cells.shares, baselineBranchId, alpha, metric.higherIsBetter, metric.kind).map((comparison) => ({
          branch_id: comparison.branchId,
          difference: comparison.difference,
          interval: comparison.interval,
          decision: comparison.decision,
        })),
      };
    }),
  };
}

export function resultsService(context: AppContext) {
  return {
    /** The caller's agent's results (404 for another workspace's). */
    async experimentResults(caller: Caller, agentId: string, options: ResultsOptions): Promise<ExperimentResults> {
      const agent = await agentsStore(context.db).findOrThrow(caller.workspaceId, agentId);
      return experimentResultsOf(context.db, agent, options, context.now());
    },
  };
}

/** The interface's name for it (issue 20): `experimentResults(context, caller, agentId, options)`. */
export function experimentResults(context: AppContext, caller: Caller, agentId: string, options: ResultsOptions): Promise<ExperimentResults> {
  return resultsService(context).experimentResults(caller, agentId, options);
}
