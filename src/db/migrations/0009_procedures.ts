import type { Kysely } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

export async function up(db: Kysely<any>): Promise<void> {
  // A procedure's identity: it belongs to one agent; what it says lives in its versions and drafts.
  await db.schema
    .createTable('procedures')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('created_by_user_id', 'text', (c) => c.notNull())
    .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('procedures_agent').on('procedures').columns(['agent_id']).execute();

  // Immutable: a body (content-tree root in `blobs`) that an agent version's map points at.
  await db.schema
    .createTable('procedure_versions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('procedure_id', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('body_hash', 'text', (c) => c.notNull())
    .addColumn('author_user_id', 'text', (c) => c.notNull())
    .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('procedure_versions_agent').on('procedure_versions').columns(['agent_id', 'procedure_id']).execute();

  // Each user's unpublished edits per branch; a null body is a staged removal.
  await db.schema
    .createTable('procedure_drafts')
    .addColumn('branch_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('procedure_id', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('body_hash', 'text')
    .addColumn('updated_at_ms', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('procedure_drafts_pk', ['branch_id', 'user_id', 'procedure_id'])
    .execute();
  await db.schema.createIndex('procedure_drafts_agent').on('procedure_drafts').columns(['agent_id']).execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
