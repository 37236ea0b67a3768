import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { snapshotDatabase } from './support/db-snapshot.js';
import { snapshotDiff } from './support/route-requests.js';
import { samplingTolerance } from './support/sampling.js';
import { injectAs, listen, okJson, startTestApp, type TestApp } from './support/test-app.js';

// The deployment preview (extension, `POST …/deployments/preview`): what a split would move, from
// the real bucket tables, writing nothing; and, through routed reads of many conversations, that a
// deployment made next moves exactly what it said. Raw HTTP: the SDK has no such call.

let testApp: TestApp;
let url: string;
beforeAll(async () => {
  testApp = await startTestApp();
  url = await listen(testApp);
});
afterAll(async () => {
  await testApp?.close();
});

const AGENTS = '/v1/convai/agents';

interface Preview {
  active_deployment_id: string;
  current_traffic_percentage_branch_id_map: Record<string, number>;
  traffic_percentage_branch_id_map: Record<string, number>;
  moved_percentage: number;
  movements: { from_branch_id: string; to_branch_id: string; percentage: number }[];
}

async function agentWithBranches(...names: string[]): Promise<{ agentId: string; branches: Record<string, string> }> {
  const key = testApp.keys.admin;
  const agentId = okJson<{ agent_id: string }>(await injectAs(testApp, 'POST', `${AGENTS}/create`, key, { conversation_config: {}, name: 'Previewed' })).agent_id;
  const head = okJson<{ version_id: string; main_branch_id: string }>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}`, key));
  const branches: Record<string, string> = { main: head.main_branch_id };
  for (const name of names) {
    branches[name] = okJson<{ created_branch_id: string }>(
      await injectAs(testApp, 'POST', `${AGENTS}/${agentId}/branches`, key, { parent_version_id: head.version_id, name, description: '' }),
    ).created_branch_id;
  }
  return { agentId, branches };
}

function split(shares: [string, number][]) {
  return { deployment_request: { requests: shares.map(([branch_id, traffic_percentage]) => ({ branch_id, deployment_strategy: { type: 'percentage', traffic_percentage } })) } };
}

async function preview(agentId: string, shares: [string, number][], key = testApp.keys.admin) {
  const response = await fetch(`${url}${AGENTS}/${agentId}/deployments/preview`, {
    method: 'POST',
    headers: { 'xi-api-key': key, 'content-type': 'application/json' },
    body: JSON.stringify(split(shares)),
  });
  return { status: response.status, body: (await response.json()) as Preview & { detail?: unknown } };
}

async function deploy(agentId: string, shares: [string, number][]) {
  okJson(await injectAs(testApp, 'POST', `${AGENTS}/${agentId}/deployments`, testApp.keys.admin, split(shares)));
}

/** The branch each conversation's routed read is served from, over the server's socket, 50 at a time. */
async function routed(agentId: string, conversations: string[]): Promise<string[]> {
  const read = async (conversation: string) => {
    const response = await fetch(`${url}${AGENTS}/${agentId}?conversation_id=${encodeURIComponent(conversation)}`, { headers: { 'xi-api-key': testApp.keys.admin } });
    expect(response.status).toBe(200);
    return ((await response.json()) as { branch_id: string }).branch_id;
  };
  const branches: string[] = [];
  for (let start = 0; start < conversations.length; start += 50) branches.push(...(await Promise.all(conversations.slice(start, start + 50).map(read))));
  return branches;
}

/** Share (percent) of `conversations` per `from→to` pair that changed branch between two routings. */
function observedMovements(before: string[], after: string[]): Map<string, number> {
  const pairs = new Map<string, number>();
  before.forEach((from, index) => {
    const to = after[index];
    if (from !== to) pairs.set(`${from}→${to}`, (pairs.get(`${from}→${to}`) ?? 0) + 1);
  });
  return new Map([...pairs].map(([pair, count]) => [pair, (count * 100) / before.length]));
}

describe('POST /v1/convai/agents/{agent_id}/deployments/preview', () => {
  it('previews main→canary 10% for a first 90/10 split, writing nothing', async () => {
    const { agentId, branches } = await agentWithBranches('canary');
    const before = await snapshotDatabase(testApp.store.db);
    const { status, body } = await preview(agentId, [[branches.main, 90], [branches.canary, 10]]);
    expect(status).toBe(200);
    const history = okJson<{ results: { id: string; is_active: boolean }[] }>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}/deployments`, testApp.keys.admin));
    expect(body).toEqual({
      active_deployment_id: history.results[0].id,
      current_traffic_percentage_branch_id_map: { [branches.main]: 100 },
      traffic_percentage_branch_id_map: { [branches.main]: 90, [branches.canary]: 10 },
      moved_percentage: 10,
      movements: [{ from_branch_id: branches.main, to_branch_id: branches.canary, percentage: 10 }],
    });
    expect(snapshotDiff(before, await snapshotDatabase(testApp.store.db)), 'the preview wrote nothing').toEqual([]);
    expect(history.results).toHaveLength(1);
  });

  it('moves exactly what it previewed: routed reads of 2,000 conversations before and after the deployment', async () => {
    const { agentId, branches } = await agentWithBranches('b', 'c');
    await deploy(agentId, [[branches.main, 50], [branches.b, 30], [branches.c, 20]]);
    const conversations = Array.from({ length: 2_000 }, (_, index) => `conv_preview_${index}`);
    const routedBefore = await routed(agentId, conversations);

    const next: [string, number][] = [[branches.main, 20], [branches.b, 35], [branches.c, 45]];
    const { body } = await preview(agentId, next);
    // 30 points leave main, 5 join b and 25 join c: the least that can move.
    expect(body.moved_percentage).toBe(30);
    expect(body.movements.reduce((sum, movement) => sum + movement.percentage, 0)).toBeCloseTo(30, 9);
    const predicted = new Map(body.movements.map((movement) => [`${movement.from_branch_id}→${movement.to_branch_id}`, movement.percentage]));

    await deploy(agentId, next);
    const routedAfter = await routed(agentId, conversations);
    const observed = observedMovements(routedBefore, routedAfter);
    // Every move seen is one the preview named, in its share to within sampling error; nothing it
    // named is missing.
    for (const [pair, share] of observed) {
      expect(predicted.has(pair), `${pair} moved but was not previewed`).toBe(true);
      expect(Math.abs(share - predicted.get(pair)!), pair).toBeLessThan(samplingTolerance(predicted.get(pair)!, conversations.length));
    }
    for (const pair of predicted.keys()) expect(observed.has(pair), `${pair} was previewed but nothing moved`).toBe(true);
    const sharesAfter = new Map<string, number>();
    for (const branch of routedAfter) sharesAfter.set(branch, (sharesAfter.get(branch) ?? 0) + 100 / conversations.length);
    for (const [branch, share] of Object.entries(body.traffic_percentage_branch_id_map)) expect(Math.abs((sharesAfter.get(branch) ?? 0) - share), branch).toBeLessThan(samplingTolerance(share, conversations.length));

    // Deployed, the same split moves nothing, and what is live now is what the preview said it would be.
    const again = await preview(agentId, next);
    expect(again.body.moved_percentage).toBe(0);
    expect(again.body.movements).toEqual([]);
    expect(again.body.current_traffic_percentage_branch_id_map).toEqual(body.traffic_percentage_branch_id_map);
  });

  it('refuses what a deployment refuses, at the same place, and writes nothing', async () => {
    const { agentId, branches } = await agentWithBranches('canary');
    const before = await snapshotDatabase(testApp.store.db);
    const short = await preview(agentId, [[branches.main, 90], [branches.canary, 5]]);
    expect(short.status).toBe(422);
    expect(short.body.detail).toEqual([
      { loc: ['body', 'deployment_request', 'requests'], msg: 'percentages total 95; a deployment declares the whole allocation and must total 100', type: 'value_error' },
    ]);
    const unknown = await preview(agentId, [[branches.main, 90], ['agtbrch_nope', 10]]);
    expect(unknown.status).toBe(422);
    expect((unknown.body.detail as { loc: unknown[] }[])[0].loc).toEqual(['body', 'deployment_request', 'requests', 1, 'branch_id']);
    const viewer = await preview(agentId, [[branches.main, 90], [branches.canary, 10]], testApp.keys.viewer);
    expect(viewer.status).toBe(403);
    const foreign = await preview(agentId, [[branches.main, 100]], testApp.foreignKey);
    expect(foreign.status).toBe(404);
    expect(snapshotDiff(before, await snapshotDatabase(testApp.store.db))).toEqual([]);
  });
});

describe('POST /v1/convai/agents/{agent_id}/deployments/{deployment_id}/rollback/preview', () => {
  async function previewRollback(agentId: string, deploymentId: string) {
    const response = await fetch(`${url}${AGENTS}/${agentId}/deployments/${deploymentId}/rollback/preview`, { method: 'POST', headers: { 'xi-api-key': testApp.keys.admin } });
    return { status: response.status, body: (await response.json()) as Preview & { detail?: { code?: string } } };
  }

  it('previews a rollback as it then routes: conversations go back where they were, and only those the preview names move', async () => {
    const { agentId, branches } = await agentWithBranches('b', 'c');
    await deploy(agentId, [[branches.main, 50], [branches.b, 30], [branches.c, 20]]);
    const history = okJson<{ results: { id: string }[] }>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}/deployments`, testApp.keys.admin));
    const conversations = Array.from({ length: 1_000 }, (_, index) => `conv_rollback_${index}`);
    const underFirst = await routed(agentId, conversations);
    await deploy(agentId, [[branches.main, 20], [branches.b, 35], [branches.c, 45]]);
    const beforeRollback = await routed(agentId, conversations);

    const before = await snapshotDatabase(testApp.store.db);
    const { status, body } = await previewRollback(agentId, history.results[0].id);
    expect(status).toBe(200);
    expect(snapshotDiff(before, await snapshotDatabase(testApp.store.db)), 'the preview wrote nothing').toEqual([]);
    expect(body.moved_percentage).toBe(30);
    expect(body.traffic_percentage_branch_id_map).toEqual({ [branches.main]: 50, [branches.b]: 30, [branches.c]: 20 });
    const predicted = new Map(body.movements.map((movement) => [`${movement.from_branch_id}→${movement.to_branch_id}`, movement.percentage]));

    okJson(await injectAs(testApp, 'POST', `${AGENTS}/${agentId}/deployments/${history.results[0].id}/rollback`, testApp.keys.admin));
    const afterRollback = await routed(agentId, conversations);
    expect(afterRollback, 'every conversation is back on its branch').toEqual(underFirst);
    const observed = observedMovements(beforeRollback, afterRollback);
    for (const [pair, share] of observed) {
      expect(predicted.has(pair), `${pair} moved but was not previewed`).toBe(true);
      expect(Math.abs(share - predicted.get(pair)!), pair).toBeLessThan(samplingTolerance(predicted.get(pair)!, conversations.length));
    }
    for (const pair of predicted.keys()) expect(observed.has(pair), `${pair} was previewed but nothing moved`).toBe(true);
  });

  it('refuses what the rollback refuses: an unknown deployment, a branch archived since', async () => {
    const { agentId, branches } = await agentWithBranches('canary');
    expect((await previewRollback(agentId, 'agtdpl_nope')).status).toBe(404);
    await deploy(agentId, [[branches.main, 90], [branches.canary, 10]]);
    const history = okJson<{ results: { id: string }[] }>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}/deployments`, testApp.keys.admin));
    await deploy(agentId, [[branches.main, 100]]);
    okJson(await injectAs(testApp, 'PATCH', `${AGENTS}/${agentId}/branches/${branches.canary}`, testApp.keys.admin, { is_archived: true }));
    const refused = await previewRollback(agentId, history.results[0].id);
    expect(refused.status).toBe(409);
    expect(refused.body.detail?.code).toBe('branch_archived');
  });
});
