import type { Generated } from 'kysely';

import type { Role } from '../domain/caller.js';

// Row types of every table, as Kysely sees them. Booleans are stored as 0/1 integers and
// JSON as TEXT on both dialects, so the stores read the same rows from SQLite and PostgreSQL.
// Times are unix milliseconds (the wire shows seconds; merges compare milliseconds, §12.5).

export interface WorkspaceTable {
  id: string;
  name: string;
  created_at_ms: number;
}

export interface UserTable {
  id: string;
  workspace_id: string;
  name: string;
  email: string;
  role: Role;
  created_at_ms: number;
}

export interface ApiKeyTable {
  id: string;
  workspace_id: string;
  user_id: string;
  /** SHA-256 of the key, hex. The key itself is never stored. */
  key_hash: string;
  /** The first characters of the key, enough for a person to recognise it in `keys list`. */
  key_prefix: string;
  created_at_ms: number;
  revoked_at_ms: number | null;
}

export interface AgentTable {
  id: string;
  workspace_id: string;
  name: string;
  /** JSON array of strings. */
  tags: string;
  /** JSON object: the per-agent parts of platform_settings (auth, call_limits, privacy, ban, archived). */
  agent_settings: string;
  /** Denormalised from main's head, for list and summary pages. */
  voice_id: string;
  archived: number;
  main_branch_id: string;
  created_by_user_id: string;
  created_at_ms: number;
  updated_at_ms: number;
  /**
   * Moves by one with every update of this row (agentsStore.update). Caches of anything rendered
   * from the row key on it: unlike `updated_at_ms`, two writes never share one.
   */
  revision: Generated<number>;
}

/** One row per tag of an agent, for the `tags` filter of the agent list. */
export interface AgentTagTable {
  agent_id: string;
  tag: string;
}

export interface BranchTable {
  id: string;
  agent_id: string;
  name: string;
  /** `branchNameKey(name)`, unique per agent: look-alike names cannot coexist (migration 0008). */
  name_key: string;
  description: string;
  parent_branch_id: string | null;
  head_version_id: string;
  head_seq_no: number;
  protection_status: 'writer_perms_required' | 'admin_perms_required';
  auto_rebase: number;
  is_archived: number;
  merged_into_branch_id: string | null;
  created_by_user_id: string;
  created_at_ms: number;
  last_committed_at_ms: number;
}

export interface VersionTable {
  id: string;
  agent_id: string;
  branch_id: string;
  seq_no_in_branch: number;
  in_branch_parent_id: string | null;
  out_of_branch_parent_id: string | null;
  merged_from_branch_id: string | null;
  merged_from_version_id: string | null;
  merged_into_branch_id: string | null;
  rebased_from_version_id: string | null;
  /** Longest path from a root of the version DAG; lets merge-base search stop early. */
  generation: number;
  description: string;
  author_user_id: string;
  committed_at_ms: number;
  /** Root of the content-addressed document tree (table `blobs`). */
  document_hash: string;
  /** For a merge into main: JSON array of the users who published the merged changes. */
  merged_author_ids: string | null;
  /** Blob of the version's frontier (src/domain/frontier.ts). */
  frontier_hash: string | null;
}

export interface BlobTable {
  hash: string;
  body: string;
}

export interface DraftTable {
  branch_id: string;
  user_id: string;
  agent_id: string;
  document_hash: string;
  created_at_ms: number;
  /** The branch's head sequence number when the draft was saved (`draft_is_behind_tip`). */
  based_on_seq_no: number;
}

export interface DeploymentTable {
  id: string;
  agent_id: string;
  seq_no: number;
  /** JSON object {branch_id: percentage}, in request order. */
  split: string;
  /** JSON array of branch ids, the indexes of `bucket_table`. */
  branch_ids: string;
  /** Runs of `index*length` over the 10,000 buckets. */
  bucket_table: string;
  source: 'manual' | 'branch_merge';
  author_user_id: string;
  deployed_at_ms: number;
  is_active: number;
  /** The guarded rollout that made this deployment (a step or its rollback), else null (migration 0011). */
  guarded_rollout_id: string | null;
  /** Why the rollout made it, as its history item shows; null for other deployments. */
  reason: string | null;
}

export interface MergeProposalTable {
  id: string;
  agent_id: string;
  source_branch_id: string;
  target_branch_id: string;
  source_tip_version_id_at_creation: string;
  title: string;
  description: string;
  /** JSON array of user ids. */
  requested_reviewer_user_ids: string;
  triage_ticket_id: string | null;
  author_user_id: string;
  status: 'open' | 'merged' | 'closed';
  close_reason: 'withdrawn' | 'rejected' | 'branch_archived' | null;
  outcome_version_id: string | null;
  outcome_at_ms: number | null;
  outcome_by_user_id: string | null;
  created_at_ms: number;
  updated_at_ms: number;
}

export interface MergeProposalReviewTable {
  proposal_id: string;
  user_id: string;
  state: 'approved' | 'changes_requested';
  comment: string;
  reviewer_role: Role;
  source_version_id: string;
  submitted_at_ms: number;
}

export interface MergeProposalCommentTable {
  id: string;
  proposal_id: string;
  user_id: string;
  body: string;
  created_at_ms: number;
}

/** Who did a write: an API key's user, the operator's CLI, or the server's first-start bootstrap. */
export type ActorKind = 'user' | 'cli' | 'system';

/** One attributable write (src/features/audit). */
export interface AuditEventTable {
  id: string;
  workspace_id: string;
  at_ms: number;
  actor_kind: ActorKind;
  /** Null when the actor is not a user (`cli`, `system`). */
  actor_user_id: string | null;
  /** `branch.update`, `merge`, `key.create`, … (AuditAction). */
  action: string;
  agent_id: string | null;
  /** The branch, deployment, proposal, key or workspace the write was about. */
  resource_id: string | null;
  /** JSON object: what changed. Never key material. */
  details: string;
}

/** A procedure's identity (src/features/procedures): it belongs to one agent. */
export interface ProcedureTable {
  id: string;
  agent_id: string;
  created_by_user_id: string;
  created_at_ms: number;
}

/** An immutable procedure version, which agent versions' `procedures` maps point at. */
export interface ProcedureVersionTable {
  id: string;
  procedure_id: string;
  agent_id: string;
  /** Root of the content-addressed `ProcedureBody` (table `blobs`). */
  body_hash: string;
  author_user_id: string;
  created_at_ms: number;
}

/** A user's unpublished edit of a procedure on a branch, until their next publish there. */
export interface ProcedureDraftTable {
  branch_id: string;
  user_id: string;
  procedure_id: string;
  agent_id: string;
  /** Root of the drafted `ProcedureBody`; null stages the procedure's removal. */
  body_hash: string | null;
  updated_at_ms: number;
}

/** A lease on background work that runs once however many processes serve (src/db/leases.ts). */
export interface LeaseTable {
  name: string;
  /** Whoever holds it: one process's (one app's) random id. */
  holder: string;
  expires_at_ms: number;
}

export type GuardedRolloutStatus = 'running' | 'paused' | 'completed' | 'rolled_back';

/** A branch rolled out by steps while guard metrics are watched (src/features/experiments/guarded-rollouts*). */
export interface GuardedRolloutTable {
  id: string;
  agent_id: string;
  branch_id: string;
  baseline_branch_id: string;
  /** JSON array of `{traffic_percentage, min_duration_secs, min_outcomes_per_branch}`. */
  steps: string;
  /** JSON array of `{metric_key, max_regression}`. */
  guard_metrics: string;
  alpha: number;
  status: GuardedRolloutStatus;
  current_step: number;
  /** 1 once the current step was extended. */
  step_extended: number;
  /** JSON object {branch_id: percentage}: the split before the rollout, which a rollback restores. */
  before_split: string;
  before_deployment_id: string;
  created_by_user_id: string;
  started_at_ms: number;
  step_started_at_ms: number;
  ended_at_ms: number | null;
  /** The number of its events: the next one's `seq_no`. */
  event_count: number;
}

/** What happened to a guarded rollout, and the numbers the evaluator decided on. */
export interface GuardedRolloutEventTable {
  rollout_id: string;
  seq_no: number;
  agent_id: string;
  type: 'started' | 'advanced' | 'extended' | 'rolled_back' | 'completed' | 'paused' | 'resumed';
  at_ms: number;
  step: number;
  deployment_id: string | null;
  reason: string;
  /** JSON; null for a user's action. */
  numbers: string | null;
  actor_kind: ActorKind;
  actor_user_id: string | null;
}

export interface Database {
  workspaces: WorkspaceTable;
  users: UserTable;
  api_keys: ApiKeyTable;
  agents: AgentTable;
  agent_tags: AgentTagTable;
  branches: BranchTable;
  versions: VersionTable;
  blobs: BlobTable;
  drafts: DraftTable;
  deployments: DeploymentTable;
  merge_proposals: MergeProposalTable;
  merge_proposal_reviews: MergeProposalReviewTable;
  merge_proposal_comments: MergeProposalCommentTable;
  audit_events: AuditEventTable;
  procedures: ProcedureTable;
  procedure_versions: ProcedureVersionTable;
  procedure_drafts: ProcedureDraftTable;
  leases: LeaseTable;
  guarded_rollouts: GuardedRolloutTable;
  guarded_rollout_events: GuardedRolloutEventTable;
  exposure_logs: ExposureLogTable;
  exposure_arms: ExposureArmTable;
  exposure_segments: ExposureSegmentTable;
  outcome_webhooks: OutcomeWebhookTable;
  webhook_deliveries: WebhookDeliveryTable;
  outcome_values: OutcomeValueTable;
  experiment_metrics: ExperimentMetricTable;
  outcome_cells: OutcomeCellTable;
  exposure_cells: ExposureCellTable;
}

// Experiments (issue 20, migration 0010).

/** Per agent: the numbers last given to a segment and to an arm (migration 0013). */
export interface ExposureLogTable {
  agent_id: string;
  last_seq: number;
  last_arm: number;
  /**
   * At least the number of units with an outcome value and no exposure (never fewer: exposures
   * look their units' values up while it is not 0); -1: not counted yet (migration 0014).
   */
  unexposed_value_units: Generated<number>;
}

/** What units were exposed to, numbered per agent. */
export interface ExposureArmTable {
  agent_id: string;
  arm: number;
  deployment_id: string;
  branch_id: string;
  version_id: string;
  /** The branch's share of traffic (0..1] under the deployment when exposed; null when it had none. */
  probability: number | null;
  source: 'routed' | 'reported';
}

/**
 * Exposures written together (one batch, one agent, one day): `body` is a JSON array of
 * `[unit_id, arm, exposed_at_ms]`, each unit's first exposure. A unit is a conversation id or a
 * routing key: the two share one namespace.
 */
export interface ExposureSegmentTable {
  agent_id: string;
  seq: number;
  day: number;
  units: number;
  body: string;
}

export interface OutcomeWebhookTable {
  id: string;
  workspace_id: string;
  name: string;
  secret: string;
  created_by_user_id: string;
  created_at_ms: number;
  last_received_at_ms: number | null;
}

export interface WebhookDeliveryTable {
  agent_id: string;
  conversation_id: string;
  type: string;
  received_at_ms: number;
  /** JSON: what the delivery said, as `WebhookFacts` (experiments/webhook-facts.ts). */
  extracted: string;
}

export interface OutcomeValueTable {
  agent_id: string;
  unit_id: string;
  metric_key: string;
  value: number;
  occurred_at_ms: number;
  updated_at_ms: number;
  idempotency_key: string | null;
}

export interface ExperimentMetricTable {
  agent_id: string;
  metric_key: string;
  name: string;
  kind: 'binary' | 'mean';
  higher_is_better: number;
  /** JSON `{"type", "id"?}`. */
  source: string;
  created_at_ms: number;
}

export interface OutcomeCellTable {
  agent_id: string;
  metric_key: string;
  deployment_id: string;
  branch_id: string;
  /** The exposure's UTC day: floor(exposed_at_ms / 86,400,000). */
  day: number;
  n: number;
  sum: number;
  sum_squares: number;
}

export interface ExposureCellTable {
  agent_id: string;
  deployment_id: string;
  branch_id: string;
  day: number;
  exposures: number;
  units_with_outcomes: number;
}
