import { type Kysely, PostgresAdapter, sql } from 'kysely';

import { compiledOnce } from './compiled-once.js';
import type { Database } from './schema.js';

/**
 * Takes the write lock on a branch for the rest of the transaction, so that commits,
 * merges and deployments touching it are serialized across processes. On SQLite the
 * transaction itself is already exclusive (one connection, one writer), so nothing is needed.
 */
export async function lockBranch(trx: Kysely<Database>, branchId: string): Promise<void> {
  if (!takesRowLocks(trx)) return;
  await trx.selectFrom('branches').select('id').where('id', '=', branchId).forUpdate().execute();
}

/**
 * Takes the agent-wide write lock: deployments, archiving and (later) merges that move traffic
 * hold it, so "exactly one active deployment" and "no archived branch has traffic" hold across
 * processes. Lock order: the agent before any of its branches.
 */
export async function lockAgent(trx: Kysely<Database>, agentId: string): Promise<void> {
  if (!takesRowLocks(trx)) return;
  await trx.selectFrom('agents').select('id').where('id', '=', agentId).forUpdate().execute();
}

/** Whether writes must lock rows (PostgreSQL); SQLite's write transaction is exclusive already. */
export function takesRowLocks(trx: Kysely<Database>): boolean {
  return trx.getExecutor().adapter instanceof PostgresAdapter;
}

/**
 * Takes transaction-scoped locks on arbitrary keys (PostgreSQL advisory locks on their 64-bit
 * hashes), in one order so that two transactions locking overlapping sets cannot deadlock. For
 * what has no row to lock (an agent's experiment writes: an exposure and a value of one unit
 * may arrive together in two transactions). Each key held is a slot of PostgreSQL's shared lock
 * table until the transaction ends: lock a few keys, not one per row of a batch. SQLite's write
 * transaction is exclusive already.
 */
export async function lockKeys(trx: Kysely<Database>, keys: readonly string[]): Promise<void> {
  if (!takesRowLocks(trx) || keys.length === 0) return;
  await advisoryLocks(trx, [...new Set(keys)]);
}

// Compiled once: the exposure flush takes it every batch.
const advisoryLocks = compiledOnce((db, keys: string[]) =>
  sql`select pg_advisory_xact_lock(k) from (select distinct hashtextextended(u, 0) as k from unnest(${keys}::text[]) as u order by k) as ordered`.compile(db),
);
