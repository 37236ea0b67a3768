import fc from 'fast-check';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Database } from '../src/db/schema.js';
import { recordExposures } from '../src/features/experiments/cells.js';
import { experimentRuntimeOf, experimentScope } from '../src/features/experiments/experiments.runtime.js';
import { type ExposureRow, experimentsStore } from '../src/features/experiments/experiments.store.js';
import { ExposureBatch } from '../src/features/experiments/exposure-batch.js';
import { ExposureLogs } from '../src/features/experiments/exposure-log.js';
import { type CellsSnapshot, recountedCells, storedCells } from './support/experiments.js';
import { createAgent } from './support/fixtures.js';
import { injectAs, okJson, type OtherApp, startOtherApp, startTestApp, type TestApp } from './support/test-app.js';

// Issue 20: exposures are segments in the database and, per process, a map of which units have
// one (src/features/experiments/exposure-log.ts). What one process records, every other sees
// before it records; what a transaction rolls back, no process keeps.

let testApp: TestApp;
let other: OtherApp;
beforeAll(async () => {
  testApp = await startTestApp();
  other = await startOtherApp(testApp);
});
afterAll(async () => {
  await other.close();
  await testApp.close();
});

async function agentWithBranch() {
  const { agentId, mainBranchId, versionId } = await createAgent(testApp);
  const branch = okJson<{ created_branch_id: string }>(
    await injectAs(testApp, 'POST', `/v1/convai/agents/${agentId}/branches`, testApp.keys.admin, { parent_version_id: versionId, name: 'B', description: '' }),
  );
  return { agentId, mainBranchId, branchId: branch.created_branch_id };
}

/** POST …/exposures through one app or the other (same store, as two processes). */
async function report(through: 'first' | 'second', agentId: string, exposures: { conversation_id: string; branch_id: string }[]) {
  const url = `/v1/convai/agents/${agentId}/exposures`;
  if (through === 'first') return okJson<{ recorded: number; already_recorded: number }>(await injectAs(testApp, 'POST', url, testApp.keys.admin, { exposures }));
  const response = await fetch(`${other.url}${url}`, { method: 'POST', headers: { 'xi-api-key': testApp.keys.admin, 'content-type': 'application/json' }, body: JSON.stringify({ exposures }) });
  expect(response.status).toBe(200);
  return (await response.json()) as { recorded: number; already_recorded: number };
}

const units = async (agentId: string) => (await experimentsStore(testApp.store.db).exposureRows(agentId)).map((row) => `${row.unit_id}:${row.branch_id}`).sort();

describe('the exposure log across processes', () => {
  it('a unit recorded by one process is already recorded for the other, both ways, and kept as the first said', async () => {
    const { agentId, mainBranchId, branchId } = await agentWithBranch();
    expect(await report('first', agentId, [{ conversation_id: 'u1', branch_id: mainBranchId }])).toEqual({ recorded: 1, already_recorded: 0 });
    expect(await report('second', agentId, [{ conversation_id: 'u1', branch_id: branchId }, { conversation_id: 'u2', branch_id: branchId }])).toEqual({ recorded: 1, already_recorded: 1 });
    expect(await report('first', agentId, [{ conversation_id: 'u2', branch_id: mainBranchId }, { conversation_id: 'u3', branch_id: mainBranchId }])).toEqual({ recorded: 1, already_recorded: 1 });
    expect(await units(agentId)).toEqual([`u1:${mainBranchId}`, `u2:${branchId}`, `u3:${mainBranchId}`]);
    expect(await storedCells(testApp.store, agentId)).toEqual(await recountedCells(testApp.store, agentId));
  });

  it('concurrent reports of overlapping units through both processes: each unit once, cells equal a recount', async () => {
    const { agentId, mainBranchId, branchId } = await agentWithBranch();
    const posts = Array.from({ length: 24 }, (_, i) =>
      report(i % 2 === 0 ? 'first' : 'second', agentId, Array.from({ length: 40 }, (__, j) => ({ conversation_id: `c${(i * 17 + j) % 200}`, branch_id: i % 3 === 0 ? branchId : mainBranchId }))),
    );
    const results = await Promise.all(posts);
    const recorded = results.reduce((sum, result) => sum + result.recorded, 0);
    const rows = await units(agentId);
    expect(new Set(rows.map((row) => row.split(':')[0])).size).toBe(rows.length);
    expect(rows.length).toBe(recorded);
    expect(results.reduce((sum, result) => sum + result.recorded + result.already_recorded, 0)).toBe(24 * 40);
    expect(await storedCells(testApp.store, agentId)).toEqual(await recountedCells(testApp.store, agentId));
  });

  it('a write that rolls back leaves no unit behind: the same unit is recorded by the next write', async () => {
    const { agentId, mainBranchId } = await agentWithBranch();
    const deployment = await testApp.store.db.selectFrom('deployments').select('id').where('agent_id', '=', agentId).where('is_active', '=', 1).executeTakeFirstOrThrow();
    const row: ExposureRow = { agent_id: agentId, unit_id: 'rolled', branch_id: mainBranchId, version_id: 'v', deployment_id: deployment.id, probability: 1, exposed_at_ms: Date.now(), source: 'reported' };
    const { context } = testApp.app;
    await expect(
      context.write(async (scope) => {
        expect(await recordExposures(experimentScope(context, scope), agentId, [row])).toHaveLength(1);
        throw new Error('rolled back on purpose');
      }),
    ).rejects.toThrow('rolled back on purpose');
    expect(await units(agentId)).toEqual([]);
    expect(await context.write((scope) => recordExposures(experimentScope(context, scope), agentId, [row]))).toHaveLength(1);
    expect(await units(agentId)).toEqual([`rolled:${mainBranchId}`]);
    expect(await storedCells(testApp.store, agentId)).toEqual(await recountedCells(testApp.store, agentId));
  });

  it('concurrent writes of one agent in one process, some rolling back: what committed is recorded once, what rolled back is recorded by the next', async () => {
    // A write adds its units to the process's log at once; one that rolls back takes them away, and
    // no other write of the process sees them in between (on PostgreSQL these run concurrently).
    const { agentId, mainBranchId } = await agentWithBranch();
    const deployment = await testApp.store.db.selectFrom('deployments').select('id').where('agent_id', '=', agentId).where('is_active', '=', 1).executeTakeFirstOrThrow();
    const rowOf = (unit: string): ExposureRow => ({ agent_id: agentId, unit_id: unit, branch_id: mainBranchId, version_id: 'v', deployment_id: deployment.id, probability: 1, exposed_at_ms: Date.now(), source: 'reported' });
    const { context } = testApp.app;
    for (const seed of [1, 2, 3]) {
      const random = fc.sample(fc.array(fc.tuple(fc.uniqueArray(fc.integer({ min: 0, max: 59 }), { minLength: 1, maxLength: 12 }), fc.boolean()), { minLength: 24, maxLength: 24 }), { seed, numRuns: 1 })[0];
      const committed = new Set<string>();
      await Promise.all(
        random.map(async ([numbers, rollsBack]) => {
          const rows = numbers.map((number) => rowOf(`s${seed}-${number}`));
          const write = context.write(async (scope) => {
            const added = await recordExposures(experimentScope(context, scope), agentId, rows);
            if (rollsBack) throw new Error('rolled back on purpose');
            return added;
          });
          if (rollsBack) await expect(write).rejects.toThrow('rolled back on purpose');
          else for (const added of await write) committed.add(added.unit_id);
        }),
      );
      const stored = (await units(agentId)).filter((unit) => unit.startsWith(`s${seed}-`)).map((unit) => unit.split(':')[0]);
      expect(stored.sort()).toEqual([...committed].sort());
      // Every unit again: exactly those no committed write recorded are recorded now.
      const all = Array.from({ length: 60 }, (_, number) => `s${seed}-${number}`);
      const added = await context.write((scope) => recordExposures(experimentScope(context, scope), agentId, all.map(rowOf)));
      expect(added.map((row) => row.unit_id).sort()).toEqual(all.filter((unit) => !committed.has(unit)).sort());
    }
    expect(await storedCells(testApp.store, agentId)).toEqual(await recountedCells(testApp.store, agentId));
  });

  it("no other write of the process opens an agent's log until the write that added to it has committed or rolled back", async () => {
    // The window is between the database's end of a transaction (the agent's lock is free) and the
    // callbacks that tell the log: here the callbacks are held back by hand.
    const { agentId, mainBranchId } = await agentWithBranch();
    const deployment = await testApp.store.db.selectFrom('deployments').select('id').where('agent_id', '=', agentId).where('is_active', '=', 1).executeTakeFirstOrThrow();
    const row: ExposureRow = { agent_id: agentId, unit_id: 'held', branch_id: mainBranchId, version_id: 'v', deployment_id: deployment.id, probability: 1, exposed_at_ms: Date.now(), source: 'reported' };
    const logs = new ExposureLogs({ retentionDays: 90, now: () => Date.now() });
    const heldBack: (() => void)[] = [];
    const scopeOf = (trx: Kysely<Database>) => ({ trx, afterCommit: () => {}, afterRollback: (callback: () => void) => heldBack.push(callback) });
    await expect(
      testApp.store.db.transaction().execute(async (trx) => {
        const exposures = await logs.open(scopeOf(trx), agentId);
        expect((await exposures.add(trx, agentId, ExposureBatch.fromRows([row]))).added).toEqual([0]);
        throw new Error('rolled back on purpose');
      }),
    ).rejects.toThrow('rolled back on purpose');
    let seen: string | undefined = 'not yet';
    const next = testApp.store.db.transaction().execute(async (trx) => {
      const exposures = await logs.open({ trx, afterCommit: () => {}, afterRollback: () => {} }, agentId);
      seen = exposures.find('held')?.branch_id;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen).toBe('not yet');
    for (const callback of heldBack) callback();
    await next;
    expect(seen).toBeUndefined();
  });

  it("keeps an agent's log whose map alone is past the memory budget, rather than read it back for every write", async () => {
    const { agentId, mainBranchId } = await agentWithBranch();
    const deployment = await testApp.store.db.selectFrom('deployments').select('id').where('agent_id', '=', agentId).where('is_active', '=', 1).executeTakeFirstOrThrow();
    const logs = new ExposureLogs({ retentionDays: 90, now: () => Date.now(), maxBytes: 1_024 });
    const write = async (units: string[]) => {
      const committed: (() => void)[] = [];
      const added = await testApp.store.db.transaction().execute(async (trx) => {
        const exposures = await logs.open({ trx, afterCommit: (callback) => committed.push(callback), afterRollback: () => {} }, agentId);
        const rows = units.map((unit): ExposureRow => ({ agent_id: agentId, unit_id: unit, branch_id: mainBranchId, version_id: 'v', deployment_id: deployment.id, probability: 1, exposed_at_ms: Date.now(), source: 'reported' }));
        const result = await exposures.add(trx, agentId, ExposureBatch.fromRows(rows));
        await exposures.save(trx, agentId);
        return result.added.length;
      });
      for (const callback of committed) callback();
      return added;
    };
    expect(await write(Array.from({ length: 300 }, (_, i) => `big-${i}`))).toBe(300);
    // Kept, past the budget (refused, it was 0: every open read all the segments back).
    expect(logs.bytes).toBeGreaterThan(1_024);
    expect(await write(['big-0', 'big-300'])).toBe(1);
    expect(logs.bytes).toBeGreaterThan(1_024);
  });

  it('a process that starts later reads the log back from the segments (3,500 units)', async () => {
    const { agentId, mainBranchId } = await agentWithBranch();
    for (let start = 0; start < 3_500; start += 500) {
      await report('first', agentId, Array.from({ length: 500 }, (_, i) => ({ conversation_id: `late-${start + i}`, branch_id: mainBranchId })));
    }
    const late = await startOtherApp(testApp);
    try {
      const url = `${late.url}/v1/convai/agents/${agentId}/exposures`;
      const body = { exposures: [{ conversation_id: 'late-0', branch_id: mainBranchId }, { conversation_id: 'late-3499', branch_id: mainBranchId }, { conversation_id: 'late-new', branch_id: mainBranchId }] };
      const response = await fetch(url, { method: 'POST', headers: { 'xi-api-key': testApp.keys.admin, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(await response.json()).toEqual({ recorded: 1, already_recorded: 2 });
    } finally {
      await late.close();
    }
  });
});

describe('values that wait for their exposure (the count of unexposed value units, migration 0014)', () => {
  const DAY = 86_400_000;
  const header = async (agentId: string) =>
    Number((await testApp.store.db.selectFrom('exposure_logs').select('unexposed_value_units').where('agent_id', '=', agentId).executeTakeFirst())?.unexposed_value_units ?? -1);
  /**
   * Units with a value and no exposure at all, from the raw rows: those a new exposure would not
   * look up unless counted (a unit whose exposure expired is looked up when exposed again).
   */
  async function neverExposedValueUnits(agentId: string): Promise<number> {
    const exposed = new Set((await experimentsStore(testApp.store.db).exposureRows(agentId)).map((row) => row.unit_id));
    const valued = await experimentsStore(testApp.store.db).unitsWithValues(agentId);
    return valued.filter((unit) => !exposed.has(unit)).length;
  }

  it('outcomes that follow their exposures keep the count at 0: new exposures look nothing up', async () => {
    const { agentId, mainBranchId } = await agentWithBranch();
    okJson(await injectAs(testApp, 'POST', `/v1/convai/agents/${agentId}/metrics`, testApp.keys.admin, { metric_key: 'm', name: 'm', kind: 'mean', higher_is_better: true, source: { type: 'event' } }));
    await report('first', agentId, [{ conversation_id: 'a', branch_id: mainBranchId }]);
    okJson(await injectAs(testApp, 'POST', `/v1/convai/agents/${agentId}/outcomes`, testApp.keys.admin, { events: [{ conversation_id: 'a', metric_key: 'm', value: 1 }] }));
    await report('second', agentId, [{ conversation_id: 'b', branch_id: mainBranchId }]);
    expect(await header(agentId)).toBe(0);
    okJson(await injectAs(testApp, 'POST', `/v1/convai/agents/${agentId}/outcomes`, testApp.keys.admin, { events: [{ conversation_id: 'early', metric_key: 'm', value: 1 }] }));
    expect(await header(agentId)).toBe(1);
    await report('second', agentId, [{ conversation_id: 'early', branch_id: mainBranchId }]);
    expect(await header(agentId)).toBe(0);
    expect(await storedCells(testApp.store, agentId)).toEqual(await recountedCells(testApp.store, agentId));
  });

  it('a unit whose exposure expired is looked up when exposed again (the count at 0 or not), and was never counted: the count stays for the others', async () => {
    const { agentId, mainBranchId } = await agentWithBranch();
    const deployment = await testApp.store.db.selectFrom('deployments').select('id').where('agent_id', '=', agentId).where('is_active', '=', 1).executeTakeFirstOrThrow();
    const { recordValues } = await import('../src/features/experiments/cells.js');
    const { context } = testApp.app;
    const logs = experimentRuntimeOf(context).exposures;
    const nowMs = Date.now();
    const expose = (unit: string, daysAgo: number) =>
      context.write((scope) =>
        recordExposures(experimentScope(context, scope), agentId, [
          { agent_id: agentId, unit_id: unit, branch_id: mainBranchId, version_id: 'v', deployment_id: deployment.id, probability: 1, exposed_at_ms: nowMs - daysAgo * DAY, source: 'reported' },
        ]),
      );
    const value = (unit: string) => context.write((scope) => recordValues(experimentScope(context, scope), agentId, [{ unitId: unit, metricKey: 'm', value: 3, occurredAtMs: nowMs, idempotencyKey: null }], nowMs));
    for (const unit of ['alone', 'renewed']) {
      await expose(unit, 50);
      await value(unit);
    }
    expect(await header(agentId)).toBe(0);
    try {
      // Retention shortened: the first exposures (and the values in their cells) have expired.
      logs.retentionDays = 30;
      await expose('alone', 0);
      await value('waiting');
      expect(await header(agentId)).toBe(1);
      await expose('renewed', 0);
      expect(await header(agentId), '"renewed" was not counted: it does not leave the count').toBe(1);
      await expose('waiting', 0);
      expect(await header(agentId)).toBe(0);
      const today = Math.floor(nowMs / DAY);
      const cells = await storedCells(testApp.store, agentId);
      expect(cells.exposure.filter((cell) => cell.day === today).map(({ exposures, units_with_outcomes }) => ({ exposures, units_with_outcomes }))).toEqual([{ exposures: 3, units_with_outcomes: 3 }]);
      expect(cells.outcome.filter((cell) => cell.day === today).map(({ n, sum }) => ({ n, sum }))).toEqual([{ n: 3, sum: 9 }]);
    } finally {
      logs.retentionDays = 90;
    }
  });

  // Generated: exposures of today, 50 and 100 days ago (expired at once, so that later ones renew
  // them), values before and after them, a metric's deletion, retention, and once retention
  // shortened to 30 days (exposures live until then expire, values and all), through two
  // processes on one store. After every step the cells of live days equal a recount, and the
  // count covers every unit with a value and no exposure (a skipped lookup would miss its values).
  for (const seed of [1, 2, 3, 4]) {
    it(`seed ${seed}: cells equal a recount after every step; the count covers every unexposed value unit`, async () => {
      const { agentId, mainBranchId, branchId } = await agentWithBranch();
      const deployment = await testApp.store.db.selectFrom('deployments').select('id').where('agent_id', '=', agentId).where('is_active', '=', 1).executeTakeFirstOrThrow();
      for (const key of ['m1', 'm2']) {
        okJson(await injectAs(testApp, 'POST', `/v1/convai/agents/${agentId}/metrics`, testApp.keys.admin, { metric_key: key, name: key, kind: 'mean', higher_is_better: true, source: { type: 'event' } }));
      }
      const { recordValues, dropExpiredDays } = await import('../src/features/experiments/cells.js');
      let state = seed * 2_654_435_761;
      const random = () => {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        return (state >>> 0) / 4_294_967_296;
      };
      const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
      const pool = Array.from({ length: 10 }, (_, i) => `p${i}`);
      const some = () => pool.filter(() => random() < 0.35);
      const steps: string[] = [];
      const logs = [testApp, other].map((app) => experimentRuntimeOf(app.app.context).exposures);
      let retentionDays = 90;
      try {
      for (let step = 0; step < 50; step++) {
        const context = pick([testApp.app.context, other.app.context]);
        const nowMs = Date.now();
        const kind = pick(['expose', 'expose', 'expose-old', 'values', 'values', 'delete-metric', 'retention', 'shorten-retention'] as const);
        steps.push(`${kind}@${context === testApp.app.context ? 1 : 2}`);
        if (kind === 'shorten-retention') {
          retentionDays = 30;
          for (const log of logs) log.retentionDays = retentionDays;
        } else if (kind === 'expose' || kind === 'expose-old') {
          const rows = some().map((unit): ExposureRow => ({
            agent_id: agentId,
            unit_id: unit,
            branch_id: pick([mainBranchId, branchId]),
            version_id: 'v',
            deployment_id: deployment.id,
            probability: 0.5,
            exposed_at_ms: nowMs - (kind === 'expose-old' ? pick([50, 100]) : 0) * DAY,
            source: 'reported',
          }));
          await context.write((scope) => recordExposures(experimentScope(context, scope), agentId, rows));
        } else if (kind === 'values') {
          const events = some().map((unit) => ({ unitId: unit, metricKey: pick(['m1', 'm2']), value: Math.floor(random() * 5), occurredAtMs: nowMs - Math.floor(random() * 1_000), idempotencyKey: null }));
          await context.write((scope) => recordValues(experimentScope(context, scope), agentId, events, nowMs));
        } else if (kind === 'delete-metric') {
          const metric = pick(['m1', 'm2']);
          await injectAs(testApp, 'DELETE', `/v1/convai/agents/${agentId}/metrics/${metric}`, testApp.keys.admin);
          okJson(await injectAs(testApp, 'POST', `/v1/convai/agents/${agentId}/metrics`, testApp.keys.admin, { metric_key: metric, name: metric, kind: 'mean', higher_is_better: true, source: { type: 'event' } }));
        } else {
          await context.write((scope) => dropExpiredDays(experimentScope(context, scope), retentionDays, nowMs));
        }
        const where = `seed ${seed}, steps ${steps.join(' ')}`;
        // Cells of expired days are left as they were until retention drops them (values that come later join no expired exposure).
        const minDay = Math.floor(nowMs / DAY) - retentionDays;
        const live = (cells: CellsSnapshot): CellsSnapshot => ({ outcome: cells.outcome.filter((cell) => cell.day >= minDay), exposure: cells.exposure.filter((cell) => cell.day >= minDay) });
        expect(live(await storedCells(testApp.store, agentId)), where).toEqual(live(await recountedCells(testApp.store, agentId)));
        const count = await header(agentId);
        if (count >= 0) expect(count, where).toBeGreaterThanOrEqual(await neverExposedValueUnits(agentId));
      }
      } finally {
        for (const log of logs) log.retentionDays = 90;
      }
    });
  }
});

/** No lone surrogate (UTF-8 cannot carry one: a unit is its UTF-8 bytes). */
const wellFormed = (text: string) => !/[\ud800-\udfff]/.test(text.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''));

describe('segments written from the batch bytes', () => {
  // The writer copies each unit's UTF-8 bytes into the segment's JSON text itself (escaping by
  // JSON.stringify the units that need it): every text must read back as it was.
  it('read back exactly, whatever the unit text (quotes, backslashes, control characters, any script)', async () => {
    const { agentId, mainBranchId } = await agentWithBranch();
    const deployment = await testApp.store.db.selectFrom('deployments').select('id').where('agent_id', '=', agentId).where('is_active', '=', 1).executeTakeFirstOrThrow();
    const { context } = testApp.app;
    let written = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(
          fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 10 }), fc.constantFrom('"', '\\', '\n', '\u0000', '\u2028', 'a"b\\c')),
          { minLength: 1, maxLength: 40 },
        ),
        // Times as they come, and the ones where writing digits goes wrong: eight-digit parts, zeros inside.
        fc.oneof(
          fc.integer({ min: 0, max: 2 ** 45 }),
          fc.integer({ min: 0, max: 2 ** 45 }).map((ms) => ms - (ms % 100_000_000)),
          fc.integer({ min: 0, max: 2 ** 45 }).map((ms) => ms - (ms % 100_000_000) + 7),
          fc.constantFrom(0, 9, 10, 99_999_999, 100_000_000, 100_000_001, 2 ** 31 - 1, 2 ** 31, 1_700_000_000_000),
        ),
        async (candidates, atMs) => {
          const units = candidates.filter(wellFormed).map((unit) => `${written}:${unit}`);
          written++;
          const rows = units.map((unit): ExposureRow => ({ agent_id: agentId, unit_id: unit, branch_id: mainBranchId, version_id: 'v', deployment_id: deployment.id, probability: 1, exposed_at_ms: atMs, source: 'reported' }));
          expect(await context.write((scope) => recordExposures(experimentScope(context, scope), agentId, rows))).toHaveLength(units.length);
          const stored = (await experimentsStore(testApp.store.db).exposureRows(agentId)).filter((row) => units.includes(row.unit_id));
          expect(stored.map((row) => [row.unit_id, row.exposed_at_ms])).toEqual(units.map((unit) => [unit, atMs]));
        },
      ),
      { numRuns: 40 },
    );
  });
});
