import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { recordExposures } from '../src/features/experiments/cells.js';
import { experimentScope } from '../src/features/experiments/experiments.runtime.js';
import { type ExposureRow, experimentsStore } from '../src/features/experiments/experiments.store.js';
import { recountedCells, storedCells } from './support/experiments.js';
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
