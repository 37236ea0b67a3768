import type { Kysely } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one.

// Exposures move from a row per unit to segments: a row per agent, day and written batch, holding
// that batch's units as compact JSON, with what they were exposed to (deployment, branch,
// version, probability, source) numbered per agent as "arms". A row per unit keyed by the unit put
// each new unit on its own page of the key's B-tree: 20-30 µs of CPU a unit, a third of the
// routed read's own cost (bench/README.md). The segments are appended; which units have an
// exposure is kept in each process's memory (src/features/experiments/exposure-log.ts) and read
// back from them.

interface OldRow {
  agent_id: string;
  unit_id: string;
  branch_id: string;
  version_id: string;
  deployment_id: string;
  probability: number | null;
  exposed_at_ms: number | string;
  source: string;
}

interface AgentLog {
  agentId: string;
  arms: Map<string, number>;
  seq: number;
  days: Map<number, unknown[][]>;
}

/** Units a segment holds at most. */
const SEGMENT_UNITS = 1_000;
const PAGE = 10_000;
const DAY_MS = 86_400_000;

export async function up(db: Kysely<any>): Promise<void> {
  // Per agent: the last segment's number and the last arm's, both only ever growing (a segment
  // dropped by retention leaves its number used).
  await db.schema
    .createTable('exposure_logs')
    .addColumn('agent_id', 'text', (c) => c.primaryKey())
    .addColumn('last_seq', 'bigint', (c) => c.notNull())
    .addColumn('last_arm', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('exposure_arms')
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('arm', 'integer', (c) => c.notNull())
    .addColumn('deployment_id', 'text', (c) => c.notNull())
    .addColumn('branch_id', 'text', (c) => c.notNull())
    .addColumn('version_id', 'text', (c) => c.notNull())
    // The branch's share of traffic under that deployment then; null: none (kept, not weighted).
    .addColumn('probability', 'double precision')
    .addColumn('source', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('exposure_arms_pk', ['agent_id', 'arm'])
    .execute();
  await db.schema
    .createTable('exposure_segments')
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    // Days since the epoch (UTC) of every exposure in it: retention drops whole segments.
    .addColumn('day', 'integer', (c) => c.notNull())
    .addColumn('units', 'integer', (c) => c.notNull())
    // JSON array of [unit_id, arm, exposed_at_ms], one per unit, each unit's first exposure.
    .addColumn('body', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('exposure_segments_pk', ['agent_id', 'seq'])
    .execute();
  await db.schema.createIndex('exposure_segments_day').on('exposure_segments').columns(['day']).execute();

  // The rows of the old table, agent by agent, into segments.
  let after: OldRow | undefined;
  let current: AgentLog | undefined;
  const finish = async (log: AgentLog | undefined) => {
    if (!log) return;
    for (const [day, units] of log.days) await writeSegments(db, log, day, units);
    await db.insertInto('exposure_logs').values({ agent_id: log.agentId, last_seq: log.seq, last_arm: log.arms.size }).execute();
  };
  for (;;) {
    let query = db.selectFrom('exposures').selectAll().orderBy('agent_id').orderBy('unit_id').limit(PAGE);
    if (after) {
      const { agent_id: agentId, unit_id: unitId } = after;
      query = query.where((eb) => eb.or([eb('agent_id', '>', agentId), eb.and([eb('agent_id', '=', agentId), eb('unit_id', '>', unitId)])]));
    }
    const rows = (await query.execute()) as OldRow[];
    for (const row of rows) {
      if (current?.agentId !== row.agent_id) {
        await finish(current);
        current = { agentId: row.agent_id, arms: new Map(), seq: 0, days: new Map() };
      }
      const log: AgentLog = current;
      const key = JSON.stringify([row.deployment_id, row.branch_id, row.version_id, row.probability, row.source]);
      let arm = log.arms.get(key);
      if (arm === undefined) {
        arm = log.arms.size + 1;
        log.arms.set(key, arm);
        await db
          .insertInto('exposure_arms')
          .values({ agent_id: row.agent_id, arm, deployment_id: row.deployment_id, branch_id: row.branch_id, version_id: row.version_id, probability: row.probability, source: row.source })
          .execute();
      }
      const exposedAtMs = Number(row.exposed_at_ms);
      const day = Math.floor(exposedAtMs / DAY_MS);
      const units = log.days.get(day) ?? [];
      units.push([row.unit_id, arm, exposedAtMs]);
      log.days.set(day, units);
      if (units.length === SEGMENT_UNITS) {
        await writeSegments(db, log, day, units);
        log.days.delete(day);
      }
    }
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1];
  }
  await finish(current);
  await db.schema.dropTable('exposures').execute();
}

async function writeSegments(db: Kysely<any>, log: { agentId: string; seq: number }, day: number, units: unknown[][]): Promise<void> {
  log.seq++;
  await db.insertInto('exposure_segments').values({ agent_id: log.agentId, seq: log.seq, day, units: units.length, body: JSON.stringify(units) }).execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
