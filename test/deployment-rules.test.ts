import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { injectAs, okJson, startTestApp, type TestApp } from './support/test-app.js';

// The rules of the deployments service that the SDK tests pass over (decisions.md D14, D15, D22): which
// share changes need admin, what a refusal says, how history pages and timestamps read, and what a
// rollback does with branches archived since. The clock is injected: timestamps are exact.

let testApp: TestApp;
let clock = Date.UTC(2026, 3, 15, 12, 0, 0, 999);

beforeAll(async () => {
  testApp = await startTestApp({ now: () => clock });
});

afterAll(async () => {
  await testApp.close();
});

const AGENTS = '/v1/convai/agents';

interface Agent {
  agentId: string;
  main: string;
  canary: string;
  beta: string;
}

async function agentWithBranches(): Promise<Agent> {
  const key = testApp.keys.admin;
  const agentId = okJson<{ agent_id: string }>(await injectAs(testApp, 'POST', `${AGENTS}/create`, key, { conversation_config: {} })).agent_id;
  const head = okJson<{ version_id: string; main_branch_id: string }>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}`, key));
  const branch = async (name: string) =>
    okJson<{ created_branch_id: string }>(
      await injectAs(testApp, 'POST', `${AGENTS}/${agentId}/branches`, key, { parent_version_id: head.version_id, name, description: '' }),
    ).created_branch_id;
  return { agentId, main: head.main_branch_id, canary: await branch('Canary'), beta: await branch('Beta') };
}

function split(shares: [string, number][]) {
  return { deployment_request: { requests: shares.map(([branch_id, traffic_percentage]) => ({ branch_id, deployment_strategy: { type: 'percentage', traffic_percentage } })) } };
}

async function deploy(agentId: string, key: string, shares: [string, number][]) {
  return injectAs(testApp, 'POST', `${AGENTS}/${agentId}/deployments`, key, split(shares));
}

async function protect(agentId: string, branchId: string) {
  okJson(await injectAs(testApp, 'PATCH', `${AGENTS}/${agentId}/branches/${branchId}`, testApp.keys.admin, { protection_status: 'admin_perms_required' }));
}

interface HistoryItem {
  id: string;
  traffic_percentage_branch_id_map: Record<string, number>;
  deployed_at_unix_secs: number;
  is_active: boolean;
  source: string;
  access_info: { is_creator: boolean; creator_name: string; role: string; access_source: string };
}

interface History {
  meta: { total: number; page: number; page_size: number };
  results: HistoryItem[];
}

describe('who may change which share', () => {
  it('lets an editor move traffic between other branches while an admin-protected branch keeps its share', async () => {
    const { agentId, main, canary, beta } = await agentWithBranches();
    okJson(await deploy(agentId, testApp.keys.admin, [[main, 50], [canary, 30], [beta, 20]]));
    await protect(agentId, main);
    const moved = await deploy(agentId, testApp.keys.editor, [[main, 50], [canary, 20], [beta, 30]]);
    expect(okJson(moved)).toEqual({ traffic_percentage_branch_id_map: { [main]: 50, [canary]: 20, [beta]: 30 } });
    // Written in another order, and with a difference far below the tolerance: still no change to main.
    okJson(await deploy(agentId, testApp.keys.editor, [[beta, 29.9999999999999], [main, 50.0000000000001], [canary, 20]]));
  });

  it("refuses an editor who changes an admin-protected branch's share, either way, naming the branch", async () => {
    const { agentId, main, canary } = await agentWithBranches();
    okJson(await deploy(agentId, testApp.keys.admin, [[main, 90], [canary, 10]]));
    await protect(agentId, canary);
    for (const shares of [
      [[main, 95], [canary, 5]],
      [[main, 85], [canary, 15]],
      [[main, 100]],
    ] as [string, number][][]) {
      const refused = await deploy(agentId, testApp.keys.editor, shares);
      expect(refused.statusCode).toBe(403);
      expect(refused.json().detail).toMatchObject({
        message: 'Branch "Canary" is protected: changing its share of traffic requires the admin role.',
      });
    }
    const history = okJson<History>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}/deployments`, testApp.keys.admin));
    expect(history.results[0].traffic_percentage_branch_id_map).toEqual({ [main]: 90, [canary]: 10 });
    // An admin may.
    okJson(await deploy(agentId, testApp.keys.admin, [[main, 100]]));
  });
});

describe('refusals of a split', () => {
  it('says what the total was, to nine decimals, and where', async () => {
    const { agentId, main, canary } = await agentWithBranches();
    const cases: [[string, number][], string][] = [
      [[[main, 33.3333333333], [canary, 33.3333333333]], 'percentages total 66.666666667'],
      [[[main, 99.99], [canary, 0.0000001]], 'percentages total 99.9900001'],
      [[[main, 0.1], [canary, 0.2]], 'percentages total 0.3'],
    ];
    for (const [shares, total] of cases) {
      const refused = await deploy(agentId, testApp.keys.admin, shares);
      expect(refused.statusCode).toBe(422);
      expect(refused.json().detail).toEqual([
        { loc: ['body', 'deployment_request', 'requests'], msg: `${total}; a deployment declares the whole allocation and must total 100`, type: 'value_error' },
      ]);
    }
  });

  it('names every bad item at its own place: a repeat, a stranger, an archived branch', async () => {
    const { agentId, main, canary, beta } = await agentWithBranches();
    okJson(await injectAs(testApp, 'PATCH', `${AGENTS}/${agentId}/branches/${beta}`, testApp.keys.admin, { is_archived: true }));
    const refused = await deploy(agentId, testApp.keys.admin, [[main, 40], [canary, 20], [main, 20], ['agtbrch_stranger', 10], [beta, 10]]);
    expect(refused.statusCode).toBe(422);
    const at = (index: number) => ['body', 'deployment_request', 'requests', index, 'branch_id'];
    expect(refused.json().detail).toEqual([
      { loc: at(2), msg: `branch ${main} is named twice (also at requests[0]); name each branch once`, type: 'value_error' },
      { loc: at(3), msg: `branch agtbrch_stranger is not a branch of agent ${agentId}`, type: 'value_error' },
      { loc: at(4), msg: `branch "Beta" (${beta}) is archived; archived branches receive no traffic`, type: 'value_error' },
    ]);
  });
});

describe('refusals at the first item', () => {
  it('point into the list at index 0, not at the list', async () => {
    const { agentId, main } = await agentWithBranches();
    const refused = await deploy(agentId, testApp.keys.admin, [['agtbrch_stranger', 60], [main, 40]]);
    expect(refused.statusCode).toBe(422);
    expect(refused.json().detail).toEqual([
      { loc: ['body', 'deployment_request', 'requests', 0, 'branch_id'], msg: `branch agtbrch_stranger is not a branch of agent ${agentId}`, type: 'value_error' },
    ]);
  });
});

describe('history', () => {
  it('pages newest first, with whole seconds, one active item, and who deployed it', async () => {
    const { agentId, main, canary } = await agentWithBranches();
    const deployedAt: number[] = [];
    for (const [share, key] of [[10, testApp.keys.admin], [20, testApp.keys.editor], [30, testApp.keys.admin]] as const) {
      clock += 1_500;
      deployedAt.push(clock);
      okJson(await deploy(agentId, key, [[main, 100 - share], [canary, share]]));
    }
    const page = async (query: string) => okJson<History>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}/deployments${query}`, testApp.keys.editor));
    const all = await page('');
    expect(all.meta).toEqual({ total: 4, page: 1, page_size: 30 });
    expect(all.results.map((item) => item.traffic_percentage_branch_id_map[canary] ?? 0)).toEqual([30, 20, 10, 0]);
    expect(all.results.map((item) => item.is_active)).toEqual([true, false, false, false]);
    expect(all.results.slice(0, 3).map((item) => item.deployed_at_unix_secs)).toEqual(deployedAt.reverse().map((ms) => Math.floor(ms / 1000)));
    expect(all.results.every((item) => item.source === 'manual')).toBe(true);
    expect(all.results.every((item) => /^agtdpl_[0-9a-z]{28}$/.test(item.id))).toBe(true);
    // The editor reads: the second deployment is theirs, the others the admin's.
    expect(all.results[1].access_info).toMatchObject({ is_creator: true, creator_name: 'editor-user', role: 'editor', access_source: 'creator' });
    expect(all.results[0].access_info).toMatchObject({ is_creator: false, creator_name: 'admin', role: 'editor', access_source: 'workspace_default' });

    const second = await page('?page=2&page_size=3');
    expect(second.meta).toEqual({ total: 4, page: 2, page_size: 3 });
    expect(second.results.map((item) => item.id)).toEqual([all.results[3].id]);
    const middle = await page('?page=2&page_size=1');
    expect(middle.results.map((item) => item.id)).toEqual([all.results[1].id]);
  });
});

describe('rollback', () => {
  it('drops a branch archived since when the earlier split gave it 0%, and keeps the rest', async () => {
    const { agentId, main, canary, beta } = await agentWithBranches();
    const earlier = okJson<History>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}/deployments`, testApp.keys.admin)).results[0];
    okJson(await deploy(agentId, testApp.keys.admin, [[main, 80], [canary, 20], [beta, 0]]));
    const withZeroBeta = okJson<History>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}/deployments`, testApp.keys.admin)).results[0];
    okJson(await deploy(agentId, testApp.keys.admin, [[main, 100]]));
    okJson(await injectAs(testApp, 'PATCH', `${AGENTS}/${agentId}/branches/${beta}`, testApp.keys.admin, { is_archived: true }));

    const rolledBack = okJson<HistoryItem>(await injectAs(testApp, 'POST', `${AGENTS}/${agentId}/deployments/${withZeroBeta.id}/rollback`, testApp.keys.admin));
    expect(rolledBack.traffic_percentage_branch_id_map).toEqual({ [main]: 80, [canary]: 20 });
    expect(rolledBack).toMatchObject({ is_active: true, source: 'manual' });
    expect(rolledBack.id).not.toBe(withZeroBeta.id);
    expect(okJson<HistoryItem>(await injectAs(testApp, 'POST', `${AGENTS}/${agentId}/deployments/${earlier.id}/rollback`, testApp.keys.admin)).traffic_percentage_branch_id_map).toEqual({
      [main]: 100,
    });
  });

  it('answers 404 for a deployment that is not in this agent\'s history', async () => {
    const { agentId } = await agentWithBranches();
    const other = await agentWithBranches();
    const foreignDeployment = okJson<History>(await injectAs(testApp, 'GET', `${AGENTS}/${other.agentId}/deployments`, testApp.keys.admin)).results[0];
    for (const id of ['agtdpl_unknown', foreignDeployment.id]) {
      const refused = await injectAs(testApp, 'POST', `${AGENTS}/${agentId}/deployments/${id}/rollback`, testApp.keys.admin);
      expect(refused.statusCode).toBe(404);
      expect(refused.json().detail).toMatchObject({ code: 'deployment_not_found', message: `Deployment "${id}" was not found.` });
    }
  });

  it('refuses one that would send traffic to a branch archived since, saying how much and where', async () => {
    const { agentId, main, canary } = await agentWithBranches();
    okJson(await deploy(agentId, testApp.keys.admin, [[main, 75], [canary, 25]]));
    const withCanary = okJson<History>(await injectAs(testApp, 'GET', `${AGENTS}/${agentId}/deployments`, testApp.keys.admin)).results[0];
    okJson(await deploy(agentId, testApp.keys.admin, [[main, 100]]));
    okJson(await injectAs(testApp, 'PATCH', `${AGENTS}/${agentId}/branches/${canary}`, testApp.keys.admin, { is_archived: true }));
    const refused = await injectAs(testApp, 'POST', `${AGENTS}/${agentId}/deployments/${withCanary.id}/rollback`, testApp.keys.admin);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().detail).toMatchObject({
      code: 'branch_archived',
      message: `Deployment ${withCanary.id} sends 25% to branch "Canary", which is archived; unarchive it or deploy a new split.`,
    });
  });
});
