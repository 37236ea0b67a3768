import { type Kysely, PostgresAdapter, sql } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

// PostgreSQL compresses a text of more than about 2 KB before storing it out of line, with pglz by
// default: with it, an exposure segment's body (about 48 KB, its 1,000 units) cost PostgreSQL about
// 0.9 µs of CPU more an exposure than with lz4 (bench/README.md). lz4 where the
// server is built with it (Debian's and most are); elsewhere no compression at all (a third more
// disk for segments). Segments written before keep their compression. SQLite compresses nothing.
export async function up(db: Kysely<any>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  await sql`
    DO $$
    BEGIN
      ALTER TABLE exposure_segments ALTER COLUMN body SET COMPRESSION lz4;
    EXCEPTION WHEN OTHERS THEN
      ALTER TABLE exposure_segments ALTER COLUMN body SET STORAGE EXTERNAL;
    END
    $$`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
