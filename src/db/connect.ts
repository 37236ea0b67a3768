import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

import SqliteDatabase from 'better-sqlite3';
import { type Dialect as KyselyDialect, type Driver, Kysely, type Migration, Migrator, PostgresDialect, type Selectable, SqliteDialect, sql } from 'kysely';
import pg from 'pg';

import { type ChangeFeed, postgresChangeFeed, sqliteChangeFeed } from './change-feed.js';
import * as initial from './migrations/0001_initial.js';
import * as deployments from './migrations/0002_deployments.js';
import * as mergedAuthors from './migrations/0003_merged_authors.js';
import * as frontiers from './migrations/0004_frontiers.js';
import * as mergeProposals from './migrations/0005_merge_proposals.js';
import * as audit from './migrations/0006_audit.js';
import * as agentRevision from './migrations/0007_agent_revision.js';
import * as branchNameKey from './migrations/0008_branch_name_key.js';
import * as procedures from './migrations/0009_procedures.js';
import * as experiments from './migrations/0010_experiments.js';
import * as guardedRollouts from './migrations/0011_guarded_rollouts.js';
import * as exposuresWithoutTimeIndex from './migrations/0012_exposures_without_time_index.js';
import * as exposureSegments from './migrations/0013_exposure_segments.js';
import * as unexposedValueUnits from './migrations/0014_unexposed_value_units.js';
import * as segmentCompression from './migrations/0015_segment_compression.js';
import type { Database } from './schema.js';
import { assertNoWriteInProgress } from './write.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Cache invalidation across processes. */
  changes: ChangeFeed;
  /** The embedded database handle, for SQLite-only maintenance (checkpoints, size). */
  sqlite?: SqliteDatabase.Database;
  /** The hot path's reads without the query builder (prepared statements; see `fastReads`). */
  fastReads: FastReads;
  /** PostgreSQL's connection pool, for metrics (its use is read, never driven, from outside). */
  pool?: pg.Pool;
  /** Names this store's write transactions to its driver, which refuses the pool inside them (see `write.ts`). */
  writeGuard: object;
  guardEveryWrite: boolean;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** PostgreSQL connection string; when absent, SQLite in `dataDir`. */
  databaseUrl?: string;
  dataDir: string;
  /** `NORMAL` survives a killed process; `FULL` also survives power loss (decisions.md D19). */
  sqliteSynchronous?: 'NORMAL' | 'FULL';
  /** Connections in the PostgreSQL pool. */
  poolSize?: number;
  /** Guard every write against queries through the pool, those that ask not to be too (`write.ts`): tests. */
  guardEveryWrite?: boolean;
}

export const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_deployments': deployments,
  '0003_merged_authors': mergedAuthors,
  '0004_frontiers': frontiers,
  '0005_merge_proposals': mergeProposals,
  '0006_audit': audit,
  '0007_agent_revision': agentRevision,
  '0008_branch_name_key': branchNameKey,
  '0009_procedures': procedures,
  '0010_experiments': experiments,
  '0011_guarded_rollouts': guardedRollouts,
  '0012_exposures_without_time_index': exposuresWithoutTimeIndex,
  '0013_exposure_segments': exposureSegments,
  '0014_unexposed_value_units': unexposedValueUnits,
  '0015_segment_compression': segmentCompression,
};

/** Any lock key unique to branchwise: serializes migrations across processes starting together. */
const MIGRATION_LOCK_KEY = 727_001;

export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//.test(value);
}

export async function openStore(options: StoreOptions): Promise<Store> {
  const store = await (options.databaseUrl ? openPostgres(options.databaseUrl, options.poolSize ?? 10) : openSqlite(options));
  return { ...store, guardEveryWrite: options.guardEveryWrite ?? false };
}

async function openSqlite(options: StoreOptions): Promise<Omit<Store, 'guardEveryWrite'>> {
  mkdirSync(options.dataDir, { recursive: true });
  const file = path.join(options.dataDir, 'branchwise.sqlite');
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`synchronous = ${options.sqliteSynchronous ?? 'NORMAL'}`);
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  // Checkpoints run in a thread of their own (checkpointer.mjs), not inside this connection's commits.
  sqlite.pragma('wal_autocheckpoint = 0');
  const checkpointer = new Worker(new URL('./checkpointer.mjs', import.meta.url), {
    // SQLite's own default threshold: 1,000 pages of 4 KiB.
    workerData: { file, walBytes: 4 * 1024 * 1024, intervalMs: 200 },
  });
  checkpointer.unref();
  const checkpointerExited = new Promise<void>((resolve) => checkpointer.once('exit', () => resolve()));
  // Should the thread fail, this connection checkpoints as SQLite does by default.
  checkpointer.once('error', () => sqlite.pragma('wal_autocheckpoint = 1000'));
  const writeGuard = {};
  const db = new Kysely<Database>({ dialect: guarded(new SqliteDialect({ database: withStatementCache(sqlite) }), writeGuard) });
  await migrate(db);
  const changes = sqliteChangeFeed(sqlite);
  const reader = new SqliteDatabase(file, { readonly: true });
  return {
    db,
    writeGuard,
    dialect: 'sqlite',
    changes,
    sqlite,
    fastReads: fastReads(reader),
    async close() {
      await changes.close();
      reader.close();
      // Held until it has closed its connection (unreferenced, it would not keep the process waiting).
      checkpointer.ref();
      checkpointer.postMessage('close');
      await checkpointerExited;
      await db.destroy();
    },
  };
}


/** An agent row with one of its versions (id, branch, document), as the hot path reads it. */
export type AgentVersionRow = Selectable<Database['agents']> & { version_id: string; version_branch_id: string; version_document_hash: string };

type Maybe<T> = T | undefined | Promise<T | undefined>;

export interface FastReads {
  /** The agent and the head of a branch (main when null), or undefined. */
  head(workspaceId: string, agentId: string, branchId: string | null): Maybe<AgentVersionRow>;
  /** The agent and one of its versions, or undefined. */
  version(workspaceId: string, agentId: string, versionId: string): Maybe<AgentVersionRow>;
  /**
   * SQLite only: a number that moves whenever any connection, in any process, commits (the read
   * connection's `PRAGMA data_version`). An answer read since it last moved is still the answer.
   */
  stamp?(): number;
}

const FAST_COLUMNS = `a.*, v.id as version_id, v.branch_id as version_branch_id, v.document_hash as version_document_hash`;
const FAST_HEAD_FROM =
  'from agents a join branches b on b.agent_id = a.id and b.id = coalesce(?, a.main_branch_id) join versions v on v.id = b.head_version_id where a.id = ? and a.workspace_id = ?';
const FAST_VERSION_FROM = 'from agents a join versions v on v.agent_id = a.id where a.id = ? and a.workspace_id = ? and v.id = ?';

/**
 * The hot path's reads on SQLite: prepared statements on a second, read-only connection. It sees
 * exactly what is committed (WAL), never a write transaction in flight on the main connection,
 * and it does not queue behind the main connection's work.
 */
function fastReads(reader: SqliteDatabase.Database): FastReads {
  const head = reader.prepare(`select ${FAST_COLUMNS} ${FAST_HEAD_FROM}`);
  const version = reader.prepare(`select ${FAST_COLUMNS} ${FAST_VERSION_FROM}`);
  const dataVersion = reader.prepare('PRAGMA data_version').pluck();
  return {
    stamp: () => dataVersion.get() as number,
    head: (workspaceId, agentId, branchId) => head.get(branchId, agentId, workspaceId) as AgentVersionRow | undefined,
    version: (workspaceId, agentId, versionId) => version.get(agentId, workspaceId, versionId) as AgentVersionRow | undefined,
  };
}

/**
 * The same reads on PostgreSQL: named prepared statements on the pool, without building the
 * query through Kysely on every request. Each is one round trip (every read sees every
 * acknowledged write, decisions.md D16).
 */
function postgresFastReads(pool: pg.Pool): FastReads {
  let n = 0;
  const numbered = (text: string) => text.replace(/\?/g, () => `$${++n}`);
  const head = { name: 'branchwise_fast_head', text: numbered(`select ${FAST_COLUMNS} ${FAST_HEAD_FROM}`) };
  n = 0;
  const version = { name: 'branchwise_fast_version', text: numbered(`select ${FAST_COLUMNS} ${FAST_VERSION_FROM}`) };
  const first = async (query: { name: string; text: string }, values: unknown[]) => (await pool.query<AgentVersionRow>({ ...query, values })).rows[0];
  return {
    head: (workspaceId, agentId, branchId) => first(head, [branchId, agentId, workspaceId]),
    version: (workspaceId, agentId, versionId) => first(version, [agentId, workspaceId, versionId]),
  };
}

/**
 * The dialect whose driver refuses to hand out a pooled connection inside a write transaction
 * (`assertNoWriteInProgress`): a query there must use the transaction's handle. A transaction
 * takes its connection once, before its work runs; its queries reuse it without asking again.
 */
function guarded(dialect: KyselyDialect, writeGuard: object): KyselyDialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createDriver(): Driver {
      const driver = dialect.createDriver();
      const acquireConnection = driver.acquireConnection.bind(driver);
      driver.acquireConnection = () => {
        assertNoWriteInProgress(writeGuard);
        return acquireConnection();
      };
      return driver;
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

async function openPostgres(connectionString: string, poolSize: number): Promise<Omit<Store, 'guardEveryWrite'>> {
  // bigint columns hold unix milliseconds, well inside Number's exact range.
  pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
  await migratePostgres(connectionString);
  const pool = new pg.Pool({ connectionString, max: poolSize });
  // An idle pooled connection closed by the server (a restart, a terminated backend) emits an
  // error on the pool; the pool replaces it on the next checkout. Unhandled, it would end the process.
  pool.on('error', () => undefined);
  const writeGuard = {};
  const db = new Kysely<Database>({ dialect: guarded(new PostgresDialect({ pool }), writeGuard) });
  const changes = await postgresChangeFeed(connectionString);
  return {
    db,
    writeGuard,
    dialect: 'postgres',
    changes,
    pool,
    fastReads: postgresFastReads(pool),
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
