import type { Kysely } from 'kysely';

import type { Database } from '../../db/schema.js';
import type { JsonObject } from '../../domain/canonical-json.js';
import { newId } from '../../domain/ids.js';
import type { Caller } from '../../domain/caller.js';
import { auditStore } from './audit.store.js';

/**
 * Every action the audit log records. Commits are attributed by their versions (author, time);
 * agent-wide settings are not versioned, so each change of them is `agent.settings_update`.
 */
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
  // The evaluator's actions (actor `system`); a rollback by it is `guarded_rollout.rollback` too.
  'guarded_rollout.advance',
  'guarded_rollout.extend',
  'guarded_rollout.complete',
  'outcome_webhook.create',
  'outcome_webhook.delete',
  'metric.create',
  'metric.delete',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditRecord {
  action: AuditAction;
  agentId?: string | null;
  /** The branch, deployment, proposal, key or workspace the write was about. */
  resourceId?: string | null;
  /** What changed, small. Never an API key, its hash or its prefix. */
  details?: JsonObject;
}

/**
 * Records a write by an API key's user. Call it with the write's own transaction: the event
 * then exists exactly when the write commits.
 */
export async function recordUserAction(trx: Kysely<Database>, caller: Caller, atMs: number, record: AuditRecord): Promise<void> {
  await insertEvent(trx, caller.workspaceId, atMs, 'user', caller.userId, record);
}

/** Records a write made without a user: the operator's CLI, the first-start bootstrap, or the guarded rollout evaluator. */
export async function recordOperatorAction(
  trx: Kysely<Database>,
  kind: 'cli' | 'system',
  workspaceId: string,
  atMs: number,
  record: AuditRecord,
): Promise<void> {
  await insertEvent(trx, workspaceId, atMs, kind, null, record);
}

async function insertEvent(
  trx: Kysely<Database>,
  workspaceId: string,
  atMs: number,
  actorKind: 'user' | 'cli' | 'system',
  actorUserId: string | null,
  record: AuditRecord,
): Promise<void> {
  await auditStore(trx).insert({
    id: newId('auditevt_', atMs),
    workspace_id: workspaceId,
    at_ms: atMs,
    actor_kind: actorKind,
    actor_user_id: actorUserId,
    action: record.action,
    agent_id: record.agentId ?? null,
    resource_id: record.resourceId ?? null,
    details: JSON.stringify(record.details ?? {}),
  });
}
