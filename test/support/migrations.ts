import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { expect } from 'vitest';

import { migrations } from '../../src/db/connect.js';
import type { Database } from '../../src/db/schema.js';
import { dialect, type TestDatabase } from './test-app.js';

/** A database of the current dialect migrated only up to `migration`. */
export async function migratedTo(database: TestDatabase, migration: string): Promise<Kysely<Database>> {
  if (dialect === 'postgres') {
    // The per-file database comes fully migrated: start this one from scratch.
    const client = new pg.Client({ connectionString: database.options.databaseUrl });
    await client.connect();
    await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
    await client.end();
  }
  const db =
    dialect === 'postgres'
      ? new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: database.options.databaseUrl, max: 1 }) }) })
      : new Kysely<Database>({ dialect: new SqliteDialect({ database: new SqliteDatabase(`${database.options.dataDir}/branchwise.sqlite`) }) });
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  expect((await migrator.migrateTo(migration)).error).toBeUndefined();
  return db;
}
