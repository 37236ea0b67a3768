import type { Kysely } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

// Per agent, how many units may have an outcome value but no exposure: a value that arrived
// before its unit's exposure must join the exposure's cell when the exposure comes, which meant
// looking every new exposure's unit up among the values, a fifth of what writing an exposure
// cost (bench/README.md). With this at 0 the lookup is skipped. -1: not yet counted (the rows
// this migration finds, and a dump from before it); the first write of the agent counts it.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('exposure_logs')
    .addColumn('unexposed_value_units', 'integer', (c) => c.notNull().defaultTo(-1))
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
