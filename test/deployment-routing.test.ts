import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { createAgent } from './support/fixtures.js';
import { describeResponse, routeRequests } from './support/route-requests.js';
import { waitFor } from './support/server-process.js';
import { listen, type OtherApp, startOtherApp, startTestApp } from './support/test-app.js';
import { patient } from './support/patience.js';

// What a deployment does to routed reads, as a user sees them through the API (issue 15, items 2
// and 3): it reaches every warm cache at once, on the process that made it and, once that process
// hears of it, on every other; and it moves only the conversations it must, whatever order the
// split lists its branches in.
//
// The clock stands still: no cache entry expires or refreshes by age, so a routed read that
// changes after a deployment changed because the deployment invalidated the cache.

const clockMs = Date.now();
const testApp = await startTestApp({ now: () => clockMs });
const other: OtherApp = await startOtherApp(testApp, { now: () => clockMs });
const { send, ok } = routeRequests(testApp);
const key = testApp.keys.admin;
afterAll(async () => {
  await other.close();
  await testApp.close();
});

/** Both servers: this app's and another one's on the same database, each with its own caches. */
const SERVERS = [
  { name: 'the app', url: await listen(testApp), app: testApp.app },
  { name: 'another app on the same database', url: other.url, app: other.app },
];

/** An agent whose main and further branches each say their name in `first_message`. */
async function agentWithBranches(...names: string[]) {
  const { agentId, mainBranchId, versionId } = await createAgent(testApp, { key, name: 'Routed', conversationConfig: { agent: { first_message: 'main' } } });
  const branches: Record<string, string> = { main: mainBranchId };
  for (const name of names) {
    const payload = { parent_version_id: versionId, name, description: '', conversation_config: { agent: { first_message: name } } };
    branches[name] = (await ok<{ created_branch_id: string }>(await send({ method: 'POST', url: `/v1/convai/agents/${agentId}/branches`, key, payload }))).created_branch_id;
  }
  return { agentId, branches };
}

type Split = [branchId: string, percentage: number][];

function deploymentBody(split: Split) {
  return { deployment_request: { requests: split.map(([branchId, percentage]) => ({ branch_id: branchId, deployment_strategy: { type: 'percentage', traffic_percentage: percentage } })) } };
}

/** The branch a conversation's routed read is served from, through a server's socket (the fast path when it can). */
async function routedBranch(url: string, agentId: string, conversation: string): Promise<{ branchId: string; versionId: string; firstMessage: string }> {
  const response = await fetch(`${url}/v1/convai/agents/${agentId}?conversation_id=${conversation}`, { headers: { 'xi-api-key': key } });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { branch_id: string; version_id: string; conversation_config: { agent: { first_message: string } } };
  return { branchId: body.branch_id, versionId: body.version_id, firstMessage: body.conversation_config.agent.first_message };
}

async function routedBranches(url: string, agentId: string, conversations: string[]): Promise<string[]> {
  const branches = [];
  for (const conversation of conversations) branches.push((await routedBranch(url, agentId, conversation)).branchId);
  return branches;
}

describe('a change of traffic reaches warm routed reads', () => {
  const conversations = Array.from({ length: 12 }, (_, i) => `conv_warm_${i}`);

  /**
   * Warms every conversation's routed read on both servers, makes the change through `by`, then
   * reads: at once on `by`, and on the other server once its change feed has delivered (the
   * clock stands still, so nothing else could change its answer).
   */
  async function expectReached(agentId: string, by: (typeof SERVERS)[number], change: () => Promise<void>, expected: { branchId: string; versionId?: string }) {
    for (const server of SERVERS) {
      // Twice: the second read is the one a warm cache answers.
      await routedBranches(server.url, agentId, conversations);
      await routedBranches(server.url, agentId, conversations);
    }
    await change();
    for (const conversation of conversations) {
      const read = await routedBranch(by.url, agentId, conversation);
      expect(read.branchId, `${conversation} at once on ${by.name}`).toBe(expected.branchId);
      if (expected.versionId) expect(read.versionId).toBe(expected.versionId);
    }
    for (const server of SERVERS.filter((server) => server !== by)) {
      // A bound for a failure, not a measure: a missed invalidation would never end with this clock.
      await waitFor(async () => (await routedBranches(server.url, agentId, conversations)).every((branchId) => branchId === expected.branchId), `${server.name} to route by the change`, patient(10_000));
    }
  }

  const inject = (server: (typeof SERVERS)[number], method: 'POST', url: string, payload?: unknown) =>
    server.app.server.inject({ method, url, headers: { 'xi-api-key': key, 'content-type': 'application/json' }, payload: JSON.stringify(payload ?? {}) });

  it('a deployment, a rollback and a merge that moves the traffic: each on either server', async () => {
    const { agentId, branches } = await agentWithBranches('canary');
    const deployments = `/v1/convai/agents/${agentId}/deployments`;
    for (const [by, otherServer] of [SERVERS, [...SERVERS].reverse()]) {
      // A new split that moves every warm conversation.
      await expectReached(agentId, by, async () => {
        const response = await inject(by, 'POST', deployments, deploymentBody([[branches.main, 0], [branches.canary, 100]]));
        expect(response.statusCode, describeResponse(response)).toBe(200);
      }, { branchId: branches.canary });
      // A rollback to the split before it, through the other server.
      const history = await ok<{ results: { id: string; traffic_percentage_branch_id_map: Record<string, number> }[] }>(await send({ method: 'GET', url: deployments, key }));
      const allOnMain = history.results.find((item) => item.traffic_percentage_branch_id_map[branches.main] === 100)!;
      await expectReached(agentId, otherServer, async () => {
        const response = await inject(otherServer, 'POST', `${deployments}/${allOnMain.id}/rollback`);
        expect(response.statusCode, describeResponse(response)).toBe(200);
      }, { branchId: branches.main });
    }
    // A merge that archives the live source moves its traffic to the target (a `branch_merge` deployment).
    await ok(await send({ method: 'POST', url: deployments, key, payload: deploymentBody([[branches.canary, 100]]) }));
    let merged = '';
    await expectReached(agentId, SERVERS[1], async () => {
      const response = await inject(SERVERS[1], 'POST', `/v1/convai/agents/${agentId}/branches/${branches.canary}/merge?target_branch_id=${branches.main}`, { archive_source_branch: true });
      expect(response.statusCode, describeResponse(response)).toBe(200);
      merged = ((await ok<{ version_id: string }>(await send({ method: 'GET', url: `/v1/convai/agents/${agentId}`, key }))).version_id);
    }, { branchId: branches.main });
    expect((await routedBranch(SERVERS[0].url, agentId, conversations[0])).versionId).toBe(merged);
  });
});

describe('minimal movement through the API, whatever order the split lists its branches in', () => {
  /** Routing keys read after every deployment. */
  const sample = Array.from({ length: 100 }, (_, i) => `conv_move_${i}`);
  /** Every sampled conversation's branch, through the full route (in process: quicker than the socket). */
  const routed = async (agentId: string) => {
    const branches = [];
    for (const conversation of sample) {
      branches.push((await ok<{ branch_id: string }>(await send({ method: 'GET', url: `/v1/convai/agents/${agentId}?conversation_id=${conversation}`, key }))).branch_id);
    }
    return branches;
  };
  const deploy = async (agentId: string, split: Split) => ok(await send({ method: 'POST', url: `/v1/convai/agents/${agentId}/deployments`, key, payload: deploymentBody(split) }));

  it('listing the same split in another order moves nobody', async () => {
    const { agentId, branches } = await agentWithBranches('canary');
    await deploy(agentId, [[branches.main, 90], [branches.canary, 10]]);
    const before = await routed(agentId);
    expect(new Set(before)).toEqual(new Set([branches.main, branches.canary]));
    await deploy(agentId, [[branches.canary, 10], [branches.main, 90]]);
    expect(await routed(agentId)).toEqual(before);
  });

  it('0/50/50 → 50/50/0 moves exactly the conversations of the branch that goes to 0, onto the one that grows', async () => {
    const { agentId, branches } = await agentWithBranches('b', 'c');
    await deploy(agentId, [[branches.main, 0], [branches.b, 50], [branches.c, 50]]);
    const before = await routed(agentId);
    await deploy(agentId, [[branches.main, 50], [branches.b, 50], [branches.c, 0]]);
    const after = await routed(agentId);
    sample.forEach((conversation, i) => {
      expect(after[i], conversation).toBe(before[i] === branches.c ? branches.main : branches.b);
    });
    // About half of the sample was on the branch that went to 0: those, and only those, moved.
    const moved = after.filter((branchId, i) => branchId !== before[i]).length;
    expect(moved).toBe(before.filter((branchId) => branchId === branches.c).length);
    expect(moved).toBeGreaterThan(sample.length / 4);
    expect(moved).toBeLessThan((sample.length * 3) / 4);
  });

  it('any sequence of splits in any order: a conversation stays unless its branch shrank, and moves only to a branch that grew', async () => {
    const { agentId, branches } = await agentWithBranches('b', 'c');
    const ids = Object.values(branches);
    // Whole percentages over the three branches, listed in any order, 0% branches sometimes left out.
    const split = fc
      .tuple(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }), fc.shuffledSubarray([0, 1, 2], { minLength: 3, maxLength: 3 }), fc.boolean())
      .map(([a, b, order, omitZeros]) => {
        const [low, high] = a <= b ? [a, b] : [b, a];
        const shares = [low, high - low, 100 - high];
        return order.map((index): [string, number] => [ids[index], shares[index]]).filter(([, share]) => !(omitZeros && share === 0));
      });
    let current = new Map<string, number>([[branches.main, 100]]);
    let before = await routed(agentId);
    await fc.assert(
      fc.asyncProperty(split, async (next) => {
        await deploy(agentId, next);
        const shares = new Map(next);
        const after = await routed(agentId);
        sample.forEach((conversation, i) => {
          const was = current.get(before[i]) ?? 0;
          const now = shares.get(before[i]) ?? 0;
          if (now >= was) expect(after[i], `${conversation} left a branch that did not shrink`).toBe(before[i]);
          if (after[i] !== before[i]) expect(shares.get(after[i]) ?? 0, `${conversation} moved to a branch that did not grow`).toBeGreaterThan(current.get(after[i]) ?? 0);
        });
        current = shares;
        before = after;
      }),
      { numRuns: 20 },
    );
  });
});
