import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { buildApp } from '../src/app.js';
import { offloaded, setLargeValues } from '../src/compute/offload.js';
import { openStore } from '../src/db/connect.js';
import { jsonValue } from './domain/json-arbitraries.js';
import { injectAs, startTestApp, type TestApp } from './support/test-app.js';

// Issue 14, defect 3: work over a large document (validation, patching, merging, encoding,
// rendering, comparing) runs in a compute worker thread, off the event loop. The worker runs the
// same functions, so every answer must be the same whether the work runs here or there: each
// scenario below runs twice, once with everything sent to the workers and once with nothing, and
// the answers (ids and times aside) must be equal, errors included. The bench measures what this
// is for: bench/event-loop.bench.ts.

let testApp: TestApp;

// A clock a second further on at every reading: no two commits share a millisecond, so which one is
// later (the merge's default winner) does not depend on how fast each run happens to be.
let time = Date.UTC(2026, 0, 1);
const now = () => (time += 1_000);

beforeAll(async () => {
  testApp = await startTestApp({ now });
});

afterAll(async () => {
  setLargeValues(1_000);
  await testApp.close();
});

afterEach(() => setLargeValues(1_000));

/** A new app on the same database: every cache starts cold. */
async function restart(): Promise<void> {
  await testApp.app.server.close();
  await testApp.store.close();
  testApp.store = await openStore(testApp.database.options);
  testApp.app = await buildApp({ config: { bodyLimitBytes: 2 * 1024 * 1024, logLevel: 'silent' }, store: testApp.store, now, logger: false });
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const ID = /^(agent|agtbrch|agtvrsn|agtmrgp)_[A-Za-z0-9]+$/;
const TIME = /(_unix_secs|_at|_at_ms)$/;

/** An answer without what differs between two runs of a scenario: ids (numbered by first use) and times. */
function normalized(value: Json, ids: Map<string, string>, key = ''): Json {
  if (typeof value === 'string') {
    if (!ID.test(value)) return value;
    if (!ids.has(value)) ids.set(value, `${value.split('_')[0]}#${ids.size}`);
    return ids.get(value)!;
  }
  if (typeof value === 'number' && TIME.test(key)) return 0;
  if (Array.isArray(value)) return value.map((item) => normalized(item, ids));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([member]) => member !== 'request_id')
        .map(([member, child]) => [member, normalized(child, ids, member)]),
    );
  }
  return value;
}

interface Scenario {
  create: Json;
  commit: Json;
  branch: Json;
  draft: Json;
}

const toolName = fc.oneof(fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/), fc.constant('not a valid name!'));
const tool = fc.record({ type: fc.constant('system'), name: toolName, description: fc.string({ maxLength: 20 }), params: fc.constant({ system_tool_type: 'end_call' }) });
const conversationConfig = fc.record(
  {
    agent: fc.record({
      first_message: fc.string({ maxLength: 40 }),
      prompt: fc.record(
        { prompt: fc.string({ maxLength: 200 }), temperature: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constant('hot')), tools: fc.array(tool, { maxLength: 4 }) },
        { requiredKeys: [] },
      ),
    }, { requiredKeys: [] }),
    x_extra: jsonValue,
  },
  { requiredKeys: [] },
);
const workflow = fc.record({
  nodes: fc.dictionary(fc.stringMatching(/^n[0-9]{1,2}$/), fc.record({ type: fc.constant('override_agent'), label: fc.string({ maxLength: 10 }) }), { maxKeys: 3 }),
  edges: fc.constant({}),
});
const scenario: fc.Arbitrary<Scenario> = fc.record({
  create: fc.record({ name: fc.string({ maxLength: 20 }), conversation_config: conversationConfig, workflow }, { requiredKeys: ['conversation_config'] }),
  commit: fc.record({ conversation_config: conversationConfig, platform_settings: fc.record({ x_setting: jsonValue }, { requiredKeys: [] }) }, { requiredKeys: [] }),
  branch: fc.record({ conversation_config: conversationConfig, workflow }, { requiredKeys: [] }),
  draft: fc.record({ conversation_config: conversationConfig, workflow }),
}) as fc.Arbitrary<Scenario>;

/** Runs a scenario from a fresh agent and returns every answer, normalized. */
async function run(input: Scenario): Promise<Json[]> {
  const answers: Json[] = [];
  const ids = new Map<string, string>();
  const key = testApp.keys.admin;
  const send = async (method: 'GET' | 'POST' | 'PATCH', url: string, body?: unknown) => {
    const response = await injectAs(testApp, method, url, key, body);
    const json = (response.body ? response.json() : null) as Json;
    answers.push(normalized({ status: response.statusCode, body: json }, ids));
    return { status: response.statusCode, json: json as Record<string, Json> };
  };
  const created = await send('POST', '/v1/convai/agents/create', input.create);
  if (created.status !== 200) return answers;
  const agentId = created.json.agent_id as string;
  const head = await send('GET', `/v1/convai/agents/${agentId}`);
  const main = head.json.branch_id as string;
  const first = head.json.version_id as string;
  await send('PATCH', `/v1/convai/agents/${agentId}`, input.commit);
  // A read sent back makes no version.
  const again = await send('GET', `/v1/convai/agents/${agentId}`);
  await send('PATCH', `/v1/convai/agents/${agentId}`, {
    conversation_config: again.json.conversation_config,
    platform_settings: again.json.platform_settings,
    workflow: again.json.workflow,
  });
  const branch = await send('POST', `/v1/convai/agents/${agentId}/branches`, { parent_version_id: first, name: 'side', description: '', ...(input.branch as object) });
  await send('POST', `/v1/convai/agents/${agentId}/drafts?branch_id=${main}`, { name: 'draft', platform_settings: {}, ...(input.draft as object) });
  const side = branch.json.created_branch_id as string | undefined;
  if (side) {
    await send('GET', `/v1/convai/agents/${agentId}/branches/${side}/merge-preview?target_branch_id=${main}`);
    await send('POST', `/v1/convai/agents/${agentId}/branches/${side}/merge?target_branch_id=${main}`, { force: true, archive_source_branch: false });
  }
  await restart();
  const last = await send('GET', `/v1/convai/agents/${agentId}`);
  await send('GET', `/v1/convai/agents/${agentId}/versions/diff?from_version_id=${first}&to_version_id=${last.json.version_id as string}`);
  await send('POST', `/v1/convai/agents/${agentId}/branches/${main}/restore`, { version_id: first });
  await send('GET', `/v1/convai/agents/${agentId}?conversation_id=conv_offload`);
  return answers;
}

const total = (counts: Map<string, number>) => [...counts.values()].reduce((sum, count) => sum + count, 0);

describe('work over large documents runs off the event loop (issue 14, defect 3)', () => {
  it('every answer is the same whether the work runs in a compute worker or here', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (input) => {
        setLargeValues(0);
        const before = total(offloaded);
        const there = await run(input);
        setLargeValues(Number.POSITIVE_INFINITY);
        const here = await run(input);
        expect(there).toEqual(here);
        // The first run did send its work to the workers.
        expect(total(offloaded)).toBeGreaterThan(before);
      }),
      { numRuns: Number(process.env.OFFLOAD_RUNS ?? 12) },
    );
  }, 240_000);
});
