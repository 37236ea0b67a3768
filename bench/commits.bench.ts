// Commits per second through `PATCH agent` on the server process users run, driven by wrk (one
// new first message per request: a one-field commit to a ~20 KB config), with the storage each
// commit adds; against the raw driver inserting the same document, one transaction each.
import path from 'node:path';

import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';

import { freePort, serverCommand } from '../test/support/server-process.js';
import { largeConversationConfig } from '../test/support/builders.js';
import type { BenchDatabase, BenchDialect } from './databases.js';
import { KEY, seed, startProcess, stop, wrk } from './http.bench.js';

/** What the database holds, and its version count: SQLite pages in use after a checkpoint (decisions.md D6), PostgreSQL relation sizes. */
async function measureStore(database: BenchDatabase): Promise<{ bytes: number; versions: number }> {
  if (!database.options.databaseUrl) {
    const sqlite = new SqliteDatabase(path.join(database.options.dataDir, 'branchwise.sqlite'));
    try {
      sqlite.pragma('wal_checkpoint(TRUNCATE)');
      const pages = (sqlite.pragma('page_count', { simple: true }) as number) - (sqlite.pragma('freelist_count', { simple: true }) as number);
      const versions = (sqlite.prepare('select count(*) as n from versions').get() as { n: number }).n;
      return { bytes: pages * (sqlite.pragma('page_size', { simple: true }) as number), versions };
    } finally {
      sqlite.close();
    }
  }
  const client = new pg.Client({ connectionString: database.options.databaseUrl });
  await client.connect();
  try {
    const size = await client.query<{ bytes: string }>(
      `select sum(pg_total_relation_size(c.oid))::text as bytes from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'r'`,
    );
    const versions = await client.query<{ n: string }>('select count(*)::text as n from versions');
    return { bytes: Number(size.rows[0].bytes), versions: Number(versions.rows[0].n) };
  } finally {
    await client.end();
  }
}

/** The baseline: the same ~20 KB document inserted `count` times by the raw driver, one transaction each. */
async function rawInserts(database: BenchDatabase, document: string, count: number): Promise<number> {
  if (!database.options.databaseUrl) {
    const raw = new SqliteDatabase(path.join(database.options.dataDir, 'raw.sqlite'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
    raw.exec('create table documents (id integer primary key, body text not null)');
    const insert = raw.prepare('insert into documents (body) values (?)');
    const started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) insert.run(`${document}${i}`);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    raw.close();
    return count / seconds;
  }
  const client = new pg.Client({ connectionString: database.options.databaseUrl });
  await client.connect();
  try {
    await client.query('create table raw_documents (id bigserial primary key, body text not null)');
    const started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) await client.query('insert into raw_documents (body) values ($1)', [`${document}${i}`]);
    return count / (Number(process.hrtime.bigint() - started) / 1e9);
  } finally {
    await client.end();
  }
}

export async function benchCommits(seconds: number, dialect: BenchDialect) {
  const database = await dialect.create();
  let server: Awaited<ReturnType<typeof startProcess>> | undefined;
  try {
    const { agentId } = await seed(database.options);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    server = await startProcess(...serverCommand('serve'), { ...database.env, PORT: String(port) }, async () =>
      (await fetch(`${base}/healthz`).catch(() => undefined))?.ok === true,
    );
    const env = { BENCH_API_KEY: KEY, BENCH_PATH: `/v1/convai/agents/${agentId}` };
    const script = path.resolve('bench/lua/commit.lua');
    // Commits to one branch are serialized; a few connections keep the server busy between them.
    wrk(base, script, 1, env, 8);
    const before = await measureStore(database);
    const result = wrk(base, script, seconds, env, 8);
    const after = await measureStore(database);
    await stop(server);
    server = undefined;
    const commits = after.versions - before.versions;
    const perCommit = (after.bytes - before.bytes) / commits;
    const raw = await rawInserts(database, JSON.stringify(largeConversationConfig(20_000)), 2_000);
    const measure = dialect.label === 'SQLite' ? 'SQLite pages' : 'PostgreSQL relation sizes, indexes included';
    return {
      name: `commits via PATCH (20 KB config, one field), ${dialect.label}, server process, wrk with 8 connections`,
      value: `${Math.round(result.requestsPerSecond)} commits/s (p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms); ${Math.round(perCommit)} bytes stored per commit (${measure}, over ${commits} commits)`,
      baseline: `raw ${dialect.label === 'SQLite' ? 'better-sqlite3' : 'pg'} insert of the document, one transaction each: ${Math.round(raw)} inserts/s`,
      ratio: `${(result.requestsPerSecond / raw).toFixed(3)}×`,
      target: '≥ 2,000 commits/s; ≤ 2 KB per commit',
    };
  } finally {
    if (server) await stop(server);
    await database.drop();
  }
}
