import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { injectAs, listen, okJson, startTestApp, type TestApp } from './support/test-app.js';

// The fast path (decisions.md D17) reads the URL and the key header itself, in place, and hands
// anything unusual to the full route. Whatever it does, a client must not be able to tell: for
// every shape of `GET agent` below, asked twice over a real socket (the first fills the caches,
// the second may come from them), the answer equals the full route's (`inject`, which never
// reaches the fast path) apart from the request id.

let testApp: TestApp;
let base: string;
let agentId: string;
let mainId: string;
let canaryId: string;
let versionId: string;

const AGENTS = '/v1/convai/agents/';

beforeAll(async () => {
  testApp = await startTestApp();
  base = await listen(testApp);
  const key = testApp.keys.admin;
  agentId = okJson<{ agent_id: string }>(
    await injectAs(testApp, 'POST', `${AGENTS}create`, key, { name: 'Parsed', conversation_config: { agent: { first_message: 'main' } } }),
  ).agent_id;
  const head = okJson<{ version_id: string; main_branch_id: string }>(await injectAs(testApp, 'GET', `${AGENTS}${agentId}`, key));
  mainId = head.main_branch_id;
  versionId = head.version_id;
  canaryId = okJson<{ created_branch_id: string }>(
    await injectAs(testApp, 'POST', `${AGENTS}${agentId}/branches`, key, {
      parent_version_id: versionId,
      name: 'Canary',
      description: '',
      conversation_config: { agent: { first_message: 'canary' } },
    }),
  ).created_branch_id;
  const requests = [mainId, canaryId].map((branch_id) => ({ branch_id, deployment_strategy: { type: 'percentage', traffic_percentage: 50 } }));
  okJson(await injectAs(testApp, 'POST', `${AGENTS}${agentId}/deployments`, key, { deployment_request: { requests } }));
});

afterAll(async () => {
  await testApp.close();
});

interface Answer {
  status: number;
  body: unknown;
}

/** The body without what differs between any two answers (the request id). */
function comparable(status: number, text: string): Answer {
  const body = JSON.parse(text) as { detail?: { request_id?: string } };
  if (body.detail && typeof body.detail === 'object' && 'request_id' in body.detail) delete body.detail.request_id;
  return { status, body };
}

async function overSocket(path: string, headers: [string, string][]): Promise<Answer> {
  const response = await fetch(`${base}${path}`, { headers: new Headers(headers) });
  return comparable(response.status, await response.text());
}

async function fullRoute(path: string, headers: [string, string][]): Promise<Answer> {
  const response = await testApp.app.server.inject({ method: 'GET', url: path, headers: Object.fromEntries(headers) });
  return comparable(response.statusCode, response.body);
}

/** Asks twice over the socket and once in process: all three answers must be the same. */
async function expectSameAsRoute(path: string, headers: [string, string][] = [['xi-api-key', testApp.keys.admin]]): Promise<Answer> {
  const expected = await fullRoute(path, headers);
  const first = await overSocket(path, headers);
  const second = await overSocket(path, headers);
  expect(first, `first answer to ${path}`).toEqual(expected);
  expect(second, `second answer to ${path}`).toEqual(expected);
  return expected;
}

describe('GET agent over a socket answers as the full route does', () => {
  it('routed reads: by conversation_id or routing_key, each conversation to its branch', async () => {
    const messages = new Set<string>();
    for (let i = 0; i < 12; i++) {
      for (const name of ['conversation_id', 'routing_key']) {
        const answer = await expectSameAsRoute(`${AGENTS}${agentId}?${name}=conversation-${i}`);
        expect(answer.status).toBe(200);
        messages.add((answer.body as { conversation_config: { agent: { first_message: string } } }).conversation_config.agent.first_message);
      }
    }
    // Both branches are live: a fast path that ignored the split would show one.
    expect(messages).toEqual(new Set(['main', 'canary']));
  });

  it('head and version reads: no selector, a branch, a version', async () => {
    for (const query of ['', `?branch_id=${mainId}`, `?branch_id=${canaryId}`, `?version_id=${versionId}`, `?branch_id=${mainId}&version_id=${versionId}`]) {
      expect((await expectSameAsRoute(`${AGENTS}${agentId}${query}`)).status).toBe(200);
    }
    // The version is on main, not on the canary: 422 (decisions.md D2).
    expect((await expectSameAsRoute(`${AGENTS}${agentId}?branch_id=${canaryId}&version_id=${versionId}`)).status).toBe(422);
  });

  it('unusual queries: empty, repeated, combined, unknown, encoded or valueless parameters', async () => {
    const queries = [
      '?conversation_id=',
      '?routing_key=',
      '?branch_id=',
      '?version_id=',
      '?conversation_id',
      '?&conversation_id=c-1&',
      '?conversation_id=c-1&conversation_id=c-2',
      '?branch_id=x&branch_id=y',
      `?branch_id=${mainId}&branch_id=${canaryId}`,
      '?conversation_id=c-1&routing_key=c-1',
      `?conversation_id=c-1&branch_id=${canaryId}`,
      `?routing_key=c-1&version_id=${versionId}`,
      '?conversation_id=c%2D1',
      '?conversation_id=c+1',
      '?conversation_id=caf%C3%A9',
      `?conversation_id=${'c'.repeat(1_000)}`,
      `?conversation_id=${'c'.repeat(1_001)}`,
      '?unknown=1',
      '?conversation_id=c-1&unknown=1',
      '?branch_idx=1',
      '?version=1',
      '?conversation=1',
      '?routing=1',
      '?=c-1',
      `?branch_id=agtbrch_unknown`,
      `?version_id=agtvrsn_unknown`,
    ];
    for (const query of queries) await expectSameAsRoute(`${AGENTS}${agentId}${query}`);
  });

  it('unusual paths: unknown, encoded, nested or overlong agent ids', async () => {
    const encoded = agentId.replace('a', '%61');
    for (const path of [
      `${AGENTS}agent_unknown?conversation_id=c-1`,
      `${AGENTS}agent_unknown`,
      `${AGENTS}${encoded}?conversation_id=c-1`,
      `${AGENTS}${encoded}`,
      `${AGENTS}${agentId}/branches`,
      `${AGENTS}${'a'.repeat(501)}?conversation_id=c-1`,
      `${AGENTS}${'a'.repeat(500)}`,
    ]) {
      await expectSameAsRoute(path);
    }
  });

  it('keys: missing, empty, unknown, of another workspace, of each role, or sent twice', async () => {
    const path = `${AGENTS}${agentId}?conversation_id=c-keys`;
    const { keys, foreignKey } = testApp;
    expect((await expectSameAsRoute(path, [])).status).toBe(401);
    expect((await expectSameAsRoute(path, [['xi-api-key', '']])).status).toBe(401);
    expect((await expectSameAsRoute(path, [['xi-api-key', 'sk_unknown']])).status).toBe(401);
    expect((await expectSameAsRoute(path, [['xi-api-key', foreignKey]])).status).toBe(404);
    expect((await expectSameAsRoute(`${AGENTS}${agentId}`, [['xi-api-key', foreignKey]])).status).toBe(404);
    for (const role of ['admin', 'editor', 'commenter', 'viewer'] as const) {
      expect((await expectSameAsRoute(path, [['xi-api-key', keys[role]]])).status).toBe(200);
      expect((await expectSameAsRoute(`${AGENTS}${agentId}`, [['XI-API-KEY', keys[role]]])).status).toBe(200);
    }
    // Two keys in one request (a valid one first): the route decides, not the fast path.
    const twice = await fetch(`${base}${path}`, { headers: [['xi-api-key', keys.admin], ['xi-api-key', foreignKey]] });
    const inProcess = await testApp.app.server.inject({ method: 'GET', url: path, headers: { 'xi-api-key': [keys.admin, foreignKey] } });
    expect(comparable(twice.status, await twice.text())).toEqual(comparable(inProcess.statusCode, inProcess.body));
  });
});
