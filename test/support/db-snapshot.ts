import { type Kysely, sql } from 'kysely';

import type { Database } from '../../src/db/schema.js';

/** Every table and its primary key, so rows come back in one stable order. */
const PRIMARY_KEYS: { [Table in keyof Database]: (keyof Database[Table] & string)[] } = {
  workspaces: ['id'],
  users: ['id'],
  api_keys: ['id'],
  agents: ['id'],
  agent_tags: ['agent_id', 'tag'],
  branches: ['id'],
  versions: ['id'],
  blobs: ['hash'],
  drafts: ['branch_id', 'user_id'],
};

/**
 * Every row of every table, ordered by primary key, as one JSON string: two snapshots are equal
 * exactly when nothing was written in between. Throws on a table it does not know, so a new
 * migration cannot make "nothing changed" assertions silently blind to its table.
 */
export async function snapshotDatabase(db: Kysely<Database>): Promise<string> {
  const known = new Set(Object.keys(PRIMARY_KEYS));
  const present = (await db.introspection.getTables()).map((table) => table.name);
  const unknown = present.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new Error(`snapshotDatabase does not know the table(s) ${unknown.join(', ')}: add them to PRIMARY_KEYS`);
  }
  const snapshot: Record<string, unknown[]> = {};
  for (const [table, keys] of Object.entries(PRIMARY_KEYS)) {
    const order = sql.join(keys.map((key) => sql.ref(key)));
    const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(table)} order by ${order}`.execute(db);
    snapshot[table] = rows;
  }
  return JSON.stringify(snapshot);
}
