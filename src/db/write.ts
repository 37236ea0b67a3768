import { type Kysely, sql } from 'kysely';

import { type Change, CHANGE_CHANNEL } from './change-feed.js';
import type { Store } from './connect.js';
import type { Database } from './schema.js';

export interface WriteScope {
  trx: Kysely<Database>;
  /** Announces a change to every process's caches once the transaction commits. */
  publish(change: Change): void;
  /** Runs after a successful commit (never after a rollback). */
  afterCommit(callback: () => void): void;
}

/**
 * One write transaction. On PostgreSQL the changes are sent with `pg_notify` inside the
 * transaction, so other processes hear of them exactly when they commit; this process's own
 * listeners hear at once after the commit.
 */
export async function writeTransaction<T>(store: Store, work: (scope: WriteScope) => Promise<T>): Promise<T> {
  const changes: Change[] = [];
  const callbacks: (() => void)[] = [];
  const result = await store.db.transaction().execute(async (trx) => {
    const value = await work({ trx, publish: (change) => changes.push(change), afterCommit: (callback) => callbacks.push(callback) });
    if (store.dialect === 'postgres') {
      for (const payload of new Set(changes.map((change) => JSON.stringify({ ...change, origin: store.changes.origin })))) {
        await sql`select pg_notify(${CHANGE_CHANNEL}, ${payload})`.execute(trx);
      }
    }
    return value;
  });
  store.changes.emitLocal(changes);
  for (const callback of callbacks) callback();
  return result;
}
