import { AsyncLocalStorage } from 'node:async_hooks';

import { type Kysely, sql } from 'kysely';

import { type Change, CHANGE_CHANNEL, type ChangeFeed } from './change-feed.js';
import type { Database } from './schema.js';

/** What a write needs of a store: connect.ts's `Store`, which imports this module (for the guard) and so is not imported here. */
export interface WritableStore {
  db: Kysely<Database>;
  dialect: 'sqlite' | 'postgres';
  changes: Pick<ChangeFeed, 'origin' | 'emitLocal'>;
  writeGuard: object;
  /** Guard the writes that ask not to be (`WriteOptions.unguarded`) too: what tests do. */
  guardEveryWrite: boolean;
}

export interface WriteOptions {
  /**
   * Runs the write without the guard below, unless the store guards every write (tests do). For
   * a background write that routed reads are served beside (the exposure flush): while any write
   * is guarded, Node 20 pays for every promise of the process, and a flush on PostgreSQL keeps its
   * write open across its round trips (recording's cost there measured 0.81× → 0.87× of routed-read
   * throughput without it: bench/README.md). Its code is guarded in every test run like the rest.
   */
  unguarded?: boolean;
}

export interface WriteScope {
  trx: Kysely<Database>;
  /** Announces a change to every process's caches once the transaction commits. */
  publish(change: Change): void;
  /** Runs after a successful commit (never after a rollback). */
  afterCommit(callback: () => void): void;
  /** Runs once the transaction has failed and rolled back (never after a commit). */
  afterRollback(callback: () => void): void;
}

/**
 * The write transaction the current async call chain runs in, while it is open. Work that
 * outlives it (something started inside and not awaited) finds `open: false` and may use the pool.
 *
 * Enabled only while a write is in flight: on Node 20 an enabled AsyncLocalStorage costs every
 * promise of the process (about 0.3 µs each), and reads are the hot path. Disabling it when the
 * last write ends costs about 2.5 µs a write.
 */
const writeInProgress = new AsyncLocalStorage<{ open: boolean; store: object }>();
let writesInFlight = 0;

/**
 * Thrown when a query asks the pool for a connection from inside a write transaction. On
 * SQLite that connection is the one the transaction holds: the query would wait for it forever,
 * and every request after it too. On PostgreSQL it would read outside the transaction.
 */
export class QueryOutsideWriteError extends Error {
  constructor() {
    super(
      'A query ran through the connection pool (the root database handle, or something built on it) inside a write ' +
        'transaction. Inside context.write, query through the transaction handle (`trx`) only.',
    );
    this.name = 'QueryOutsideWriteError';
  }
}

/**
 * Called by a store's database driver before it hands out a connection (see `connect.ts`). Only
 * that store's writes count: reading another store inside a write (a copy) deadlocks nothing.
 */
export function assertNoWriteInProgress(writeGuard: object): void {
  const scope = writeInProgress.getStore();
  if (scope?.open && scope.store === writeGuard) throw new QueryOutsideWriteError();
}

/**
 * One write transaction. On PostgreSQL the changes are sent with `pg_notify` inside the
 * transaction, so other processes hear of them exactly when they commit; this process's own
 * listeners hear at once after the commit. Inside `work`, the pool refuses connections: the
 * transaction's handle is the only one that answers.
 */
export async function writeTransaction<T>(store: WritableStore, work: (scope: WriteScope) => Promise<T>, options: WriteOptions = {}): Promise<T> {
  const changes: Change[] = [];
  const callbacks: (() => void)[] = [];
  const rollbackCallbacks: (() => void)[] = [];
  const scope = { open: true, store: store.writeGuard };
  const guarded = !options.unguarded || store.guardEveryWrite;
  const inScope = guarded ? <R>(run: () => Promise<R>) => writeInProgress.run(scope, run) : <R>(run: () => Promise<R>) => run();
  let result: T;
  if (guarded) writesInFlight++;
  try {
    // The transaction has its connection before `work` starts: only what runs inside is guarded.
    result = await store.db.transaction().execute((trx) =>
      inScope(async () => {
        const value = await work({
          trx,
          publish: (change) => changes.push(change),
          afterCommit: (callback) => callbacks.push(callback),
          afterRollback: (callback) => rollbackCallbacks.push(callback),
        });
        if (store.dialect === 'postgres') {
          for (const payload of new Set(changes.map((change) => JSON.stringify({ ...change, origin: store.changes.origin })))) {
            await sql`select pg_notify(${CHANGE_CHANNEL}, ${payload})`.execute(trx);
          }
        }
        return value;
      }),
    );
  } catch (error) {
    for (const callback of rollbackCallbacks) callback();
    throw error;
  } finally {
    scope.open = false;
    if (guarded && --writesInFlight === 0) writeInProgress.disable();
  }
  store.changes.emitLocal(changes);
  for (const callback of callbacks) callback();
  return result;
}
