import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { compiledOnce } from '../src/db/compiled-once.js';
import { createAgent } from './support/fixtures.js';
import { startTestApp, type TestApp } from './support/test-app.js';

// src/db/compiled-once.ts: the exposure flush's statements are compiled once and run with each
// call's parameters, on the root handle and inside transactions alike.

let testApp: TestApp;
beforeAll(async () => {
  testApp = await startTestApp();
});
afterAll(async () => {
  await testApp.close();
});

describe('a query compiled once', () => {
  it("binds each call's parameters (a builder and raw SQL), in a transaction as on the root handle, repeated ones included", async () => {
    const first = await createAgent(testApp);
    const second = await createAgent(testApp);
    const idOf = compiledOnce((db, agentId: string) => db.selectFrom('agents').select('id').where('id', '=', agentId));
    const either = compiledOnce((db, a: string, b: string) => sql<{ id: string }>`select id from agents where id = ${a} or id = ${b} or id = ${a} order by id`.compile(db));
    const { db } = testApp.store;
    expect((await idOf(db, first.agentId)).rows).toEqual([{ id: first.agentId }]);
    expect((await idOf(db, second.agentId)).rows).toEqual([{ id: second.agentId }]);
    expect((await idOf(db, 'agent_unknown')).rows).toEqual([]);
    await db.transaction().execute(async (trx) => {
      expect((await idOf(trx, second.agentId)).rows).toEqual([{ id: second.agentId }]);
      expect((await either(trx, first.agentId, 'agent_unknown')).rows).toEqual([{ id: first.agentId }]);
    });
    expect((await either(db, second.agentId, first.agentId)).rows.map((row) => row.id)).toEqual([first.agentId, second.agentId].sort());
  });

  it('refuses a query that binds a value other than its parameters (it would be bound as the first call’s forever)', async () => {
    const withConstant = compiledOnce((db, agentId: string) => db.selectFrom('agents').select('id').where('id', '=', agentId).where('name', '=', 'fixed'));
    await expect(withConstant(testApp.store.db, 'agent_x')).rejects.toThrow(/not one of its parameters/);
  });
});
