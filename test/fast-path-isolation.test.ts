import { afterAll, describe, expect, it } from 'vitest';

import {
  type Fixture,
  idNamesOf,
  observable,
  routeRequests,
  type SeenResponse,
  socketResponse,
  unknownIdLike,
} from './support/route-requests.js';
import { injectAs, listen, startTestApp } from './support/test-app.js';

// Issue 15, item 1: every `GET agent` the raw fast path can answer (routed reads from the routing
// cache, head and version reads from the stamped and rendered caches) must answer each caller
// exactly what the full route answers that caller, whoever warmed the caches before: another
// role, the agent's creator or not, another workspace. Over a real socket, since `inject` never
// reaches the fast path. The clock stands still, so no cache entry (keys, routing) expires during
// the matrix: a warm entry is served whenever the fast path would serve it.

const clockMs = Date.now();
const testApp = await startTestApp({ now: () => clockMs });
const base = await listen(testApp);
const { createFixture, send, ok } = routeRequests(testApp);
afterAll(() => testApp.close());

const workspaces = testApp.app.workspaces;
/** Every kind of caller: each role, creators and not, in our workspace and in another. */
const CALLERS: Record<string, string> = {
  'admin (creator of ours)': testApp.keys.admin,
  'another admin': (await workspaces.createKey('default', 'admin2', 'admin')).key,
  'editor (creator of the editor’s)': testApp.keys.editor,
  'another editor': (await workspaces.createKey('default', 'editor2', 'editor')).key,
  commenter: testApp.keys.commenter,
  viewer: testApp.keys.viewer,
  'admin elsewhere (creator of theirs)': testApp.foreignKey,
  'viewer elsewhere': (await workspaces.createKey('elsewhere', 'far-viewer', 'viewer')).key,
};
const WORKSPACE_OF: Record<string, 'ours' | 'elsewhere'> = Object.fromEntries(
  Object.keys(CALLERS).map((caller) => [caller, caller.includes('elsewhere') ? 'elsewhere' : 'ours']),
);

/** An agent with a second branch and half of the traffic on it, so that routed reads reach both. */
async function splitFixture(key: string, name: string): Promise<Fixture> {
  const fixture = await createFixture(key, name);
  const requests = [fixture.mainBranchId, fixture.branchId].map((branchId) => ({
    branch_id: branchId,
    deployment_strategy: { type: 'percentage', traffic_percentage: 50 },
  }));
  await ok(await send({ method: 'POST', url: `/v1/convai/agents/${fixture.agentId}/deployments`, key, payload: { deployment_request: { requests } } }));
  return fixture;
}

const AGENTS: Record<string, { fixture: Fixture; workspace: 'ours' | 'elsewhere'; owner: string }> = {
  'ours (by the admin)': { fixture: await splitFixture(testApp.keys.admin, 'Ours'), workspace: 'ours', owner: testApp.keys.admin },
  'the editor’s': { fixture: await splitFixture(testApp.keys.editor, 'The editor’s'), workspace: 'ours', owner: testApp.keys.editor },
  theirs: { fixture: await splitFixture(testApp.foreignKey, 'Theirs'), workspace: 'elsewhere', owner: testApp.foreignKey },
};

/**
 * Every read the fast path answers: routed by conversation and by routing key (`routed`), heads
 * and versions.
 */
const READS: Record<string, { query: (fixture: Fixture) => string; routed?: true }> = {
  'routed by conversation_id': { query: () => '?conversation_id=conv_isolation_1', routed: true },
  'routed by routing_key': { query: () => '?routing_key=caller_15550100', routed: true },
  'main head': { query: () => '' },
  'branch head': { query: (f) => `?branch_id=${f.branchId}` },
  'version on main': { query: (f) => `?version_id=${f.mainVersionId}` },
  'version on the branch': { query: (f) => `?version_id=${f.branchVersionId}` },
};

const urlOf = (fixture: Fixture, query: string) => `/v1/convai/agents/${fixture.agentId}${query}`;

/** Through the socket, where the fast path answers when it can. */
async function fetchAs(url: string, key: string): Promise<SeenResponse> {
  return socketResponse(await fetch(`${base}${url}`, { headers: { 'xi-api-key': key } }));
}

/**
 * What a caller can tell from an answer: its status, media type and body (the request id aside).
 * The body is compared as text: the same bytes, not only the same JSON.
 */
function answer(response: SeenResponse) {
  const body = response.body.replace(/"request_id":"req_[0-9a-f]+"/, '"request_id":"<request id>"');
  // The fast path says `application/json; charset=utf-8`, the route `application/json`: both UTF-8 JSON.
  return { status: response.statusCode, type: String(response.headers['content-type']).split(';')[0], body };
}

// Every caller's key in the key cache, so that the fast path may answer each of them.
for (const key of Object.values(CALLERS)) await ok(await send({ method: 'GET', url: '/v1/convai/agents', key }));

describe.each(Object.entries(AGENTS))('agent %s', (_, agent) => {
  describe.each(Object.entries(READS))('%s', (__, { query, routed }) => {
    const url = urlOf(agent.fixture, query(agent.fixture));

    /**
     * The full route's answer to a caller (`inject` never reaches the fast path). A routed read's is
     * that of the branch it routes to, read pinned: the full route's routed read shares the routing
     * cache with the fast path, so its answer alone could not tell a wrong cache entry.
     */
    async function fullRouteAnswer(caller: string, key: string) {
      let answered = url;
      if (routed && WORKSPACE_OF[caller] === agent.workspace) {
        const branchId = (JSON.parse((await injectAs(testApp, 'GET', url, agent.owner)).body) as { branch_id: string }).branch_id;
        answered = urlOf(agent.fixture, `?branch_id=${branchId}`);
      }
      const response = await injectAs(testApp, 'GET', answered, key);
      return answer({ statusCode: response.statusCode, headers: response.headers, body: response.body });
    }

    it('answers every caller what the full route answers them, whoever warmed the caches before', async () => {
      const served = testApp.app.fastPath.served;
      const expected = new Map<string, ReturnType<typeof answer>>();
      for (const [caller, key] of Object.entries(CALLERS)) {
        const full = await fullRouteAnswer(caller, key);
        expect(full.status, caller).toBe(WORKSPACE_OF[caller] === agent.workspace ? 200 : 404);
        expected.set(caller, full);
      }
      for (const [warmer, warmerKey] of Object.entries(CALLERS)) {
        for (const [reader, readerKey] of Object.entries(CALLERS)) {
          // The warmer's read fills the caches for them (through the fast path or the route).
          await fetchAs(url, warmerKey);
          expect(answer(await fetchAs(url, readerKey)), `warmed by ${warmer}, read by ${reader}`).toEqual(expected.get(reader));
        }
      }
      // The matrix went through the fast path (the answers above are its, not only the route's).
      expect(testApp.app.fastPath.served).toBeGreaterThan(served);
    });

    it('from another workspace, after every caller warmed it: the very 404 of an id that exists nowhere', async () => {
      for (const key of Object.values(CALLERS)) await fetchAs(url, key);
      const nowhere = Object.fromEntries(Object.entries(agent.fixture).map(([name, id]) => [name, unknownIdLike(id)])) as unknown as Fixture;
      const unknownUrl = urlOf(nowhere, query(nowhere));
      for (const [reader, key] of Object.entries(CALLERS)) {
        if (WORKSPACE_OF[reader] === agent.workspace) continue;
        const seen = await fetchAs(url, key);
        expect(seen.statusCode, reader).toBe(404);
        const unknown = await fetchAs(unknownUrl, key);
        expect(observable(seen, idNamesOf(agent.fixture)), reader).toEqual(observable(unknown, idNamesOf(nowhere)));
      }
    });
  });
});
