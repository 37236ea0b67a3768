import * as z from 'zod';

import type { AppContext } from '../../context.js';
import { queryInteger } from '../../http/query.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import { AUDIT_ACTIONS } from './audit.events.js';
import { type AuditEvent, auditService } from './audit.service.js';

const TAG = 'audit';

/** Unix seconds in a query string; bounded so that the milliseconds stay exact. */
const unixSeconds = z
  .string()
  .regex(/^\d+$/, 'Input should be a valid integer')
  .transform(Number)
  .pipe(z.number().int().min(0).max(Math.floor(Number.MAX_SAFE_INTEGER / 1000)))
  .optional();

export const zAuditEvent = z.object({
  id: z.string().describe('Time-ordered id (`auditevt_…`).'),
  at_unix_secs: z.number().int().describe('When the write committed.'),
  action: z.enum(AUDIT_ACTIONS),
  actor_kind: z
    .enum(['user', 'cli', 'system'])
    .describe('`user`: the user of an API key; `cli`: the operator on the server machine (`branchwise keys …`); `system`: the first-start bootstrap or the guarded rollout evaluator.'),
  actor_user_id: z.string().nullable().describe('The user, for `actor_kind: "user"`.'),
  actor_name: z.string().nullable(),
  agent_id: z.string().nullable(),
  resource_id: z.string().nullable().describe('The branch, deployment, merge proposal, key or workspace the write was about.'),
  details: z.record(z.string(), z.unknown()).describe('What changed (for example `before`/`after` of a branch update). Never key material.'),
});

export const zAuditEventsPage = z.object({
  events: z.array(zAuditEvent),
  has_more: z.boolean(),
  next_cursor: z.string().nullable(),
});

/** An event as `zAuditEvent` shows it. */
function auditEventWire({ event, details, actor }: AuditEvent) {
  return {
    id: event.id,
    at_unix_secs: Math.floor(event.at_ms / 1000),
    action: event.action,
    actor_kind: event.actor_kind,
    actor_user_id: event.actor_user_id,
    actor_name: event.actor_user_id ? (actor?.name ?? null) : null,
    agent_id: event.agent_id,
    resource_id: event.resource_id,
    details,
  };
}

export function auditRoutes(context: AppContext): RouteDefinition[] {
  const audit = auditService(context);
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/convai/audit-events',
      operationId: 'list_audit_events_route',
      summary: 'List Audit Events (extension)',
      description:
        "Extension (not in the ElevenLabs API), admin only: who changed what and when in the caller's workspace, newest " +
        'first. Recorded in the same transaction as the write: branch creation and updates, merges, rebases (also automatic), ' +
        'deployments and rollbacks, drafts, merge proposal actions, workspace and key management. Commits are attributed by ' +
        'their versions (`author`, `time_committed_secs`). Pass `next_cursor` as `cursor` for the next page.',
      tag: TAG,
      permission: 'admin',
      extension: true,
      query: z.object({
        agent_id: z.string().max(200).optional(),
        action: z.enum(AUDIT_ACTIONS).optional(),
        actor_user_id: z.string().max(200).optional(),
        since_unix_secs: unixSeconds.describe('Only events at or after this time.'),
        page_size: queryInteger({ min: 1, max: 100, fallback: 30 }),
        cursor: z.string().max(1_000).optional(),
      }),
      example: {
        references: (ids) => ({ query: { agent_id: ids.agentId, actor_user_id: ids.reviewerUserId } }),
        queryIds: { agent_id: { kind: 'agent', role: 'filters' }, actor_user_id: { kind: 'user', role: 'filters' } },
      },
      responses: { 200: zAuditEventsPage },
      handler: async ({ caller, query }) => {
        const page = await audit.list(caller, {
          agentId: query.agent_id,
          action: query.action,
          actorUserId: query.actor_user_id,
          sinceUnixSecs: query.since_unix_secs,
          pageSize: query.page_size,
          cursor: query.cursor,
        });
        return { events: page.events.map(auditEventWire), has_more: page.hasMore, next_cursor: page.nextCursor };
      },
    }),
  ];
}
