import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JsonObject } from '../src/domain/canonical-json.js';
import { insertVersion } from '../src/features/versions/commit.js';
import { injectAs, listen, okJson, sdk, startTestApp, type TestApp } from './support/test-app.js';

// Issue 14, defect 6: a pull-edit-push tool (the Python SDK, the CLI's `push`) sends back what
// `GET agent` returned. Reads fill defaults that the stored document may lack; sending them back
// must not make a version (nor change the agent-wide settings), and `/diff` must not show them.

let testApp: TestApp;
beforeAll(async () => {
  testApp = await startTestApp();
});
afterAll(() => testApp.close());

const SECTIONS = ['conversation_config', 'platform_settings', 'workflow', 'name', 'tags'] as const;
type Section = (typeof SECTIONS)[number];

interface AgentRead {
  version_id: string;
  branch_id: string;
  main_branch_id: string;
  name: string;
  tags: string[];
  conversation_config: JsonObject;
  platform_settings: JsonObject;
  workflow: JsonObject;
}

const send = (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown) => injectAs(testApp, method, url, testApp.keys.admin, payload);
const read = async (agentId: string, branchId?: string) =>
  okJson<AgentRead>(await send('GET', `/v1/convai/agents/${agentId}${branchId ? `?branch_id=${branchId}` : ''}`));

async function versionCount(agentId: string): Promise<number> {
  const row = await testApp.store.db.selectFrom('versions').select((eb) => eb.fn.countAll<number>().as('n')).where('agent_id', '=', agentId).executeTakeFirstOrThrow();
  return Number(row.n);
}

async function agentRow(agentId: string) {
  return testApp.store.db.selectFrom('agents').select(['agent_settings', 'name', 'tags', 'revision']).where('id', '=', agentId).executeTakeFirstOrThrow();
}

async function auditCount(agentId: string): Promise<number> {
  const row = await testApp.store.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number>().as('n')).where('agent_id', '=', agentId).executeTakeFirstOrThrow();
  return Number(row.n);
}

// ---------------------------------------------------------------------------------------------
// Random valid agent configs
// ---------------------------------------------------------------------------------------------

const word = fc.constantFrom('alpha', 'beta', 'gamma', 'delta', 'Hello there', 'Wie geht es?', '');

const conversationConfig: fc.Arbitrary<JsonObject> = fc
  .record(
    {
      agent: fc.record(
        {
          first_message: word,
          language: fc.constantFrom('en', 'de', 'fr'),
          prompt: fc.record(
            {
              prompt: word,
              temperature: fc.constantFrom(0, 0.3, 0.9),
              llm: fc.constantFrom('gemini-2.5-flash', 'gpt-4o'),
              tools: fc.array(
                fc.integer({ min: 0, max: 99 }).map((i) => ({
                  type: 'webhook',
                  name: `tool_${i}`,
                  description: `Tool ${i}`,
                  api_schema: { url: `https://example.com/tool/${i}`, method: 'GET' },
                })),
                { maxLength: 3 },
              ),
            },
            { requiredKeys: [] },
          ),
        },
        { requiredKeys: [] },
      ),
      tts: fc.record({ voice_id: fc.constantFrom('voice_a', 'voice_b'), stability: fc.constantFrom(0.2, 0.5) }, { requiredKeys: [] }),
      turn: fc.record({ turn_timeout: fc.constantFrom(5, 7, 12) }, { requiredKeys: [] }),
      conversation: fc.record({ max_duration_seconds: fc.constantFrom(60, 600) }, { requiredKeys: [] }),
    },
    { requiredKeys: [] },
  )
  .map((value) => value as unknown as JsonObject);

const platformSettings: fc.Arbitrary<JsonObject> = fc
  .record(
    {
      widget: fc.record({ variant: fc.constantFrom('compact', 'full', 'expandable') }, { requiredKeys: [] }),
      evaluation: fc.record(
        { criteria: fc.array(fc.constantFrom('polite', 'solved').map((id) => ({ id, name: id, conversation_goal_prompt: `Was it ${id}?` })), { maxLength: 2 }) },
        { requiredKeys: [] },
      ),
      data_collection: fc.dictionary(fc.constantFrom('email', 'city'), fc.constantFrom({ type: 'string', description: 'asked for' }), { maxKeys: 2 }),
      auth: fc.record(
        { enable_auth: fc.boolean(), allowlist: fc.array(fc.constantFrom('a.example', 'b.example').map((hostname) => ({ hostname })), { maxLength: 2 }) },
        { requiredKeys: [] },
      ),
      call_limits: fc.record({ daily_limit: fc.integer({ min: 1, max: 1000 }), bursting_enabled: fc.boolean() }, { requiredKeys: [] }),
      privacy: fc.record({ record_voice: fc.boolean(), retention_days: fc.constantFrom(-1, 30) }, { requiredKeys: [] }),
      archived: fc.boolean(),
    },
    { requiredKeys: [] },
  )
  .map((value) => value as unknown as JsonObject);

/** A workflow of a start node, 0–3 subagent, tool or end nodes, and edges between them. */
const workflow: fc.Arbitrary<JsonObject> = fc
  .record({
    nodes: fc.array(fc.constantFrom('override_agent', 'end', 'tool'), { maxLength: 3 }),
    conditions: fc.array(fc.constantFrom('unconditional', 'llm'), { minLength: 3, maxLength: 3 }),
    withPositions: fc.boolean(),
  })
  .map(({ nodes, conditions, withPositions }) => {
    const graph: JsonObject = { nodes: { start_node: { type: 'start', ...(withPositions ? { position: { x: 0, y: 0 } } : {}) } }, edges: {} };
    nodes.forEach((type, i) => {
      const node: JsonObject = { type };
      if (type === 'override_agent') Object.assign(node, { label: `Step ${i}`, additional_prompt: `Step ${i}` });
      if (type === 'tool') node.tools = [{ tool_id: `tool_${i}` }];
      if (withPositions) node.position = { x: 100 * (i + 1), y: 50 };
      (graph.nodes as JsonObject)[`node_${i}`] = node;
      (graph.edges as JsonObject)[`edge_${i}`] = {
        source: i === 0 ? 'start_node' : `node_${i - 1}`,
        target: `node_${i}`,
        forward_condition: conditions[i] === 'llm' ? { type: 'llm', condition: `go to ${i}` } : { type: 'unconditional' },
      };
    });
    return graph;
  });

const agentState = fc.record(
  {
    conversation_config: conversationConfig,
    platform_settings: platformSettings,
    workflow,
    name: fc.constantFrom('Support', 'Sales', 'Büro'),
    tags: fc.array(fc.constantFrom('prod', 'test', 'de'), { maxLength: 2 }),
  },
  { requiredKeys: ['conversation_config'] },
);

/** The sections to send back: each one alone, and all of them. */
const SENT: Section[][] = [...SECTIONS.map((section) => [section]), [...SECTIONS]];

function bodyOf(agent: AgentRead, sections: Section[]): JsonObject {
  return Object.fromEntries(sections.map((section) => [section, agent[section]])) as JsonObject;
}

/** Sends GET's own sections back, on `branchId` (main when undefined), and asserts nothing changed. */
async function expectRoundTripChangesNothing(agentId: string, branchId: string | undefined, label: string): Promise<void> {
  const before = await read(agentId, branchId);
  const versions = await versionCount(agentId);
  const row = await agentRow(agentId);
  const events = await auditCount(agentId);
  for (const sections of SENT) {
    const query = branchId ? `?branch_id=${branchId}` : '';
    const answer = okJson<AgentRead>(await send('PATCH', `/v1/convai/agents/${agentId}${query}`, bodyOf(before, sections)));
    const what = `${label}: PATCH of GET's own ${sections.join(', ')}`;
    expect(answer.version_id, `${what} made a version`).toBe(before.version_id);
    expect(await versionCount(agentId), `${what} stored a version`).toBe(versions);
    expect(await agentRow(agentId), `${what} changed the agent row`).toEqual(row);
    expect(await auditCount(agentId), `${what} recorded a settings change`).toBe(events);
    expect(answer, `${what} answered another agent than GET`).toEqual(before);
  }
}

describe("a PATCH of GET's own body makes no version (property)", () => {
  it('for random agents (configs, workflows, agent-wide settings), each section alone and all at once, on main and on a branch', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(agentState, platformSettings, async (state, branchSettings) => {
        runs++;
        const created = okJson<{ agent_id: string }>(await send('POST', '/v1/convai/agents/create', state));
        const agentId = created.agent_id;
        await expectRoundTripChangesNothing(agentId, undefined, `agent ${agentId} on main`);
        // A branch whose first version came from a body with other (versioned) settings.
        const main = await read(agentId);
        const versioned = Object.fromEntries(Object.entries(branchSettings).filter(([key]) => !['auth', 'call_limits', 'privacy', 'archived'].includes(key)));
        const branch = okJson<{ created_branch_id: string }>(
          await send('POST', `/v1/convai/agents/${agentId}/branches`, { parent_version_id: main.version_id, name: 'Round trip', description: '', platform_settings: versioned }),
        );
        await expectRoundTripChangesNothing(agentId, branch.created_branch_id, `agent ${agentId} on a branch`);
        // A branch created from GET's own sections stores main's document as it is.
        const sent = await read(agentId);
        const copy = okJson<{ created_version_id: string }>(
          await send('POST', `/v1/convai/agents/${agentId}/branches`, { parent_version_id: sent.version_id, name: 'Copy', description: '', ...bodyOf(sent, ['conversation_config', 'platform_settings', 'workflow']) }),
        );
        const hashes = await testApp.store.db.selectFrom('versions').select(['id', 'document_hash']).where('id', 'in', [sent.version_id, copy.created_version_id]).execute();
        expect(new Set(hashes.map((row) => row.document_hash)).size, 'the copy stores the parent document').toBe(1);
      }),
      { numRuns: 20 },
    );
    expect(runs).toBe(20);
  });

  it('also for a version stored without any defaults (as written before they were filled on write)', async () => {
    const { agent_id: agentId } = okJson<{ agent_id: string }>(await send('POST', '/v1/convai/agents/create', { conversation_config: {}, name: 'Bare' }));
    const bare = await storeBareHead(agentId, { conversation_config: { agent: { first_message: 'Bare' } }, platform_settings: {}, workflow: {}, name: 'Bare', tags: [] });
    expect((await read(agentId)).version_id).toBe(bare);
    await expectRoundTripChangesNothing(agentId, undefined, 'a bare stored version');
  });

  it('through the official SDK: get, then update with the same fields (as a pull-edit-push does)', async () => {
    const { agent_id: agentId } = okJson<{ agent_id: string }>(
      await send('POST', '/v1/convai/agents/create', {
        name: 'SDK round trip',
        conversation_config: { agent: { first_message: 'Hi', prompt: { prompt: 'Be brief.' } } },
        platform_settings: { widget: { variant: 'compact' }, call_limits: { daily_limit: 7 } },
        workflow: {
          nodes: { start_node: { type: 'start' }, sub: { type: 'override_agent', label: 'Sub', additional_prompt: 'x' }, done: { type: 'end' } },
          edges: { a: { source: 'start_node', target: 'sub', forward_condition: { type: 'unconditional' } }, b: { source: 'sub', target: 'done', forward_condition: { type: 'llm', condition: 'done' } } },
        },
      }),
    );
    const client = sdk(await listen(testApp), testApp.keys.admin);
    const got = await client.conversationalAi.agents.get(agentId);
    const versions = await versionCount(agentId);
    const updated = await client.conversationalAi.agents.update(agentId, {
      conversationConfig: got.conversationConfig,
      platformSettings: got.platformSettings,
      workflow: got.workflow,
      name: got.name,
      tags: got.tags,
    });
    expect(updated.versionId).toBe(got.versionId);
    expect(await versionCount(agentId)).toBe(versions);
  });
});

describe('merges see only what a read can see', () => {
  it('a branch whose head differs from main only by defaults one stored and the other lacks has nothing to merge', async () => {
    const { agent_id: agentId } = okJson<{ agent_id: string }>(await send('POST', '/v1/convai/agents/create', { conversation_config: { agent: { first_message: 'Same' } }, name: 'Same' }));
    // Main stored without defaults; the branch the same, but with one default spelled out.
    await storeBareHead(agentId, { conversation_config: { agent: { first_message: 'Same' } }, platform_settings: {}, workflow: {}, name: 'Same', tags: [] });
    const main = await read(agentId);
    const { created_branch_id: branchId } = okJson<{ created_branch_id: string }>(
      await send('POST', `/v1/convai/agents/${agentId}/branches`, { parent_version_id: main.version_id, name: 'Bare', description: '' }),
    );
    await storeBareHead(agentId, { conversation_config: { agent: { first_message: 'Same', language: 'en' } }, platform_settings: {}, workflow: {}, name: 'Same', tags: [] }, branchId);
    const merge = await send('POST', `/v1/convai/agents/${agentId}/branches/${branchId}/merge?target_branch_id=${main.main_branch_id}`, { archive_source_branch: false });
    expect(merge.statusCode, merge.body).toBe(409);
    expect(merge.json()).toMatchObject({ detail: { code: 'no_new_changes_to_merge' } });
    expect((await read(agentId)).version_id).toBe(main.version_id);
  });
});

describe('/diff shows only what a read can see', () => {
  it("a PATCH of GET's body with one field changed: one version, and /diff names exactly that field", async () => {
    await fc.assert(
      fc.asyncProperty(agentState, fc.constantFrom(...SENT), async (state, sections) => {
        const { agent_id: agentId } = okJson<{ agent_id: string }>(await send('POST', '/v1/convai/agents/create', state));
        const before = await read(agentId);
        const body = bodyOf(before, [...new Set<Section>([...sections, 'conversation_config'])]);
        const config = structuredClone(body.conversation_config) as { agent: { first_message: string } };
        config.agent.first_message = `${config.agent.first_message} (edited)`;
        const after = okJson<AgentRead>(await send('PATCH', `/v1/convai/agents/${agentId}`, { ...body, conversation_config: config }));
        expect(after.version_id).not.toBe(before.version_id);
        const diff = okJson<{ changes: { section: string; path: string }[] }>(
          await send('GET', `/v1/convai/agents/${agentId}/diff?from_version_id=${before.version_id}&to_version_id=${after.version_id}`),
        );
        expect(diff.changes.map(({ section, path }) => `${section}:${path}`)).toEqual(['conversation_config:agent.first_message']);
      }),
      { numRuns: 12 },
    );
  });

  it('between a version stored without defaults and the same config with them filled: no change', async () => {
    const { agent_id: agentId } = okJson<{ agent_id: string }>(
      await send('POST', '/v1/convai/agents/create', { conversation_config: { agent: { first_message: 'Same' } }, name: 'Same' }),
    );
    const filled = (await read(agentId)).version_id;
    const bare = await storeBareHead(agentId, { conversation_config: { agent: { first_message: 'Same' } }, platform_settings: {}, workflow: {}, name: 'Same', tags: [] });
    const diff = okJson<{ changes: unknown[] }>(await send('GET', `/v1/convai/agents/${agentId}/diff?from_version_id=${bare}&to_version_id=${filled}`));
    expect(diff.changes).toEqual([]);
  });
});

/** Commits `document` as it is (no validation, no defaults) as the new head of a branch (main by default); returns the version id. */
async function storeBareHead(agentId: string, document: JsonObject, branchId?: string): Promise<string> {
  const context = testApp.app.context;
  return context.write(async ({ trx }) => {
    const agent = await trx.selectFrom('agents').selectAll().where('id', '=', agentId).executeTakeFirstOrThrow();
    const main = await trx.selectFrom('branches').selectAll().where('id', '=', branchId ?? agent.main_branch_id).executeTakeFirstOrThrow();
    const head = await trx.selectFrom('versions').selectAll().where('id', '=', main.head_version_id).executeTakeFirstOrThrow();
    const prepared = await context.documents.prepare(document);
    const version = await insertVersion(trx, context, {
      agentId,
      branchId: main.id,
      seqNo: main.head_seq_no + 1,
      prepared,
      description: 'stored without defaults',
      authorUserId: agent.created_by_user_id,
      parents: { in_branch_parent_id: head.id },
      parentRows: [head],
      committedAtMs: Date.now(),
    });
    await trx.updateTable('branches').set({ head_version_id: version.id, head_seq_no: version.seq_no_in_branch }).where('id', '=', main.id).execute();
    return version.id;
  });
}
