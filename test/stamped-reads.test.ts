import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { injectAs, listen, okJson, type OtherApp, startOtherApp, startTestApp, type TestApp } from './support/test-app.js';

// Head and version reads must see every write acknowledged before they began, by this process or
// another (decisions.md D16). On SQLite the fast path answers again from what it read while no
// connection has committed since (`PRAGMA data_version`); this holds it to what the user sees:
// every read after an acknowledged write, through either server, shows that write. (How many
// answers came from the stamp is the bench's business: a count here failed on a loaded machine.)

let testApp: TestApp;
/** The listening servers: this app's and the other's, each with its own fast path. */
let bases: string[];
/** A second app on the same database, with its own connections: another process, as SQLite sees it. */
let other: OtherApp;
let key: string;

beforeAll(async () => {
  testApp = await startTestApp();
  key = testApp.keys.admin;
  other = await startOtherApp(testApp);
  bases = [await listen(testApp), other.url];
});

afterAll(async () => {
  await other.close();
  await testApp.close();
});

type Agent = { agent_id: string; name: string; version_id: string; main_branch_id: string; conversation_config: { agent: { first_message: string } } };

/** `GET agent` through a listening server (`base`), where the fast path answers. */
async function read(base: string, agentId: string, query: string): Promise<{ status: number; body: Agent }> {
  const response = await fetch(`${base}/v1/convai/agents/${agentId}?${query}`, { headers: { 'xi-api-key': key } });
  return { status: response.status, body: (await response.json()) as Agent };
}

describe('head and version reads', () => {
  it('see every acknowledged write at once, whichever connection made it and whichever server is asked, again and again', async () => {
    const created = okJson<Agent>(await injectAs(testApp, 'POST', '/v1/convai/agents/create', key, { name: 'Stamped', conversation_config: { agent: { first_message: 'm' } } }));
    const agentId = created.agent_id;
    const first = okJson<Agent>(await injectAs(testApp, 'GET', `/v1/convai/agents/${agentId}`, key));
    const head = `branch_id=${first.main_branch_id}`;
    const pinned = `version_id=${first.version_id}`;

    for (let i = 0; i < 12; i++) {
      // Alternately this app and the other write: a commit and a rename in one request.
      const writer = i % 2 === 0 ? testApp.app : other.app;
      const commit = okJson<Agent>(
        await writer.server.inject({
          method: 'PATCH',
          url: `/v1/convai/agents/${agentId}`,
          headers: { 'xi-api-key': key, 'content-type': 'application/json' },
          payload: JSON.stringify({ name: `Stamped ${i}`, conversation_config: { agent: { first_message: `message ${i}` } } }),
        }),
      );
      // Several reads per write and server: a repeated read is the one an answer kept from before could serve.
      for (let again = 0; again < 3; again++) {
        for (const base of bases) {
          const atHead = await read(base, agentId, head);
          expect(atHead.status).toBe(200);
          expect(atHead.body.version_id).toBe(commit.version_id);
          expect(atHead.body.conversation_config.agent.first_message).toBe(`message ${i}`);
          expect(atHead.body.name).toBe(`Stamped ${i}`);
          // The first version's document never changes; the agent's name in its answer does.
          const atVersion = await read(base, agentId, pinned);
          expect(atVersion.status).toBe(200);
          expect(atVersion.body.version_id).toBe(first.version_id);
          expect(atVersion.body.conversation_config.agent.first_message).toBe('m');
          expect(atVersion.body.name).toBe(`Stamped ${i}`);
        }
      }
    }

    // Deleted by the other app: gone from both reads of both servers at once.
    const deleted = await other.app.server.inject({ method: 'DELETE', url: `/v1/convai/agents/${agentId}`, headers: { 'xi-api-key': key } });
    expect(deleted.statusCode).toBeLessThan(300);
    for (const base of bases) {
      expect((await read(base, agentId, head)).status).toBe(404);
      expect((await read(base, agentId, pinned)).status).toBe(404);
    }
  });
});
