import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

import type { WritableStore } from './write.js';

/**
 * Leases in the database: background work that must run once however many processes serve
 * (architecture.md "Where a new capability goes") runs only in the process that holds its lease.
 *
 * - A lease is a row `(name, holder, expires_at_ms)`. Taking or renewing it is one upsert, a write
 *   transaction of its own, so two processes can never both take it: on PostgreSQL the upsert
 *   locks the row (or the key, for the first insert), on SQLite a write is exclusive across
 *   connections and processes.
 * - The holder renews before it expires; should it die, another process takes it once it has
 *   expired. Expiry is judged by the clock of the process asking (`nowMs`): the clocks of the
 *   processes must agree to well within the lease's duration (NTP gives milliseconds).
 * - Holding a lease makes a process the only one that *should* act, not a lock for what it
 *   writes: work done under it still checks, in its own transaction, that what it acts on has not
 *   changed (a lease may pass on while a holder is paused mid-work).
 */

/** A random name for one process (or one app in a test process) holding leases. */
export function newLeaseHolder(): string {
  return `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
}

/**
 * Takes the lease `name` for `holder` until `nowMs + durationMs`, or renews it when `holder`
 * has it already. True when `holder` holds it now; false when another holder's lease has not
 * expired, or (SQLite) the database stayed busy with another connection's write for its busy
 * timeout: then it is not held this time, and the holder renews at its next try.
 *
 * One statement, so one transaction of its own: nothing is awaited while it holds SQLite's write
 * lock (two stores of one process on one file would otherwise wait on each other's event loop).
 */
export async function acquireLease(store: Pick<WritableStore, 'db'>, name: string, holder: string, nowMs: number, durationMs: number): Promise<boolean> {
  const expiresAtMs = nowMs + durationMs;
  try {
    const taken = await store.db
      .insertInto('leases')
      .values({ name, holder, expires_at_ms: expiresAtMs })
      .onConflict((conflict) =>
        conflict
          .column('name')
          .doUpdateSet({ holder, expires_at_ms: expiresAtMs })
          .where((eb) => eb.or([eb('leases.holder', '=', holder), eb('leases.expires_at_ms', '<=', nowMs)])),
      )
      .returning('holder')
      .executeTakeFirst();
    return taken?.holder === holder;
  } catch (error) {
    if (isSqliteBusy(error)) return false;
    throw error;
  }
}

function isSqliteBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/** Gives the lease up (a process stopping), so that another may take it at once. Nothing if `holder` does not hold it. */
export async function releaseLease(store: Pick<WritableStore, 'db'>, name: string, holder: string): Promise<void> {
  await store.db.deleteFrom('leases').where('name', '=', name).where('holder', '=', holder).execute();
}
