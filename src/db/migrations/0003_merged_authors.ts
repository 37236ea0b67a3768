import type { Kysely } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

export async function up(db: Kysely<any>): Promise<void> {
  // For a merge into main: JSON array of the user ids who published the merged changes.
  await db.schema.alterTable('versions').addColumn('merged_author_ids', 'text').execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
