import type { Kysely } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

// The (agent, time) index of exposures served no query (retention deletes by time across all
// agents, which that index cannot narrow; everything else goes by agent and unit, the primary
// key), and it cost every exposure written a second B-tree insert: a fifth to a third of a
// batch's CPU on SQLite (bench/README.md, the run of 2026-12-04).
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('exposures_agent_time').ifExists().execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
