import type { Kysely } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('merge_proposals')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('source_branch_id', 'text', (c) => c.notNull())
    .addColumn('target_branch_id', 'text', (c) => c.notNull())
    .addColumn('source_tip_version_id_at_creation', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    // JSON array of user ids.
    .addColumn('requested_reviewer_user_ids', 'text', (c) => c.notNull())
    .addColumn('triage_ticket_id', 'text')
    .addColumn('author_user_id', 'text', (c) => c.notNull())
    // open | merged | closed
    .addColumn('status', 'text', (c) => c.notNull())
    // withdrawn | rejected | branch_archived, when closed
    .addColumn('close_reason', 'text')
    .addColumn('outcome_version_id', 'text')
    .addColumn('outcome_at_ms', 'bigint')
    .addColumn('outcome_by_user_id', 'text')
    .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('updated_at_ms', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('merge_proposals_agent_created').on('merge_proposals').columns(['agent_id', 'created_at_ms', 'id']).execute();

  await db.schema
    .createTable('merge_proposal_reviews')
    .addColumn('proposal_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('comment', 'text', (c) => c.notNull())
    .addColumn('reviewer_role', 'text', (c) => c.notNull())
    // The source tip the reviewer saw: an approval of an older tip no longer counts.
    .addColumn('source_version_id', 'text', (c) => c.notNull())
    .addColumn('submitted_at_ms', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('merge_proposal_reviews_pk', ['proposal_id', 'user_id'])
    .execute();

  await db.schema
    .createTable('merge_proposal_comments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('proposal_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('merge_proposal_comments_proposal').on('merge_proposal_comments').columns(['proposal_id', 'created_at_ms']).execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
