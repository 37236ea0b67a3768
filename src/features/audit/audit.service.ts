import type { AppContext } from '../../context.js';
import type { Json } from '../../domain/canonical-json.js';
import { decodeCursor, encodeCursor, isSafeInteger } from '../../http/cursor.js';
import type { Caller } from '../../domain/caller.js';
import type { UserSummary } from '../workspaces/user-directory.js';
import { type AuditEventRow, auditStore } from './audit.store.js';

export interface AuditListQuery {
  agentId?: string;
  action?: string;
  actorUserId?: string;
  sinceUnixSecs?: number;
  pageSize: number;
  cursor?: string;
}

/** Where a page of events continues: before this event. */
function afterCursor(cursor: string): { atMs: number; id: string } {
  const { value, id } = decodeCursor(cursor, isSafeInteger);
  return { atMs: value, id };
}

/** An event of the audit log, with its details parsed and the user who acted. */
export interface AuditEvent {
  event: AuditEventRow;
  details: Record<string, Json>;
  /** `undefined` for an event no user made (`cli`, `system`), or a user that no longer exists. */
  actor: UserSummary | undefined;
}

export function auditService(context: AppContext) {
  return {
    /** The caller's workspace's events, newest first; no other workspace's are ever read. */
    async list(caller: Caller, query: AuditListQuery): Promise<{ events: AuditEvent[]; hasMore: boolean; nextCursor: string | null }> {
      const rows = await auditStore(context.db).list({
        workspaceId: caller.workspaceId,
        agentId: query.agentId,
        action: query.action,
        actorUserId: query.actorUserId,
        sinceMs: query.sinceUnixSecs === undefined ? undefined : query.sinceUnixSecs * 1000,
        before: query.cursor === undefined ? undefined : afterCursor(query.cursor),
        limit: query.pageSize + 1,
      });
      const page = rows.slice(0, query.pageSize);
      const hasMore = rows.length > query.pageSize;
      const users = await context.users.describe(page.flatMap((row) => (row.actor_user_id ? [row.actor_user_id] : [])));
      return {
        events: page.map((row) => ({
          event: row,
          details: JSON.parse(row.details) as Record<string, Json>,
          actor: row.actor_user_id ? users.get(row.actor_user_id) : undefined,
        })),
        hasMore,
        nextCursor: hasMore ? encodeCursor(page[page.length - 1].at_ms, page[page.length - 1].id) : null,
      };
    },
  };
}
