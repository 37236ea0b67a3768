import { type Kysely, sql } from 'kysely';

import type { Database } from '../../src/db/schema.js';
import { TABLES } from '../../src/db/tables.js';

/**
 * Every row of every table (but `leases`), ordered by primary key, as one JSON string: two
 * snapshots are equal exactly when nothing was written in between. Throws on a table `TABLES` does not list, so a new
 * migration cannot make "nothing changed" assertions silently blind to its table.
 */
export async function snapshotDatabase(db: Kysely<Database>): Promise<string> {
  const known = new Set<string>(TABLES.map((table) => table.name));
  const present = (await db.introspection.getTables()).map((table) => table.name).filter((name) => !name.startsWith('kysely_'));
  const unknown = present.filter((name) => !known.has(name));
  if (unknown.length > 0) throw new Error(`src/db/tables.ts does not list the table(s) ${unknown.join(', ')}`);
  const snapshot: Record<string, unknown[]> = {};
  for (const table of TABLES) {
    // Coordination between processes, renewed on a timer while a guarded rollout runs (src/db/leases.ts): no request writes it.
    if (table.name === 'leases') continue;
    const order = sql.join(table.key.map((key) => sql.ref(key)));
    const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(table.name)} order by ${order}`.execute(db);
    snapshot[table.name] = rows;
  }
  return JSON.stringify(snapshot);
}
