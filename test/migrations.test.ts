import { type Kysely, sql } from 'kysely';
import { describe, expect, it } from 'vitest';

import { openStore } from '../src/db/connect.js';
import type { Database } from '../src/db/schema.js';
import { agentsStore } from '../src/features/agents/agents.store.js';
import { experimentsStore } from '../src/features/experiments/experiments.store.js';
import { migratedTo } from './support/migrations.js';
import { createTestDatabase, dialect } from './support/test-app.js';

// Migrations upgrade a store with data in it, on both dialects.

describe('migrations', () => {
  it('0002 gives every existing agent its first deployment: all traffic on main', async () => {
    const database = await createTestDatabase();
    try {
      const db = await migratedTo(database, '0001_initial');
      await db.insertInto('workspaces').values({ id: 'ws_1', name: 'default', created_at_ms: 1_700_000_000_000 }).execute();
      await db
        .insertInto('agents')
        .values({
          id: 'agent_old',
          workspace_id: 'ws_1',
          name: 'Old',
          tags: '[]',
          agent_settings: '{}',
          voice_id: '',
          archived: 0,
          main_branch_id: 'agtbrch_old_main',
          created_by_user_id: 'user_1',
          created_at_ms: 1_700_000_000_000,
          updated_at_ms: 1_700_000_000_000,
        })
        .execute();
      await db.destroy();

      const store = await openStore(database.options);
      try {
        const deployments = await store.db.selectFrom('deployments').selectAll().execute();
        expect(deployments).toHaveLength(1);
        expect(deployments[0]).toMatchObject({
          agent_id: 'agent_old',
          is_active: 1,
          seq_no: 1,
          split: JSON.stringify({ agtbrch_old_main: 100 }),
          bucket_table: '0*10000',
          source: 'manual',
        });
        expect(deployments[0].id).toMatch(/^agtdpl_[0-9a-f]{28}$/);
      } finally {
        await store.close();
      }
    } finally {
      await database.drop();
    }
  });

  it('0004 computes every existing version\'s frontier', async () => {
    const database = await createTestDatabase();
    try {
      const db = await migratedTo(database, '0003_merged_authors');
      const version = (id: string, branch: string, seq: number, generation: number, inBranch: string | null, outOfBranch: string | null) => ({
        id,
        agent_id: 'agent_old',
        branch_id: branch,
        seq_no_in_branch: seq,
        in_branch_parent_id: inBranch,
        out_of_branch_parent_id: outOfBranch,
        merged_from_branch_id: null,
        merged_from_version_id: null,
        merged_into_branch_id: null,
        rebased_from_version_id: null,
        generation,
        description: '',
        author_user_id: 'user_1',
        committed_at_ms: 1,
        document_hash: 'h',
        merged_author_ids: null,
      });
      await db
        .insertInto('versions')
        .values([
          version('m1', 'main', 1, 1, null, null),
          version('m2', 'main', 2, 2, 'm1', null),
          version('b1', 'feature', 1, 2, null, 'm1'),
          version('b2', 'feature', 2, 3, 'b1', null),
        ] as never)
        .execute();
      await db.destroy();

      const store = await openStore(database.options);
      try {
        const rows = await store.db.selectFrom('versions').innerJoin('blobs', 'blobs.hash', 'versions.frontier_hash').select(['versions.id', 'blobs.body']).orderBy('versions.id').execute();
        expect(Object.fromEntries(rows.map((row) => [row.id, JSON.parse(row.body)]))).toEqual({
          b1: { f: { main: 1 } },
          b2: { f: { main: 1 } },
          m1: { f: {} },
          m2: { f: {} },
        });
      } finally {
        await store.close();
      }
    } finally {
      await database.drop();
    }
  });

  it('0007 gives every existing agent a revision, which each update of the row then moves', async () => {
    const database = await createTestDatabase();
    try {
      const db = await migratedTo(database, '0006_audit');
      await db.insertInto('workspaces').values({ id: 'ws_1', name: 'default', created_at_ms: 1_700_000_000_000 }).execute();
      const agent = (id: string) => ({
        id,
        workspace_id: 'ws_1',
        name: id,
        tags: '[]',
        agent_settings: '{}',
        voice_id: '',
        archived: 0,
        main_branch_id: `agtbrch_${id}`,
        created_by_user_id: 'user_1',
        created_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_000_000,
      });
      await db.insertInto('agents').values([agent('agent_a'), agent('agent_b')]).execute();
      await db.destroy();

      const store = await openStore(database.options);
      try {
        const revisions = () => store.db.selectFrom('agents').select(['id', 'revision']).orderBy('id').execute();
        expect(await revisions()).toEqual([{ id: 'agent_a', revision: 0 }, { id: 'agent_b', revision: 0 }]);
        // Two updates in the same millisecond still tell apart.
        const first = await agentsStore(store.db).update('agent_a', { updated_at_ms: 1_700_000_000_001 });
        const second = await agentsStore(store.db).update('agent_a', { updated_at_ms: 1_700_000_000_001 });
        expect([first.revision, second.revision]).toEqual([1, 2]);
        expect(await revisions()).toEqual([{ id: 'agent_a', revision: 2 }, { id: 'agent_b', revision: 0 }]);
      } finally {
        await store.close();
      }
    } finally {
      await database.drop();
    }
  });

  it('0012 drops the exposures\' time index; 0013 moves their rows into segments and arms, every field kept; 0014 leaves them to be counted', async () => {
    const database = await createTestDatabase();
    try {
      const indexesOf = async (db: Kysely<Database>) =>
        dialect === 'postgres'
          ? (await sql<{ name: string }>`select indexname as name from pg_indexes where tablename = 'exposures'`.execute(db)).rows.map((row) => row.name).sort()
          : (await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'exposures'`.execute(db)).rows.map((row) => row.name).sort();
      const db = await migratedTo(database, '0011_guarded_rollouts');
      expect(await indexesOf(db)).toContain('exposures_agent_time');
      const day = 86_400_000;
      // Two agents; one with 2,500 units over two days and three arms (segments of 1,000 at most).
      const rows = [
        ...Array.from({ length: 2_500 }, (_, i) => ({
          agent_id: 'agent_a',
          unit_id: `conv_${i}`,
          branch_id: i % 3 === 0 ? 'b1' : 'b2',
          version_id: 'v',
          deployment_id: 'd',
          probability: i % 3 === 2 ? null : 0.5,
          exposed_at_ms: 1_700_000_000_000 + (i % 2) * day + i,
          source: (i % 5 === 0 ? 'reported' : 'routed') as 'reported' | 'routed',
        })),
        { agent_id: 'agent_b', unit_id: 'k1', branch_id: 'b', version_id: 'v', deployment_id: 'd', probability: 1, exposed_at_ms: 1_700_000_000_000, source: 'routed' as const },
      ];
      for (let start = 0; start < rows.length; start += 500) await (db as Kysely<any>).insertInto('exposures').values(rows.slice(start, start + 500)).execute();
      await db.destroy();

      const store = await openStore(database.options);
      try {
        const byUnit = (a: { unit_id: string }, b: { unit_id: string }) => a.unit_id.localeCompare(b.unit_id);
        const exposures = experimentsStore(store.db);
        expect((await exposures.exposureRows('agent_a')).sort(byUnit)).toEqual(rows.filter((row) => row.agent_id === 'agent_a').sort(byUnit));
        expect(await exposures.exposureRows('agent_b')).toEqual([rows[rows.length - 1]]);
        // Six arms (two branches, a probability or none, two sources); 1,250 units a day: two segments each.
        // 0014: their units with values but no exposure are not counted yet (-1: counted when next used).
        expect(await exposures.findLog('agent_a')).toEqual({ agent_id: 'agent_a', last_seq: 4, last_arm: 6, unexposed_value_units: -1 });
        expect(await exposures.findLog('agent_b')).toEqual({ agent_id: 'agent_b', last_seq: 1, last_arm: 1, unexposed_value_units: -1 });
        // The old table is gone, with its indexes.
        expect(await indexesOf(store.db)).toEqual([]);
      } finally {
        await store.close();
      }
    } finally {
      await database.drop();
    }
  });

  it('0015 stores segment bodies with lz4 on PostgreSQL (pglz cost the server a microsecond an exposure), and changes nothing on SQLite', async () => {
    const database = await createTestDatabase();
    try {
      const shape = async (db: Kysely<any>) =>
        dialect === 'postgres'
          ? (await sql<{ compression: string; storage: string }>`select attcompression as compression, attstorage as storage from pg_attribute where attrelid = 'exposure_segments'::regclass and attname = 'body'`.execute(db)).rows[0]
          : (await sql<{ sql: string }>`select sql from sqlite_master where name = 'exposure_segments'`.execute(db)).rows[0];
      const before = await migratedTo(database, '0014_unexposed_value_units');
      const earlier = await shape(before);
      await before.destroy();
      const store = await openStore(database.options);
      try {
        // lz4 (l), still compressed and stored out of line (x); a server built without lz4 would store them uncompressed (e).
        expect(await shape(store.db)).toEqual(dialect === 'postgres' ? { compression: 'l', storage: 'x' } : earlier);
        if (dialect === 'postgres') expect(earlier).toEqual({ compression: '', storage: 'x' });
      } finally {
        await store.close();
      }
    } finally {
      await database.drop();
    }
  });
});
