import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { UnitMap } from '../src/domain/unit-map.js';
import type { ExposureBatch } from '../src/features/experiments/exposure-batch.js';
import { ExposureRecorder } from '../src/features/experiments/exposure-recorder.js';
import { newExperimentCounters } from '../src/features/experiments/experiment-counters.js';
import { type ExposureRow, experimentsStore } from '../src/features/experiments/experiments.store.js';
import { experimentRuntimeOf } from '../src/features/experiments/experiments.runtime.js';
import { openStore } from '../src/db/connect.js';
import { recountedCells, storedCells } from './support/experiments.js';
import { createAgent } from './support/fixtures.js';
import { injectAs, listen, okJson, startOtherApp, startTestApp, type TestApp } from './support/test-app.js';
import { buildApp } from '../src/app.js';

// Issue 20: the routed read records who was routed where, buffered, without slowing the read.

describe('ExposureRecorder', () => {
  const row = (unit: string): [string, string, string, string, string, number] => ['agent_1', unit, 'agtbrch_b', 'agtvrsn_v', 'agtdpl_d', 0.5];
  /** A written batch as rows, each checked to carry its unit's key (the writer hashes nothing again). */
  const rowsOf = (batch: ExposureBatch): ExposureRow[] =>
    Array.from({ length: batch.length }, (_, index) => {
      const key = UnitMap.key(batch.unitId(index));
      expect([batch.keys[2 * index] >>> 0, batch.keys[2 * index + 1] >>> 0]).toEqual([key[0], key[1]]);
      return batch.row(index);
    });

  it('writes every read in batches, in order; a full buffer drops and counts, never blocks', async () => {
    const written: ExposureRow[][] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const counters = newExperimentCounters();
    const recorder = new ExposureRecorder(
      async (batch) => {
        await gate;
        written.push(rowsOf(batch));
        return batch.length;
      },
      counters,
      () => 1_000,
      { flushIntervalMs: 5, batchSize: 3, maxBuffered: 5 },
    );
    // A unit read again is buffered again: the agent's exposure log keeps its first exposure.
    recorder.record(...row('u1'));
    recorder.record(...row('u1'));
    recorder.record(...row('u2'));
    expect(recorder.pending).toBe(3);
    recorder.record(...row('u3'));
    recorder.record(...row('u4'));
    recorder.record(...row('u5'));
    // 5 buffered at most.
    expect(recorder.pending).toBe(5);
    expect(counters.exposuresDropped).toBe(1);
    // The batch of 3 was taken when it filled; its write waits on the gate, and the buffer has room again.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(recorder.pending).toBe(2);
    for (let i = 6; i <= 9; i++) recorder.record(...row(`u${i}`));
    expect(recorder.pending).toBe(5);
    expect(counters.exposuresDropped).toBe(2);
    release();
    await recorder.close();
    expect(written.flat().map((exposure) => exposure.unit_id)).toEqual(['u1', 'u1', 'u2', 'u3', 'u4', 'u6', 'u7', 'u8']);
    expect(counters.exposuresRecorded).toBe(8);
    expect(written.every((batch) => batch.length <= 3)).toBe(true);
    // Closed: nothing more is taken.
    recorder.record(...row('late'));
    expect(recorder.pending).toBe(0);
    expect(counters.exposuresDropped).toBe(3);
  });

  it('buffering 250,000 reads and writing them stays linear', { timeout: 60_000 }, async () => {
    const counters = newExperimentCounters();
    const recorder = new ExposureRecorder(async (batch) => batch.length, counters, () => 0, { maxBuffered: 1_000_000, flushIntervalMs: 1_000, batchSize: 1_000_000 });
    for (let i = 0; i < 250_000; i++) recorder.record(...row(`conv_${i}`));
    expect(recorder.pending).toBe(250_000);
    await recorder.close();
    expect(counters.exposuresRecorded).toBe(250_000);
  });

  it('hands back every unit exactly as read, whatever its text, across partial batches and buffer growth', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.oneof(fc.string({ unit: 'grapheme-ascii', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'grapheme-ascii', minLength: 900, maxLength: 1_000 })), { maxLength: 300 }),
        fc.integer({ min: 1, max: 50 }),
        async (units, batchSize) => {
          const written: ExposureRow[] = [];
          // Each write records more, so a take leaves units behind that move to the front.
          let next = 0;
          const recorder: ExposureRecorder = new ExposureRecorder(
            async (batch) => {
              written.push(...rowsOf(batch));
              for (let more = 0; more < 3 && next < units.length; more++) recorder.record(...row(units[next++]));
              return batch.length;
            },
            newExperimentCounters(),
            () => 0,
            { batchSize, flushIntervalMs: 1, maxBuffered: 1_000_000 },
          );
          for (; next < units.length / 2; next++) recorder.record(...row(units[next]));
          while (recorder.pending > 0 || next < units.length) {
            if (recorder.pending === 0) recorder.record(...row(units[next++]));
            await recorder.flush();
          }
          await recorder.close();
          expect(written.map((exposure) => exposure.unit_id)).toEqual(units);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a batch the database refuses is counted, and its units are recorded again on their next read', async () => {
    const counters = newExperimentCounters();
    let fail = true;
    const written: string[] = [];
    const recorder = new ExposureRecorder(
      async (batch) => {
        if (fail) throw new Error('down');
        written.push(...rowsOf(batch).map((one) => one.unit_id));
        return batch.length;
      },
      counters,
      () => 0,
      { flushIntervalMs: 1 },
    );
    recorder.record(...row('a'));
    await recorder.flush();
    expect(counters.exposureFlushFailures).toBe(1);
    fail = false;
    recorder.record(...row('a'));
    await recorder.close();
    expect(written).toEqual(['a']);
  });
});

describe('routed reads record exposures', () => {
  let testApp: TestApp;
  let baseUrl: string;
  beforeAll(async () => {
    testApp = await startTestApp({ config: { recordExposures: true } });
    baseUrl = await listen(testApp);
  });
  afterAll(() => testApp.close());

  async function splitAgent() {
    const agent = await createAgent(testApp);
    const branch = okJson<{ created_branch_id: string; created_version_id: string }>(
      await injectAs(testApp, 'POST', `/v1/convai/agents/${agent.agentId}/branches`, testApp.keys.admin, { parent_version_id: agent.versionId, name: 'B', description: '' }),
    );
    const split = (branchId: string, share: number) => ({ branch_id: branchId, deployment_strategy: { type: 'percentage', traffic_percentage: share } });
    const deployment = okJson<{ deployment_id?: string }>(
      await injectAs(testApp, 'POST', `/v1/convai/agents/${agent.agentId}/deployments`, testApp.keys.admin, {
        deployment_request: { requests: [split(agent.mainBranchId, 70), split(branch.created_branch_id, 30)] },
      }),
    );
    return { ...agent, branchId: branch.created_branch_id, branchVersionId: branch.created_version_id, deployment };
  }

  const exposuresOf = async (agentId: string) =>
    (await experimentsStore(testApp.store.db).exposureRows(agentId)).sort((a, b) => (a.unit_id < b.unit_id ? -1 : a.unit_id > b.unit_id ? 1 : 0));

  it('fast path and full route: the first routed read of a conversation is its exposure, with the branch served and its share', async () => {
    const agent = await splitAgent();
    const { recorder } = experimentRuntimeOf(testApp.app.context);
    const read = async (query: string) => {
      const response = await fetch(`${baseUrl}/v1/convai/agents/${agent.agentId}?${query}`, { headers: { 'xi-api-key': testApp.keys.viewer } });
      expect(response.status).toBe(200);
      return (await response.json()) as { branch_id: string; version_id: string };
    };
    const served = new Map<string, { branch_id: string; version_id: string }>();
    const fastBefore = testApp.app.fastPath.served;
    for (let i = 0; i < 40; i++) served.set(`conv-${i}`, await read(`conversation_id=conv-${i}`));
    // Read again: already recorded, nothing new.
    for (let i = 0; i < 40; i++) await read(`conversation_id=conv-${i}`);
    served.set('key-1', await read('routing_key=key-1'));
    expect(testApp.app.fastPath.served, 'some reads came from the fast path').toBeGreaterThan(fastBefore);
    await recorder.flush();
    const rows = await exposuresOf(agent.agentId);
    expect(rows.map((exposure) => exposure.unit_id).sort()).toEqual([...served.keys()].sort());
    const active = await testApp.store.db.selectFrom('deployments').select('id').where('agent_id', '=', agent.agentId).where('is_active', '=', 1).executeTakeFirstOrThrow();
    for (const exposure of rows) {
      const answer = served.get(exposure.unit_id)!;
      expect([exposure.branch_id, exposure.version_id]).toEqual([answer.branch_id, answer.version_id]);
      expect(exposure.deployment_id).toBe(active.id);
      expect(exposure.probability).toBe(exposure.branch_id === agent.branchId ? 0.3 : 0.7);
      expect(exposure.source).toBe('routed');
    }
    expect(new Set(rows.map((exposure) => exposure.branch_id)).size).toBe(2);
    expect(await storedCells(testApp.store, agent.agentId)).toEqual(await recountedCells(testApp.store, agent.agentId));
  });

  // The routed read buffers every read; the agent's exposure log keeps a unit's first exposure, in
  // the order batches commit, whichever process wrote them and whatever branch a later read got.
  it('generated reads of a few units through two processes, redeployed between them: each unit once, the first written wins', async () => {
    // Batches are written when the test says only (a timer's write between two steps would commit
    // reads before the model does).
    const config = { recordExposures: true, exposureFlushIntervalMs: 3_600_000 };
    const first = await startTestApp({ config });
    const firstUrl = await listen(first);
    const other = await startOtherApp(first, { config });
    try {
      const step = fc.oneof(
        { arbitrary: fc.record({ kind: fc.constant('read' as const), through: fc.integer({ min: 0, max: 1 }), unit: fc.integer({ min: 0, max: 5 }) }), weight: 6 },
        { arbitrary: fc.record({ kind: fc.constant('flush' as const), through: fc.integer({ min: 0, max: 1 }) }), weight: 2 },
        { arbitrary: fc.record({ kind: fc.constant('redeploy' as const) }), weight: 1 },
      );
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 30 }), async (steps) => {
          const agent = await createAgent(first);
          const { created_branch_id: branchId } = okJson<{ created_branch_id: string }>(
            await injectAs(first, 'POST', `/v1/convai/agents/${agent.agentId}/branches`, first.keys.admin, { parent_version_id: agent.versionId, name: 'B', description: '' }),
          );
          const apps = [
            { url: firstUrl, recorder: experimentRuntimeOf(first.app.context).recorder },
            { url: other.url, recorder: experimentRuntimeOf(other.app.context).recorder },
          ];
          // The model: reads buffered per process, units as their batches commit.
          const pending: [string, string][][] = [[], []];
          const firstExposure = new Map<string, string>();
          const flush = async (through: number) => {
            await apps[through].recorder.flush();
            for (const [unit, branch] of pending[through]) if (!firstExposure.has(unit)) firstExposure.set(unit, branch);
            pending[through] = [];
          };
          let toBranch = true;
          for (const one of steps) {
            if (one.kind === 'read') {
              const unit = `${agent.agentId}-u${one.unit}`;
              const response = await fetch(`${apps[one.through].url}/v1/convai/agents/${agent.agentId}?conversation_id=${unit}`, { headers: { 'xi-api-key': first.keys.admin } });
              expect(response.status).toBe(200);
              pending[one.through].push([unit, ((await response.json()) as { branch_id: string }).branch_id]);
            } else if (one.kind === 'flush') await flush(one.through);
            else {
              const to = toBranch ? branchId : agent.mainBranchId;
              toBranch = !toBranch;
              okJson(
                await injectAs(first, 'POST', `/v1/convai/agents/${agent.agentId}/deployments`, first.keys.admin, {
                  deployment_request: { requests: [{ branch_id: to, deployment_strategy: { type: 'percentage', traffic_percentage: 100 } }] },
                }),
              );
            }
          }
          await flush(0);
          await flush(1);
          const stored = (await experimentsStore(first.store.db).exposureRows(agent.agentId)).map((exposure) => [exposure.unit_id, exposure.branch_id]);
          const byUnit = ([a]: string[], [b]: string[]) => (a < b ? -1 : a > b ? 1 : 0);
          expect(stored.sort(byUnit)).toEqual([...firstExposure].sort(byUnit));
          expect(await storedCells(first.store, agent.agentId)).toEqual(await recountedCells(first.store, agent.agentId));
        }),
        { numRuns: 15 },
      );
    } finally {
      await other.close();
      await first.close();
    }
  });

  it('a read refused (another workspace, pinned to a branch) records nothing', async () => {
    const agent = await splitAgent();
    const { recorder } = experimentRuntimeOf(testApp.app.context);
    expect((await fetch(`${baseUrl}/v1/convai/agents/${agent.agentId}?conversation_id=x1`, { headers: { 'xi-api-key': testApp.foreignKey } })).status).toBe(404);
    expect((await fetch(`${baseUrl}/v1/convai/agents/${agent.agentId}?conversation_id=x2&branch_id=${agent.branchId}`, { headers: { 'xi-api-key': testApp.keys.admin } })).status).toBe(200);
    await recorder.flush();
    expect(await exposuresOf(agent.agentId)).toEqual([]);
  });

  it('closing the app (SIGTERM) writes what is buffered', async () => {
    const agent = await splitAgent();
    // A second app on the same database, whose buffer is still full when it closes.
    const store = await openStore(testApp.database.options);
    const app = await buildApp({ config: { bodyLimitBytes: 2 * 1024 * 1024, logLevel: 'silent', exposureFlushIntervalMs: 1_000 }, store, logger: false });
    const url = await app.server.listen({ host: '127.0.0.1', port: 0 });
    const reads = Array.from({ length: 25 }, (_, i) => fetch(`${url}/v1/convai/agents/${agent.agentId}?conversation_id=closing-${i}`, { headers: { 'xi-api-key': testApp.keys.admin } }));
    for (const response of await Promise.all(reads)) expect(response.status).toBe(200);
    // Within the second the batch waits (if this machine took longer, the check below proves less).
    expect(experimentRuntimeOf(app.context).recorder.pending).toBe(25);
    await app.server.close();
    await store.close();
    expect((await exposuresOf(agent.agentId)).length).toBe(25);
  });

  it('recording off (RECORD_EXPOSURES=false): routed reads record nothing', async () => {
    const other = await startTestApp({ config: { recordExposures: false } });
    try {
      const agent = await createAgent(other);
      okJson(await injectAs(other, 'GET', `/v1/convai/agents/${agent.agentId}?conversation_id=c`, other.keys.admin));
      await experimentRuntimeOf(other.app.context).recorder.flush();
      expect(await other.store.db.selectFrom('exposure_segments').selectAll().execute()).toEqual([]);
    } finally {
      await other.close();
    }
  });
});
