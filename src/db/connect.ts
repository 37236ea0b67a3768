import { mkdirSync } from 'node:fs';
import path from 'node:path';

import SqliteDatabase from 'better-sqlite3';
import { Kysely, type Migration, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';

import { type ChangeFeed, postgresChangeFeed, sqliteChangeFeed } from './change-feed.js';
import * as initial from './migrations/0001_initial.js';
import * as deployments from './migrations/0002_deployments.js';
import * as mergedAuthors from './migrations/0003_merged_authors.js';
import * as frontiers from './migrations/0004_frontiers.js';
import * as mergeProposals from './migrations/0005_merge_proposals.js';
import type { Database } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Cache invalidation across processes. */
  changes: ChangeFeed;
  /** The embedded database handle, for SQLite-only maintenance (checkpoints, size). */
  sqlite?: SqliteDatabase.Database;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** PostgreSQL connection string; when absent, SQLite in `dataDir`. */
  databaseUrl?: string;
  dataDir: string;
  /** `NORMAL` survives a killed process; `FULL` also survives power loss (DESIGN §12.13). */
  sqliteSynchronous?: 'NORMAL' | 'FULL';
  /** Connections in the PostgreSQL pool. */
  poolSize?: number;
}

export const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_deployments': deployments,
  '0003_merged_authors': mergedAuthors,
  '0004_frontiers': frontiers,
  '0005_merge_proposals': mergeProposals,
};

/** Any lock key unique to branchwise: serializes migrations across processes starting together. */
const MIGRATION_LOCK_KEY = 727_001;

export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//.test(value);
}

export async function openStore(options: StoreOptions): Promise<Store> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options.poolSize ?? 10) : openSqlite(options);
}

async function openSqlite(options: StoreOptions): Promise<Store> {
  mkdirSync(options.dataDir, { recursive: true });
  const file = path.join(options.dataDir, 'branchwise.sqlite');
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`synchronous = ${options.sqliteSynchronous ?? 'NORMAL'}`);
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  await migrate(db);
  const changes = sqliteChangeFeed(sqlite);
  return {
    db,
    dialect: 'sqlite',
    changes,
    sqlite,
    async close() {
      await changes.close();
      await db.destroy();
    },
  };
}

/**
 * Kysely prepares every query it runs; better-sqlite3 statements are reusable, so keep the
 * prepared ones (the same few dozen SQL texts recur). Preparing was ~6% of a commit's CPU.
 */
function withStatementCache(sqlite: SqliteDatabase.Database) {
  const statements = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(sql: string) {
      let statement = statements.get(sql);
      if (!statement) {
        statement = sqlite.prepare(sql);
        if (statements.size >= 2_000) statements.clear();
        statements.set(sql, statement);
      }
      return statement;
    },
  };
}

async function openPostgres(connectionString: string, poolSize: number): Promise<Store> {
  // bigint columns hold unix milliseconds, well inside Number's exact range.
  pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
  await migratePostgres(connectionString);
  const pool = new pg.Pool({ connectionString, max: poolSize });
  // An idle pooled connection closed by the server (a restart, a terminated backend) emits an
  // error on the pool; the pool replaces it on the next checkout. Unhandled, it would end the process.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const changes = await postgresChangeFeed(connectionString);
  return {
    db,
    dialect: 'postgres',
    changes,
    async close() {
      await changes.close();
      await db.destroy();
    },
  };
}

/** Migrates under a session advisory lock, so that processes starting together migrate once. */
async function migratePostgres(connectionString: string): Promise<void> {
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString, max: 1 }) }) });
  try {
    // One pooled connection: the lock and every migration statement share the same session.
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`.execute(db);
    try {
      await migrate(db);
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(db);
    }
  } finally {
    await db.destroy();
  }
}

async function migrate(db: Kysely<Database>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
  });
  const { error } = await migrator.migrateToLatest();
  if (error) throw error;
}
