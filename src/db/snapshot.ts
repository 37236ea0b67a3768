import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';

import type { Store } from './connect.js';
import type { Database } from './schema.js';

/**
 * Runs `read` on one consistent snapshot of the store: every query made through the handle it is
 * given sees the same committed state, whatever other connections and processes commit
 * meanwhile. What export and copy read the whole store through.
 *
 * - PostgreSQL: a `REPEATABLE READ READ ONLY` transaction; its snapshot is taken at its first query.
 * - SQLite: a read transaction (`BEGIN`, deferred) on a read-only connection of its own; its first
 *   read fixes a WAL snapshot until the end. Not the store's connection: writers share that one,
 *   and holding it would stop them (and a read there would see a write transaction in flight).
 *
 * Only the handle given to `read` is in the snapshot: a query made through `store.db` inside it
 * is not.
 */
export async function readSnapshot<T>(store: Store, read: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  if (store.dialect === 'postgres') {
    return store.db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(read);
  }
  if (!store.sqlite) throw new Error('a SQLite store without its database handle');
  const connection = new SqliteDatabase(store.sqlite.name, { readonly: true, fileMustExist: true });
  connection.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: connection }) });
  try {
    return await db.transaction().execute(read);
  } finally {
    await db.destroy();
  }
}
