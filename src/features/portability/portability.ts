import { createHash } from 'node:crypto';

import { type Kysely, sql } from 'kysely';

import type { Store } from '../../db/connect.js';
import type { Database } from '../../db/schema.js';
import { TABLES } from '../../db/tables.js';
import { canonicalJson, type Json } from '../../domain/canonical-json.js';

/**
 * Moving a store between databases and machines: a portable dump (JSON lines) and a direct
 * copy, both verified by row counts and a content hash per table computed on each side.
 */

export const DUMP_FORMAT = 'branchwise-dump';
export const DUMP_VERSION = 1;
const BATCH = 500;

type Row = Record<string, Json>;
type TableName = (typeof TABLES)[number]['name'];

export interface TableDigest {
  table: TableName;
  rows: number;
  sha256: string;
}

/** Rows of a table in primary-key order, in batches (keyset pagination). */
async function* readTable(db: Kysely<Database>, table: (typeof TABLES)[number]): AsyncGenerator<Row[]> {
  // any: the table is chosen at run time, so the typed builder cannot know its columns.
  const untyped = db as unknown as Kysely<any>;
  let after: Row | undefined;
  for (;;) {
    let query = untyped.selectFrom(table.name).selectAll();
    if (after) {
      const last = after;
      query = query.where((eb) =>
        eb.or(
          // (k1, k2, …) > (v1, v2, …), spelled out: row-value comparison is not portable.
          table.key.map((key, index) =>
            eb.and([...table.key.slice(0, index).map((prior) => eb(prior, '=', last[prior])), eb(key, '>', last[key])]),
          ),
        ),
      );
    }
    for (const key of table.key) query = query.orderBy(key);
    const rows = (await query.limit(BATCH).execute()) as Row[];
    if (rows.length === 0) return;
    yield rows.map(normalizeRow);
    if (rows.length < BATCH) return;
    after = rows[rows.length - 1];
  }
}

/** The same value from either dialect: numbers as numbers, text as text. */
function normalizeRow(row: Row): Row {
  const normalized: Row = {};
  for (const [key, value] of Object.entries(row)) {
    normalized[key] = typeof value === 'bigint' ? Number(value) : (value as Json);
  }
  return normalized;
}

export async function digestStore(db: Kysely<Database>): Promise<TableDigest[]> {
  const digests: TableDigest[] = [];
  for (const table of TABLES) {
    const hash = createHash('sha256');
    let rows = 0;
    for await (const batch of readTable(db, table)) {
      for (const row of batch) hash.update(`${canonicalJson(row)}\n`);
      rows += batch.length;
    }
    digests.push({ table: table.name, rows, sha256: hash.digest('hex') });
  }
  return digests;
}

async function assertEmpty(db: Kysely<Database>): Promise<void> {
  for (const table of TABLES) {
    const row = await db.selectFrom(table.name).select(sql<number>`count(*)`.as('count')).executeTakeFirstOrThrow();
    if (Number(row.count) > 0) {
      throw new Error(`the target database is not empty (table ${table.name} has rows); copy and import need an empty one`);
    }
  }
}

async function insertBatch(trx: Kysely<Database>, table: TableName, rows: Row[]): Promise<void> {
  if (rows.length > 0) await trx.insertInto(table).values(rows as never).execute();
}

function compareDigests(source: TableDigest[], target: TableDigest[]): void {
  for (const expected of source) {
    const actual = target.find((digest) => digest.table === expected.table);
    if (!actual || actual.rows !== expected.rows || actual.sha256 !== expected.sha256) {
      throw new Error(
        `verification failed for table ${expected.table}: expected ${expected.rows} rows (${expected.sha256.slice(0, 12)}), ` +
          `found ${actual?.rows ?? 0} rows (${actual?.sha256.slice(0, 12) ?? 'none'})`,
      );
    }
  }
}

/** Copies every row of `source` into the empty `target` in one transaction, then verifies it. */
export async function copyStore(source: Store, target: Store): Promise<TableDigest[]> {
  await assertEmpty(target.db);
  await target.db.transaction().execute(async (trx) => {
    for (const table of TABLES) {
      for await (const batch of readTable(source.db, table)) await insertBatch(trx, table.name, batch);
    }
  });
  const expected = await digestStore(source.db);
  compareDigests(expected, await digestStore(target.db));
  return expected;
}

/** Writes the whole store as JSON lines: a header, one line per row, and the digests last. */
export async function exportStore(source: Store, write: (line: string) => void | Promise<void>): Promise<TableDigest[]> {
  await write(JSON.stringify({ format: DUMP_FORMAT, version: DUMP_VERSION, tables: TABLES.map((table) => table.name) }));
  for (const table of TABLES) {
    for await (const batch of readTable(source.db, table)) {
      for (const row of batch) await write(JSON.stringify({ table: table.name, row }));
    }
  }
  const digests = await digestStore(source.db);
  await write(JSON.stringify({ digests }));
  return digests;
}

/**
 * Reads a dump into the empty `target` in one transaction and checks it against the dump's
 * digests. `openLines` is called once the target is known to be empty: a line reader opened
 * earlier could emit lines before anyone iterates it, and they would be lost.
 */
export async function importStore(target: Store, openLines: () => AsyncIterable<string>): Promise<TableDigest[]> {
  await assertEmpty(target.db);
  let header: { format?: string; version?: number } | undefined;
  let digests: TableDigest[] | undefined;
  const known = new Set<string>(TABLES.map((table) => table.name));
  await target.db.transaction().execute(async (trx) => {
    let pending: { table: TableName; rows: Row[] } | undefined;
    const flush = async () => {
      if (pending) await insertBatch(trx, pending.table, pending.rows);
      pending = undefined;
    };
    for await (const line of openLines()) {
      if (line.trim() === '') continue;
      const record = JSON.parse(line) as { format?: string; version?: number; table?: string; row?: Row; digests?: TableDigest[] };
      if (!header) {
        if (record.format !== DUMP_FORMAT || record.version !== DUMP_VERSION) throw new Error('not a branchwise dump (version 1)');
        header = record;
        continue;
      }
      if (record.digests) {
        digests = record.digests;
        continue;
      }
      if (!record.table || !known.has(record.table) || !record.row) throw new Error(`unexpected line in dump: ${line.slice(0, 80)}`);
      const table = record.table as TableName;
      if (pending && pending.table !== table) await flush();
      pending ??= { table, rows: [] };
      pending.rows.push(record.row);
      if (pending.rows.length >= BATCH) await flush();
    }
    await flush();
    if (!header) throw new Error('the dump is empty');
    if (!digests) throw new Error('the dump is truncated: its closing digests line is missing');
  });
  const actual = await digestStore(target.db);
  compareDigests(digests!, actual);
  return actual;
}
