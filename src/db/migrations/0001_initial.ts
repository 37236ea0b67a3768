import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('workspaces')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('users_workspace_name', ['workspace_id', 'name'])
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('key_prefix', 'text', (c) => c.notNull())
    .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at_ms', 'bigint')
    .execute();

  await db.schema
    .createTable('agents')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('tags', 'text', (c) => c.notNull())
    .addColumn('agent_settings', 'text', (c) => c.notNull())
    .addColumn('voice_id', 'text', (c) => c.notNull())
    .addColumn('archived', 'integer', (c) => c.notNull())
    .addColumn('main_branch_id', 'text', (c) => c.notNull())
    .addColumn('created_by_user_id', 'text', (c) => c.notNull())
    .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('updated_at_ms', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('agents_workspace_created')
    .on('agents')
    .columns(['workspace_id', 'created_at_ms', 'id'])
    .execute();
  await db.schema
    .createIndex('agents_workspace_name')
    .on('agents')
    .columns(['workspace_id', 'name', 'id'])
    .execute();

  await db.schema
    .createTable('agent_tags')
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('tag', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('agent_tags_pk', ['agent_id', 'tag'])
    .execute();
  await db.schema.createIndex('agent_tags_tag').on('agent_tags').columns(['tag', 'agent_id']).execute();

  await db.schema
    .createTable('branches')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('parent_branch_id', 'text')
    .addColumn('head_version_id', 'text', (c) => c.notNull())
    .addColumn('head_seq_no', 'integer', (c) => c.notNull())
    .addColumn('protection_status', 'text', (c) => c.notNull())
    .addColumn('auto_rebase', 'integer', (c) => c.notNull())
    .addColumn('is_archived', 'integer', (c) => c.notNull())
    .addColumn('merged_into_branch_id', 'text')
    .addColumn('created_by_user_id', 'text', (c) => c.notNull())
    .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('last_committed_at_ms', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('branches_agent_name', ['agent_id', 'name'])
    .execute();

  await db.schema
    .createTable('versions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('branch_id', 'text', (c) => c.notNull())
    .addColumn('seq_no_in_branch', 'integer', (c) => c.notNull())
    .addColumn('in_branch_parent_id', 'text')
    .addColumn('out_of_branch_parent_id', 'text')
    .addColumn('merged_from_branch_id', 'text')
    .addColumn('merged_from_version_id', 'text')
    .addColumn('merged_into_branch_id', 'text')
    .addColumn('rebased_from_version_id', 'text')
    .addColumn('generation', 'integer', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('author_user_id', 'text', (c) => c.notNull())
    .addColumn('committed_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('document_hash', 'text', (c) => c.notNull())
    // The unique key is what makes seq_no_in_branch gapless and duplicate-free under races.
    .addUniqueConstraint('versions_branch_seq', ['branch_id', 'seq_no_in_branch'])
    .execute();
  await db.schema.createIndex('versions_agent').on('versions').column('agent_id').execute();

  // Content-addressed document nodes, shared by every version that contains them.
  await db.schema
    .createTable('blobs')
    .addColumn('hash', 'text', (c) => c.primaryKey())
    .addColumn('body', 'text', (c) => c.notNull())
    .modifyEnd(isSqlite(db) ? sql`without rowid` : sql``)
    .execute();

  await db.schema
    .createTable('drafts')
    .addColumn('branch_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('document_hash', 'text', (c) => c.notNull())
    .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('based_on_seq_no', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('drafts_pk', ['branch_id', 'user_id'])
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}

function isSqlite(db: Kysely<unknown>): boolean {
  return db.getExecutor().adapter.constructor.name === 'SqliteAdapter';
}
