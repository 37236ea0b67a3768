// The audit log's call: `GET /v1/convai/audit-events` (an extension of the API, admin only).

export const AUDIT_EVENTS_PATH = '/v1/convai/audit-events';

/** The actions the route filters by (the server's list: src/features/audit/audit.events.ts; a test keeps them equal). */
export const AUDIT_ACTIONS = [
  'agent.create',
  'agent.settings_update',
  'agent.duplicate',
  'agent.delete',
  'workspace.create',
  'key.create',
  'key.revoke',
  'branch.create',
  'branch.update',
  'merge',
  'rebase',
  'deployment.create',
  'deployment.rollback',
  'draft.create',
  'draft.delete',
  'merge_proposal.create',
  'merge_proposal.update',
  'merge_proposal.review',
  'merge_proposal.comment',
  'merge_proposal.merge',
  'procedure.create',
  'procedure.delete',
  'procedure.draft_update',
  'procedure.draft_delete',
  'guarded_rollout.create',
  'guarded_rollout.pause',
  'guarded_rollout.resume',
  'guarded_rollout.rollback',
  'guarded_rollout.advance',
  'guarded_rollout.extend',
  'guarded_rollout.complete',
  'outcome_webhook.create',
  'outcome_webhook.delete',
  'metric.create',
  'metric.delete',
] as const;

export interface AuditEvent {
  id: string;
  at_unix_secs: number;
  action: string;
  actor_kind: 'user' | 'cli' | 'system';
  actor_user_id: string | null;
  actor_name: string | null;
  agent_id: string | null;
  resource_id: string | null;
  details: Record<string, unknown>;
}

export interface AuditEventsPage {
  events: AuditEvent[];
  has_more: boolean;
  next_cursor: string | null;
}
