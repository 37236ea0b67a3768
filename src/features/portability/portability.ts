import { createHash } from 'node:crypto';

import { type Kysely, sql } from 'kysely';

import type { Store } from '../../db/connect.js';
import type { Database } from '../../db/schema.js';
import { readSnapshot } from '../../db/snapshot.js';
import { TABLES } from '../../db/tables.js';
import { canonicalJson, type Json } from '../../domain/canonical-json.js';

/**
 * Moving a store between databases and machines: a portable dump (JSON lines) and a direct
 * copy, both verified by row counts and a content hash per table computed on each side.
 *
 * - The source is read from one consistent snapshot (`readSnapshot`), rows and digests alike,
 *   so a server may keep committing while it is exported or copied.
 * - The target is written in one transaction and verified inside it, before it commits: a copy
 *   or import that does not verify is rolled back and leaves the target as it was (empty).
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

/** A digest per table, fed row by row in primary-key order. */
function digester() {
  const hashes = new Map<TableName, { hash: ReturnType<typeof createHash>; rows: number }>(
    TABLES.map((table) => [table.name, { hash: createHash('sha256'), rows: 0 }]),
  );
  return {
    add(table: TableName, rows: Row[]): void {
      const entry = hashes.get(table)!;
      for (const row of rows) entry.hash.update(`${canonicalJson(row)}\n`);
      entry.rows += rows.length;
    },
    digests: (): TableDigest[] => TABLES.map(({ name }) => ({ table: name, rows: hashes.get(name)!.rows, sha256: hashes.get(name)!.hash.digest('hex') })),
  };
}

/** Row counts and content hashes of every table, as `db` sees them (a snapshot, a transaction, …). */
export async function digestStore(db: Kysely<Database>): Promise<TableDigest[]> {
  const digest = digester();
  for (const table of TABLES) {
    for await (const batch of readTable(db, table)) digest.add(table.name, batch);
  }
  return digest.digests();
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

function compareDigests(expected: TableDigest[], actual: TableDigest[], what = 'verification failed'): void {
  for (const table of TABLES) {
    const want = expected.find((digest) => digest.table === table.name);
    const found = actual.find((digest) => digest.table === table.name);
    // A dump written before a table existed (the procedure tables, migration 0009) has no digest for it: it holds none of its rows.
    if (!want && found?.rows === 0) continue;
    if (!want || !found || found.rows !== want.rows || found.sha256 !== want.sha256) {
      throw new Error(
        `${what} for table ${table.name}: expected ${want?.rows ?? '?'} rows (${want?.sha256.slice(0, 12) ?? 'no digest'}), ` +
          `found ${found?.rows ?? 0} rows (${found?.sha256.slice(0, 12) ?? 'none'})`,
      );
    }
  }
}

/**
 * Fills the empty `target` in one transaction with `fill` and checks it against `expected()`
 * (called once `fill` is done) inside that transaction: on any mismatch, or any error, nothing
 * is committed.
 */
async function fillVerified(target: Store, fill: (trx: Kysely<Database>) => Promise<void>, expected: () => TableDigest[]): Promise<TableDigest[]> {
  return target.db.transaction().execute(async (trx) => {
    await assertEmpty(trx);
    await fill(trx);
    const actual = await digestStore(trx);
    compareDigests(expected(), actual);
    return actual;
  });
}

/**
 * Copies every row of `source` (one snapshot) into the empty `target`; verified before it
 * commits. `onTable` hears of each table before it is copied (progress).
 */
export async function copyStore(source: Store, target: Store, onTable?: (table: TableName) => void | Promise<void>): Promise<TableDigest[]> {
  return readSnapshot(source, async (snapshot) => {
    const read = digester();
    return fillVerified(
      target,
      async (trx) => {
        for (const table of TABLES) {
          await onTable?.(table.name);
          for await (const batch of readTable(snapshot, table)) {
            read.add(table.name, batch);
            await insertBatch(trx, table.name, batch);
          }
        }
      },
      read.digests,
    );
  });
}

/**
 * Writes the whole store, from one snapshot, as JSON lines: a header, one line per row (tables
 * in `TABLES` order, rows in primary-key order), and the digests of those rows last.
 */
export async function exportStore(source: Store, write: (line: string) => void | Promise<void>): Promise<TableDigest[]> {
  return readSnapshot(source, async (snapshot) => {
    const digest = digester();
    await write(JSON.stringify({ format: DUMP_FORMAT, version: DUMP_VERSION, tables: TABLES.map((table) => table.name) }));
    for (const table of TABLES) {
      for await (const batch of readTable(snapshot, table)) {
        digest.add(table.name, batch);
        for (const row of batch) await write(JSON.stringify({ table: table.name, row }));
      }
    }
    const digests = digest.digests();
    await write(JSON.stringify({ digests }));
    return digests;
  });
}

/**
 * Reads a dump through: checks its shape (header first, known tables in `TABLES` order, the
 * digests line last and complete) and hands its rows to `onRows` in batches. Returns the dump's
 * digests line and the digests of the rows it holds.
 */
async function readDump(
  lines: AsyncIterable<string>,
  onRows: (table: TableName, rows: Row[]) => Promise<void>,
): Promise<{ claimed: TableDigest[]; found: TableDigest[] }> {
  const order = new Map<string, number>(TABLES.map((table, index) => [table.name, index]));
  const digest = digester();
  let header = false;
  let claimed: TableDigest[] | undefined;
  let pending: { table: TableName; rows: Row[] } | undefined;
  const flush = async () => {
    if (pending) {
      digest.add(pending.table, pending.rows);
      await onRows(pending.table, pending.rows);
    }
    pending = undefined;
  };
  let current = -1;
  for await (const line of lines) {
    if (line.trim() === '') continue;
    if (claimed) throw new Error('unexpected line after the digests line of the dump');
    let record: { format?: string; version?: number; table?: string; row?: Row; digests?: TableDigest[] };
    try {
      record = JSON.parse(line);
    } catch {
      throw new Error(`unreadable line in dump: ${line.slice(0, 80)}`);
    }
    if (!header) {
      if (record?.format !== DUMP_FORMAT || record.version !== DUMP_VERSION) throw new Error('not a branchwise dump (version 1)');
      header = true;
      continue;
    }
    if (record?.digests) {
      claimed = record.digests;
      continue;
    }
    const index = record?.table === undefined ? undefined : order.get(record.table);
    if (index === undefined || !record.row || typeof record.row !== 'object' || Array.isArray(record.row)) {
      throw new Error(`unexpected line in dump: ${line.slice(0, 80)}`);
    }
    if (index < current) throw new Error(`rows of table ${record.table} out of order in the dump`);
    current = index;
    const table = record.table as TableName;
    if (pending && pending.table !== table) await flush();
    pending ??= { table, rows: [] };
    pending.rows.push(record.row);
    if (pending.rows.length >= BATCH) await flush();
  }
  await flush();
  if (!header) throw new Error('the dump is empty');
  if (!claimed) throw new Error('the dump is truncated: its closing digests line is missing');
  const wellFormed = (digest: TableDigest) => typeof digest?.table === 'string' && Number.isSafeInteger(digest.rows) && typeof digest.sha256 === 'string';
  if (!Array.isArray(claimed) || !claimed.every(wellFormed)) throw new Error('the digests line of the dump is malformed');
  return { claimed, found: digest.digests() };
}

/**
 * Reads a dump into the empty `target`. The dump is read twice: first to check its rows against
 * its own digests (a damaged dump is refused before anything is written), then into one
 * transaction on the target, which is checked against the dump's digests before it commits.
 * `openLines` opens the dump afresh on each call.
 */
export async function importStore(target: Store, openLines: () => AsyncIterable<string>): Promise<TableDigest[]> {
  const { claimed, found } = await readDump(openLines(), async () => undefined);
  compareDigests(claimed, found, 'the dump does not match its own digests');
  return fillVerified(
    target,
    async (trx) => {
      const again = await readDump(openLines(), (table, rows) => insertBatch(trx, table, rows));
      compareDigests(claimed, again.found, 'the dump changed while it was read');
    },
    () => claimed,
  );
}
