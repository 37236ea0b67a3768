import type { Kysely } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

/**
 * `branchNameKey` (src/features/branches/branch-name.ts) as it was when this migration landed:
 * copied, so that this migration always computes the same keys. A later change of that function
 * needs a new migration that recomputes `name_key`.
 */
function nameKey(name: string): string {
  return name
    .normalize('NFKC')
    .replace(/\p{Default_Ignorable_Code_Point}/gu, '')
    .toUpperCase()
    .toLowerCase()
    .normalize('NFKC')
    .replace(/\s+/gu, ' ')
    .trim();
}

export async function up(db: Kysely<any>): Promise<void> {
  // Look-alike branch names ("Main", "main", "ｍａｉｎ", "Main ", "café" in NFC and NFD) cannot
  // coexist on one agent: their case-folded NFKC key is unique. The default only lets the column
  // be added to a table with rows; every insert sets the key (branchesStore).
  await db.schema.alterTable('branches').addColumn('name_key', 'text', (c) => c.notNull().defaultTo('')).execute();

  // Existing look-alikes keep their names (scripts and the CLI may use them); the oldest keeps the
  // plain key and each later one gets `key#branch_id`, which no valid name can have ("#" is not
  // allowed in a name), so none of them blocks the others or a future name.
  const rows = (await db
    .selectFrom('branches')
    .select(['id', 'agent_id', 'name'])
    .orderBy('agent_id')
    .orderBy('created_at_ms')
    .orderBy('id')
    .execute()) as { id: string; agent_id: string; name: string }[];
  const taken = new Set<string>();
  for (const row of rows) {
    const key = nameKey(row.name);
    const unique = taken.has(`${row.agent_id}\n${key}`) ? `${key}#${row.id}` : key;
    taken.add(`${row.agent_id}\n${key}`);
    await db.updateTable('branches').set({ name_key: unique }).where('id', '=', row.id).execute();
  }
  await db.schema.createIndex('branches_agent_name_key').on('branches').columns(['agent_id', 'name_key']).unique().execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
