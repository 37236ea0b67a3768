import type { Database } from './schema.js';

/**
 * Every table, parents before children, with its primary key: what export, import and copy move
 * and verify. A test checks this list against the tables the migrations create.
 */
export const TABLES: readonly { name: keyof Database; key: readonly string[] }[] = [
  { name: 'workspaces', key: ['id'] },
  { name: 'users', key: ['id'] },
  { name: 'api_keys', key: ['id'] },
  { name: 'agents', key: ['id'] },
  { name: 'agent_tags', key: ['agent_id', 'tag'] },
  { name: 'branches', key: ['id'] },
  { name: 'versions', key: ['id'] },
  { name: 'blobs', key: ['hash'] },
  { name: 'drafts', key: ['branch_id', 'user_id'] },
  { name: 'deployments', key: ['id'] },
  { name: 'merge_proposals', key: ['id'] },
  { name: 'merge_proposal_reviews', key: ['proposal_id', 'user_id'] },
  { name: 'merge_proposal_comments', key: ['id'] },
  { name: 'audit_events', key: ['id'] },
  { name: 'procedures', key: ['id'] },
  { name: 'procedure_versions', key: ['id'] },
  { name: 'procedure_drafts', key: ['branch_id', 'user_id', 'procedure_id'] },
  { name: 'guarded_rollouts', key: ['id'] },
  { name: 'guarded_rollout_events', key: ['rollout_id', 'seq_no'] },
  // Carried like the rest: a lease copied to another store has a holder no process there has,
  // and expires within its duration (src/db/leases.ts).
  { name: 'leases', key: ['name'] },
  { name: 'outcome_webhooks', key: ['id'] },
  { name: 'experiment_metrics', key: ['agent_id', 'metric_key'] },
  { name: 'exposure_logs', key: ['agent_id'] },
  { name: 'exposure_arms', key: ['agent_id', 'arm'] },
  { name: 'exposure_segments', key: ['agent_id', 'seq'] },
  { name: 'outcome_values', key: ['agent_id', 'unit_id', 'metric_key'] },
  { name: 'webhook_deliveries', key: ['agent_id', 'conversation_id', 'type'] },
  { name: 'outcome_cells', key: ['agent_id', 'metric_key', 'deployment_id', 'branch_id', 'day'] },
  { name: 'exposure_cells', key: ['agent_id', 'deployment_id', 'branch_id', 'day'] },
];
