import { type Kysely, PostgresAdapter } from 'kysely';

import type { Database } from './schema.js';

/**
 * Takes the write lock on a branch for the rest of the transaction, so that commits,
 * merges and deployments touching it are serialized across processes. On SQLite the
 * transaction itself is already exclusive (one connection, one writer), so nothing is needed.
 */
export async function lockBranch(trx: Kysely<Database>, branchId: string): Promise<void> {
  if (!(trx.getExecutor().adapter instanceof PostgresAdapter)) return;
  await trx.selectFrom('branches').select('id').where('id', '=', branchId).forUpdate().execute();
}
