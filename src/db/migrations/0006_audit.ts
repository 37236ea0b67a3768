import type { Kysely } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

export async function up(db: Kysely<any>): Promise<void> {
  // One row per write that versions and deployments do not already attribute (src/features/audit).
  await db.schema
    .createTable('audit_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('at_ms', 'bigint', (c) => c.notNull())
    // user (an API key's user) | cli (`branchwise keys …`, `workspaces …`) | system (first-start bootstrap)
    .addColumn('actor_kind', 'text', (c) => c.notNull())
    .addColumn('actor_user_id', 'text')
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'text')
    .addColumn('resource_id', 'text')
    // JSON object; never key material.
    .addColumn('details', 'text', (c) => c.notNull())
    .execute();
  // The admin list: a workspace's events newest first, optionally for one agent.
  await db.schema.createIndex('audit_events_workspace_at').on('audit_events').columns(['workspace_id', 'at_ms', 'id']).execute();
  await db.schema.createIndex('audit_events_agent_at').on('audit_events').columns(['agent_id', 'at_ms', 'id']).execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
