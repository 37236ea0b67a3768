import type { Kysely } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

export async function up(db: Kysely<any>): Promise<void> {
  // Moves by one in every UPDATE of the agent row: caches of what depends on the row key on it,
  // since two writes can share a millisecond (`updated_at_ms`) but never a revision.
  await db.schema.alterTable('agents').addColumn('revision', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
