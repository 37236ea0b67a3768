import { randomBytes } from 'node:crypto';

import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('deployments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    // Per agent 1, 2, 3 …: history order, decided by a unique key.
    .addColumn('seq_no', 'integer', (c) => c.notNull())
    // JSON object {branch_id: percentage}, in the order the request listed the branches.
    .addColumn('split', 'text', (c) => c.notNull())
    // JSON array of branch ids: the indexes the bucket table refers to.
    .addColumn('branch_ids', 'text', (c) => c.notNull())
    .addColumn('bucket_table', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('author_user_id', 'text', (c) => c.notNull())
    .addColumn('deployed_at_ms', 'bigint', (c) => c.notNull())
    .addColumn('is_active', 'integer', (c) => c.notNull())
    .addUniqueConstraint('deployments_agent_seq', ['agent_id', 'seq_no'])
    .execute();
  // Exactly one active deployment per agent, enforced by the database itself.
  await sql`create unique index deployments_one_active on deployments (agent_id) where is_active = 1`.execute(db);

  // Every existing agent gets its first deployment: all traffic on main (decisions.md D14).
  const agents = await db.selectFrom('agents').select(['id', 'main_branch_id', 'created_by_user_id', 'created_at_ms']).execute();
  for (const agent of agents) {
    await db
      .insertInto('deployments')
      .values({
        id: `agtdpl_${randomBytes(14).toString('hex').slice(0, 28)}`,
        agent_id: agent.id,
        seq_no: 1,
        split: JSON.stringify({ [agent.main_branch_id]: 100 }),
        branch_ids: JSON.stringify([agent.main_branch_id]),
        bucket_table: '0*10000',
        source: 'manual',
        author_user_id: agent.created_by_user_id,
        deployed_at_ms: agent.created_at_ms,
        is_active: 1,
      })
      .execute();
  }
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
