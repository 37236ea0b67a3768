import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';

import { TABLES } from '../src/db/tables.js';
import { snapshotDatabase } from './support/db-snapshot.js';
import { describeResponse, type Fixture, INTERNALS, routeRequests, type Send, snapshotDiff } from './support/route-requests.js';
import { dialect, startOtherApp, startTestApp } from './support/test-app.js';

// A write is all or nothing, on both dialects (issue 15, item 8): a failure in the middle of a
// commit, a merge or a deployment leaves nothing of it visible, in the database or through the
// API (caches included), and the same request succeeds once the failure is gone. The failure is a
// trigger that refuses any row change of one table; for each operation it is put on every table
// the operation writes, in turn, so that it strikes at every point of the transaction.

const testApp = await startTestApp();
const { store, keys } = testApp;
const { send, ok, createFixture } = routeRequests(testApp);
/** Another app on the database, whose caches never held what a request wrote: it reads what was stored. */
const other = await startOtherApp(testApp);
const fromOther = routeRequests({ ...testApp, app: other.app, store: other.store });
afterAll(async () => {
  await other.close();
  await testApp.close();
});

const FAILURE = 'injected failure';

/** Makes every row change of `table` fail, until the returned function is called. */
async function failWritesTo(table: string): Promise<() => Promise<void>> {
  const name = `fail_${table}`;
  if (dialect === 'sqlite') {
    for (const event of ['INSERT', 'UPDATE', 'DELETE']) {
      await sql.raw(`CREATE TRIGGER ${name}_${event.toLowerCase()} BEFORE ${event} ON ${table} BEGIN SELECT RAISE(ABORT, '${FAILURE}'); END`).execute(store.db);
    }
    return async () => {
      for (const event of ['insert', 'update', 'delete']) await sql.raw(`DROP TRIGGER ${name}_${event}`).execute(store.db);
    };
  }
  await sql.raw(`CREATE OR REPLACE FUNCTION branchwise_test_failure() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '${FAILURE}'; END $$`).execute(store.db);
  await sql.raw(`CREATE TRIGGER ${name} BEFORE INSERT OR UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION branchwise_test_failure()`).execute(store.db);
  return async () => {
    await sql.raw(`DROP TRIGGER ${name} ON ${table}`).execute(store.db);
  };
}

/** The tables whose rows differ between two snapshots. */
function tablesChanged(before: string, after: string): string[] {
  const changed = new Set(snapshotDiff(before, after).map((line) => line.split(' ')[1]));
  return TABLES.map((table) => table.name).filter((name) => changed.has(name));
}

const agentUrl = (fixture: Fixture) => `/v1/convai/agents/${fixture.agentId}`;
const SPLIT_90_10 = (fixture: Fixture) => ({
  deployment_request: {
    requests: [
      { branch_id: fixture.mainBranchId, deployment_strategy: { type: 'percentage', traffic_percentage: 90 } },
      { branch_id: fixture.branchId, deployment_strategy: { type: 'percentage', traffic_percentage: 10 } },
    ],
  },
});

/** A fixture whose branch has live traffic, so that merging it moves traffic too. */
async function liveFixture(): Promise<Fixture> {
  const fixture = await createFixture();
  await ok(await send({ method: 'POST', url: `${agentUrl(fixture)}/deployments`, key: keys.admin, payload: SPLIT_90_10(fixture) }));
  return fixture;
}

const OPERATIONS: Record<string, (fixture: Fixture) => Send> = {
  // A message of its own per agent: content already stored is not written again, and each run must write it.
  'a commit to main': (f) => ({ method: 'PATCH', url: agentUrl(f), key: keys.admin, payload: { name: 'Committed', conversation_config: { agent: { first_message: `committed to ${f.agentId}` } } } }),
  'a merge that archives the live source': (f) => ({
    method: 'POST',
    url: `${agentUrl(f)}/branches/${f.branchId}/merge?target_branch_id=${f.mainBranchId}`,
    key: keys.admin,
    payload: { archive_source_branch: true },
  }),
  'a deployment': (f) => ({
    method: 'POST',
    url: `${agentUrl(f)}/deployments`,
    key: keys.admin,
    payload: { deployment_request: { requests: [{ branch_id: f.branchId, deployment_strategy: { type: 'percentage', traffic_percentage: 100 } }] } },
  }),
};

/** What the API shows of a fixture (through this app unless told): heads, branches, traffic and routed reads. */
async function whatUsersSee(fixture: Fixture, through = { send, ok }) {
  const read = async (url: string) => through.ok<unknown>(await through.send({ method: 'GET', url, key: keys.admin }));
  const routed = [];
  for (let i = 0; i < 20; i++) routed.push(await read(`${agentUrl(fixture)}?conversation_id=conv_atomic_${i}`));
  return {
    main: await read(agentUrl(fixture)),
    branch: await read(`${agentUrl(fixture)}?branch_id=${fixture.branchId}`),
    branches: await read(`${agentUrl(fixture)}/branches?include_archived=true`),
    deployments: await read(`${agentUrl(fixture)}/deployments`),
    proposal: await read(`${agentUrl(fixture)}/merge-proposals/${fixture.proposalId}`),
    routed,
  };
}

describe.each(Object.entries(OPERATIONS))('%s', (_, operation) => {
  it('fails whole wherever it fails: nothing written, nothing shown, and it succeeds once the failure is gone', async () => {
    // Which tables it writes: a run on a fixture of its own.
    const probe = await liveFixture();
    const beforeProbe = await snapshotDatabase(store.db);
    await ok(await send(operation(probe)));
    const written = tablesChanged(beforeProbe, await snapshotDatabase(store.db));
    expect(written.length, `writes ${written.join(', ')}`).toBeGreaterThanOrEqual(2);

    for (const table of written) {
      const fixture = await liveFixture();
      // Warm every cache the reads use, then fail.
      const seen = await whatUsersSee(fixture);
      const before = await snapshotDatabase(store.db);
      const restore = await failWritesTo(table);
      let response;
      try {
        response = await send(operation(fixture));
      } finally {
        await restore();
      }
      expect(response.statusCode, describeResponse(response)).toBe(500);
      expect(response.json()).toEqual({
        detail: { status: 'internal_error', code: 'internal_error', type: 'internal_error', message: expect.any(String), request_id: expect.any(String) },
      });
      expect(response.body).not.toContain(FAILURE);
      expect(response.body).not.toMatch(INTERNALS);
      const after = await snapshotDatabase(store.db);
      expect(snapshotDiff(before, after), `a failure writing ${table} left rows behind`).toEqual([]);
      expect(await whatUsersSee(fixture), `a failure writing ${table} shows`).toEqual(seen);
      // Nothing half-done is left in memory either: the same request now goes through.
      const retried = await send(operation(fixture));
      expect(retried.statusCode, `after a failure writing ${table}: ${describeResponse(retried)}`).toBe(200);
      const now = await whatUsersSee(fixture);
      expect(now).not.toEqual(seen);
      // And all of it was stored: an app that never saw it in memory reads the same.
      expect(await whatUsersSee(fixture, fromOther)).toEqual(now);
    }
  });
});
