import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { migrations, openStore } from '../src/db/connect.js';
import { isUniqueViolation } from '../src/db/errors.js';
import { branchNameKey } from '../src/features/branches/branch-name.js';
import { branchesStore } from '../src/features/branches/branches.store.js';
import { lookAlikeVariant } from './support/look-alikes.js';
import { describeResponse, expectApiError, expectValidationError, locs, routeRequests } from './support/route-requests.js';
import { migratedTo } from './support/migrations.js';
import { createTestDatabase, startTestApp } from './support/test-app.js';

// Branch names that look alike are one name: stored in NFC without outer spaces, refused when they
// hold invisible characters or detached combining marks, and unique per agent under a case-folded
// NFKC key (a unique index, so it holds under concurrent writers on both dialects).

const testApp = await startTestApp();
const { keys, store } = testApp;
const { send, refused, ok, createAgent } = routeRequests(testApp);
afterAll(() => testApp.close());

let agentId: string;
let versionId: string;
beforeAll(async () => {
  ({ agentId, versionId } = await createAgent(keys.admin, 'Look-alikes'));
});

const branchesUrl = () => `/v1/convai/agents/${agentId}/branches`;
const create = (name: string, agent = agentId, parent = versionId) =>
  send({ method: 'POST', url: `/v1/convai/agents/${agent}/branches`, key: keys.admin, payload: { parent_version_id: parent, name, description: '' } });
const createRefused = (name: string) =>
  refused({ method: 'POST', url: branchesUrl(), key: keys.admin, payload: { parent_version_id: versionId, name, description: '' } });

async function branchName(branchId: string): Promise<string> {
  return (await ok<{ name: string }>(await send({ method: 'GET', url: `${branchesUrl()}/${branchId}`, key: keys.admin }))).name;
}

describe('look-alike branch names', () => {
  it('a name is stored in NFC without outer spaces', async () => {
    const created = await ok<{ created_branch_id: string }>(await create('  Cafe\u0301 au lait '));
    expect(await branchName(created.created_branch_id)).toBe('Caf\u00e9 au lait');
  });

  it.each([
    ['café in NFD when it exists in NFC', 'Cafe\u0301 au lait'],
    ['"Main " (main exists)', 'Main '],
    ['"main"', 'main'],
    ['"MAIN"', 'MAIN'],
    ['fullwidth ｍａｉｎ', '\uff4d\uff41\uff49\uff4e'],
  ])('%s: 409 resource_already_exists, nothing written', async (_, name) => {
    expectApiError(await createRefused(name), 409, 'conflict', 'resource_already_exists');
  });

  it.each([
    ['"Main\\u034F" (combining grapheme joiner)', 'Main\u034f'],
    ['a zero-width space', 'Ma\u200bin'],
    ['a BOM', '\ufeffMain'],
    ['a variation selector', 'Main\ufe0f'],
    ['only combining marks', '\u0301\u0308'],
    ['a control character', 'Main\u0007'],
    ['a format character (RTL override)', 'Main\u202e'],
  ])('a name with %s: 422 at ["body","name"], nothing written', async (_, name) => {
    expect(locs(expectValidationError(await createRefused(name)))).toEqual([['body', 'name']]);
  });

  it('a rename to a look-alike of another branch: 409; to a look-alike of its own name: accepted, stored normalized', async () => {
    const created = await ok<{ created_branch_id: string }>(await create('Renamed one'));
    const url = `${branchesUrl()}/${created.created_branch_id}`;
    expectApiError(await refused({ method: 'PATCH', url, key: keys.admin, payload: { name: 'ＭＡＩＮ ' } }), 409, 'conflict', 'resource_already_exists');
    expect(locs(expectValidationError(await refused({ method: 'PATCH', url, key: keys.admin, payload: { name: 'Main\u034f' } })))).toEqual([['body', 'name']]);
    await ok(await send({ method: 'PATCH', url, key: keys.admin, payload: { name: ' RENAMED ONE ' } }));
    expect(await branchName(created.created_branch_id)).toBe('RENAMED ONE');
  });

  it('the same name on another agent is fine', async () => {
    const other = await createAgent(keys.admin, 'Other agent');
    expect((await create('Cafe\u0301 au lait', other.agentId, other.versionId)).statusCode).toBe(200);
  });

  it('property: any look-alike of an existing name (NFD/NFC, case, width, invisible characters, spaces) is refused or taken, and writes nothing', async () => {
    const base = fc
      .array(fc.constantFrom(...'abcdefXYZ0189-', 'é', 'ü', 'Å', 'ñ', 'ß', 'Ж', 'Σ', 'ḗ'), { minLength: 3, maxLength: 16 })
      .map((chars) => `P ${chars.join('')}`);
    await fc.assert(
      fc.asyncProperty(base.chain((name) => fc.tuple(fc.constant(name), lookAlikeVariant(name))), async ([name, variant]) => {
        const first = await create(name);
        // An earlier run may hold this name (or a look-alike of it) already: that is the same check.
        if (first.statusCode !== 200) expectApiError(first, 409, 'conflict', 'resource_already_exists');
        const response = await createRefused(variant);
        expect([409, 422], `${JSON.stringify(variant)} after ${JSON.stringify(name)}: ${describeResponse(response)}`).toContain(response.statusCode);
        if (response.statusCode === 409) expectApiError(response, 409, 'conflict', 'resource_already_exists');
        else expect(locs(expectValidationError(response))).toEqual([['body', 'name']]);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 40) },
    );
  });

  it('two concurrent creates of look-alikes: exactly one is created, the other gets 409', async () => {
    for (let round = 0; round < 8; round++) {
      const name = `Race ${round} café`;
      const responses = await Promise.all([create(name.normalize('NFC')), create(name.normalize('NFD').toUpperCase())]);
      expect(responses.map((response) => response.statusCode).sort(), responses.map(describeResponse).join('\n')).toEqual([200, 409]);
      expectApiError(responses.find((response) => response.statusCode === 409)!, 409, 'conflict', 'resource_already_exists');
    }
    const list = await ok<{ results: { name: string }[] }>(await send({ method: 'GET', url: `${branchesUrl()}?limit=100`, key: keys.admin }));
    const keysOfNames = list.results.map((branch) => branchNameKey(branch.name));
    expect(new Set(keysOfNames).size).toBe(keysOfNames.length);
  });

  it('the database itself refuses a look-alike (a unique index on the key, not only a check before the insert)', async () => {
    const row = await store.db.selectFrom('branches').selectAll().where('agent_id', '=', agentId).where('name', '=', 'Main').executeTakeFirstOrThrow();
    const { name_key: _, ...copy } = row;
    const error = await branchesStore(store.db)
      .insert({ ...copy, id: `${row.id.slice(0, -1)}q`, name: 'ｍａｉｎ' })
      .then(() => undefined, (caught: unknown) => caught);
    expect(isUniqueViolation(error), String(error)).toBe(true);
  });
});

describe('migration 0008: name keys for existing branches', () => {
  it('keys every branch; existing look-alikes keep their names, the oldest keeps the key, and new look-alikes are refused', async () => {
    const names = Object.keys(migrations);
    const before = names[names.indexOf('0008_branch_name_key') - 1];
    const database = await createTestDatabase();
    try {
      const db = await migratedTo(database, before);
      const branch = (id: string, agent: string, name: string, createdAtMs: number) => ({
        id,
        agent_id: agent,
        name,
        description: '',
        parent_branch_id: null,
        head_version_id: `v_${id}`,
        head_seq_no: 1,
        protection_status: 'writer_perms_required',
        auto_rebase: 0,
        is_archived: 0,
        merged_into_branch_id: null,
        created_by_user_id: 'user_1',
        created_at_ms: createdAtMs,
        last_committed_at_ms: createdAtMs,
      });
      await db
        .insertInto('branches')
        .values([
          branch('b_main', 'agent_a', 'Main', 1),
          branch('b_space', 'agent_a', 'main ', 2),
          branch('b_cgj', 'agent_a', 'Main\u034f', 3),
          branch('b_nfd', 'agent_a', 'cafe\u0301', 4),
          branch('b_other', 'agent_b', 'Main', 5),
        ] as never)
        .execute();
      await db.destroy();

      const migrated = await openStore(database.options);
      try {
        const rows = await migrated.db.selectFrom('branches').select(['id', 'name', 'name_key']).orderBy('id').execute();
        expect(Object.fromEntries(rows.map((row) => [row.id, [row.name, row.name_key]]))).toEqual({
          b_main: ['Main', 'main'],
          b_space: ['main ', 'main#b_space'],
          b_cgj: ['Main\u034f', 'main#b_cgj'],
          b_nfd: ['cafe\u0301', 'caf\u00e9'],
          b_other: ['Main', 'main'],
        });
        // The migration's frozen copy of the key agrees with today's branchNameKey.
        for (const row of rows) expect(row.name_key.replace(/#.*$/, '')).toBe(branchNameKey(row.name));
        const { name_key: _, ...copy } = (await migrated.db.selectFrom('branches').selectAll().where('id', '=', 'b_nfd').executeTakeFirstOrThrow());
        const error = await branchesStore(migrated.db)
          .insert({ ...copy, id: 'b_new', name: 'CAFÉ' })
          .then(() => undefined, (caught: unknown) => caught);
        expect(isUniqueViolation(error), String(error)).toBe(true);
      } finally {
        await migrated.close();
      }
    } finally {
      await database.drop();
    }
  });
});
