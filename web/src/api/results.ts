import { api } from '../api';

// The results screen's calls: experiment results per branch and metric, the agent's metrics, and
// its guarded rollouts (all extensions of the API). Wire shapes are the fields the screen uses.

export interface Interval {
  lower: number;
  upper: number;
}

export type Decision = 'better' | 'worse' | 'inconclusive';

export interface ExperimentResults {
  agent_id: string;
  baseline_branch_id: string;
  alpha: number;
  computed_at_unix_secs: number;
  sample_ratio_mismatch: { mismatch: boolean; e_value: number; alpha: number; observed: Record<string, number>; expected: Record<string, number> };
  branches: { branch_id: string; exposures: number; expected_share: number | null; observed_share: number | null; outcome_coverage: number | null }[];
  metrics: MetricResult[];
}

export interface MetricResult {
  metric_key: string;
  name: string;
  kind: 'binary' | 'mean';
  higher_is_better: boolean;
  branches: { branch_id: string; n: number; estimate: number | null; interval: Interval | null }[];
  comparisons: { branch_id: string; difference: number | null; interval: Interval | null; decision: Decision }[];
}

export interface MetricDefinition {
  metric_key: string;
  name: string;
  kind: 'binary' | 'mean';
  higher_is_better: boolean;
  built_in: boolean;
}

export interface RolloutStep {
  traffic_percentage: number;
  min_duration_secs: number;
  min_outcomes_per_branch: number;
}

export interface RolloutEvent {
  type: 'started' | 'advanced' | 'extended' | 'rolled_back' | 'completed' | 'paused' | 'resumed';
  at_unix_secs: number;
  step: number;
  deployment_id?: string | null;
  reason: string;
}

export type RolloutStatus = 'running' | 'paused' | 'completed' | 'rolled_back';

export interface GuardedRollout {
  guarded_rollout_id: string;
  branch_id: string;
  baseline_branch_id: string;
  status: RolloutStatus;
  current_step: number;
  steps: RolloutStep[];
  guard_metrics: { metric_key: string; max_regression: number }[];
  started_at_unix_secs: number;
  step_started_at_unix_secs: number;
  events?: RolloutEvent[];
}

export interface NewRollout {
  branch_id: string;
  baseline_branch_id: string;
  steps: RolloutStep[];
  guard_metrics: { metric_key: string; max_regression: number }[];
  alpha: number;
}

const agentPath = (agentId: string) => `/v1/convai/agents/${encodeURIComponent(agentId)}`;

export const resultsPath = (agentId: string) => `${agentPath(agentId)}/experiment-results`;
export const metricsPath = (agentId: string) => `${agentPath(agentId)}/metrics`;
export const rolloutsPath = (agentId: string) => `${agentPath(agentId)}/guarded-rollouts`;

export function startRollout(agentId: string, rollout: NewRollout): Promise<{ guarded_rollout_id: string }> {
  return api('POST', rolloutsPath(agentId), rollout);
}

export function actOnRollout(agentId: string, rolloutId: string, action: 'pause' | 'resume' | 'rollback'): Promise<unknown> {
  return api('POST', `${rolloutsPath(agentId)}/${encodeURIComponent(rolloutId)}/${action}`, {});
}
