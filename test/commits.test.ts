import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { largeConversationConfig } from './support/builders.js';
import { dialect, listen, startTestApp, type TestApp } from './support/test-app.js';

let testApp: TestApp;
let baseUrl: string;

beforeAll(async () => {
  testApp = await startTestApp();
  baseUrl = await listen(testApp);
});
afterAll(() => testApp.close());

async function call(method: string, path: string, body?: unknown) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { 'xi-api-key': testApp.keys.editor, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

describe('commits', () => {
  it('serializes 50 concurrent commits to one branch: no lost update, seq numbers without gaps', async () => {
    const created = await call('POST', '/v1/convai/agents/create', { conversation_config: {}, name: 'Busy' });
    const agentId = created.body.agent_id as string;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        call('PATCH', `/v1/convai/agents/${agentId}`, {
          conversation_config: { agent: { dynamic_variables: { dynamic_variable_placeholders: { [`key_${i}`]: `value ${i}` } } } },
          version_description: `commit ${i}`,
        }),
      ),
    );
    expect(results.map((result) => result.status)).toEqual(Array(50).fill(200));
    // Every acknowledged commit made its own version.
    expect(new Set(results.map((result) => result.body.version_id)).size).toBe(50);

    const versions = await testApp.store.db
      .selectFrom('versions')
      .select(['id', 'seq_no_in_branch', 'in_branch_parent_id', 'description'])
      .where('agent_id', '=', agentId)
      .orderBy('seq_no_in_branch')
      .execute();
    expect(versions.map((version) => version.seq_no_in_branch)).toEqual(Array.from({ length: 51 }, (_, i) => i + 1));
    for (let i = 1; i < versions.length; i++) expect(versions[i].in_branch_parent_id).toBe(versions[i - 1].id);
    expect(new Set(versions.slice(1).map((version) => version.description)).size).toBe(50);

    const head = await call('GET', `/v1/convai/agents/${agentId}`);
    expect(head.body.version_id).toBe(versions.at(-1)!.id);
    const placeholders = head.body.conversation_config.agent.dynamic_variables.dynamic_variable_placeholders;
    expect(Object.keys(placeholders).sort()).toEqual(Array.from({ length: 50 }, (_, i) => `key_${i}`).sort());
  });

  // The measure is SQLite's pages after a checkpoint (decisions.md D6); PostgreSQL stores the same rows.
  it.skipIf(dialect !== 'sqlite')('stores a one-field commit to a 20 KB config in at most 2 KB (measured on SQLite pages)', async () => {
    const config = largeConversationConfig(20_000);
    const created = await call('POST', '/v1/convai/agents/create', { conversation_config: config, name: 'Large' });
    expect(created.status).toBe(200);
    const agentId = created.body.agent_id as string;
    const stored = await call('GET', `/v1/convai/agents/${agentId}`);
    expect(JSON.stringify(stored.body.conversation_config).length).toBeGreaterThan(20_000);

    const sqlite = sqliteHandle(testApp);
    const usedBytes = () => {
      sqlite.pragma('wal_checkpoint(TRUNCATE)');
      const pageSize = sqlite.pragma('page_size', { simple: true }) as number;
      const pages = sqlite.pragma('page_count', { simple: true }) as number;
      const free = sqlite.pragma('freelist_count', { simple: true }) as number;
      return (pages - free) * pageSize;
    };
    const commits = 300;
    const before = usedBytes();
    for (let i = 0; i < commits; i++) {
      const result = await call('PATCH', `/v1/convai/agents/${agentId}`, {
        conversation_config: { agent: { prompt: { temperature: (i % 100) / 100 + 0.001 } } },
      });
      expect(result.status).toBe(200);
    }
    const perCommit = (usedBytes() - before) / commits;
    expect(perCommit).toBeLessThanOrEqual(2048);
    // The whole 20 KB config would not fit: this is structural sharing, not a small config.
    expect(perCommit).toBeLessThan(JSON.stringify(stored.body.conversation_config).length / 5);
  });
});

function sqliteHandle(app: TestApp) {
  if (!app.store.sqlite) throw new Error('the storage measure needs the SQLite handle');
  return app.store.sqlite;
}
