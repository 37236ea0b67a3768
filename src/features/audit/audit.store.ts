import type { Kysely, Selectable } from 'kysely';

import type { AuditEventTable, Database } from '../../db/schema.js';

export type AuditEventRow = Selectable<AuditEventTable>;

export interface AuditFilter {
  workspaceId: string;
  agentId?: string;
  action?: string;
  actorUserId?: string;
  sinceMs?: number;
  /** Keyset position: events strictly older than this one. */
  before?: { atMs: number; id: string };
  limit: number;
}

export function auditStore(db: Kysely<Database>) {
  return {
    async insert(row: AuditEventRow): Promise<void> {
      await db.insertInto('audit_events').values(row).execute();
    },

    /** A workspace's events, newest first. */
    list(filter: AuditFilter): Promise<AuditEventRow[]> {
      let query = db.selectFrom('audit_events').selectAll().where('workspace_id', '=', filter.workspaceId);
      if (filter.agentId !== undefined) query = query.where('agent_id', '=', filter.agentId);
      if (filter.action !== undefined) query = query.where('action', '=', filter.action);
      if (filter.actorUserId !== undefined) query = query.where('actor_user_id', '=', filter.actorUserId);
      if (filter.sinceMs !== undefined) query = query.where('at_ms', '>=', filter.sinceMs);
      const before = filter.before;
      if (before) {
        query = query.where((eb) => eb.or([eb('at_ms', '<', before.atMs), eb.and([eb('at_ms', '=', before.atMs), eb('id', '<', before.id)])]));
      }
      return query.orderBy('at_ms', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
    },
  };
}
