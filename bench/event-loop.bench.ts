// The worst event-loop block while a server answers requests at the body limit (decisions.md D18: no
// request at or under the body limit blocks the event loop for more than 100 ms). Each shape is
// built as large as the limits allow (the body limit, MAX_JSON_VALUES, MAX_DOCUMENT_VALUES) and
// sent through every write that takes a config, then read after a restart (cold caches).
// Measures only; asserts nothing. Run alone: `npx tsx bench/event-loop.bench.ts [--quick]`.
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { buildApp } from '../src/app.js';
import { openStore } from '../src/db/connect.js';
import { MAX_JSON_VALUES } from '../src/http/json-body.js';
import type { BenchDialect } from './databases.js';

type Row = { name: string; value: string; baseline: string; ratio: string; target: string };

const BODY_LIMIT = 2 * 1024 * 1024;

/** A body of one shape: `items` made by `item`, as many as fit, wrapped by `wrap`. */
interface Shape {
  name: string;
  item(i: number, variant: string): unknown;
  /** Values an item adds (for the value cap). */
  valuesPerItem: number;
  wrap(items: unknown[]): Record<string, unknown>;
}

const chain = (depth: number, leaf: unknown): unknown => (depth === 0 ? leaf : { d: chain(depth - 1, leaf) });

export const SHAPES: Shape[] = [
  {
    name: 'tools in conversation_config.agent.prompt.tools (validated)',
    item: (i, v) => ({ type: 'system', name: `${v}tool${i}`, description: '', params: { system_tool_type: 'end_call' } }),
    valuesPerItem: 7,
    wrap: (items) => ({ conversation_config: { agent: { prompt: { tools: items } } } }),
  },
  { name: 'small objects in an unknown key', item: (i, v) => ({ i, v }), valuesPerItem: 3, wrap: (items) => ({ conversation_config: { x_items: items } }) },
  { name: 'empty objects in an unknown key', item: () => ({}), valuesPerItem: 1, wrap: (items) => ({ conversation_config: { x_items: items } }) },
  { name: 'numbers in an unknown key', item: (i) => i, valuesPerItem: 1, wrap: (items) => ({ conversation_config: { x_items: items } }) },
  {
    name: 'wide object in an unknown key',
    item: (i, v) => [`${v}k${i}`, i],
    valuesPerItem: 1,
    wrap: (items) => ({ conversation_config: { x_wide: Object.fromEntries(items as [string, number][]) } }),
  },
  { name: 'long strings (300 chars)', item: (i, v) => `${v}${i}`.padEnd(300, 'x'), valuesPerItem: 1, wrap: (items) => ({ conversation_config: { x_strings: items } }) },
  {
    name: 'deep trees (depth 60) in an unknown key',
    item: (i, v) => chain(58, `${v}${i}`),
    valuesPerItem: 59,
    wrap: (items) => ({ conversation_config: { x_deep: items } }),
  },
  {
    name: 'workflow nodes',
    item: (i, v) => [`${v}n${i}`, { type: 'override_agent', label: `${v}${i}`, position: { x: i, y: 0 } }],
    valuesPerItem: 6,
    wrap: (items) => ({ conversation_config: {}, workflow: { nodes: Object.fromEntries(items as [string, unknown][]), edges: {} } }),
  },
];

/** The largest body of a shape under the body limit and `maxValues`, as bytes ready to send. */
export function buildBody(shape: Shape, variant: string, maxValues = MAX_JSON_VALUES, limit = BODY_LIMIT - 1024): Buffer {
  // Values of the wrapping (a generous estimate) and the version description.
  let values = 12;
  const items: unknown[] = [];
  let bytes = JSON.stringify(shape.wrap([])).length;
  for (let i = 0; ; i++) {
    const item = shape.item(i, variant);
    const size = JSON.stringify(item).length + 1;
    if (bytes + size > limit || values + shape.valuesPerItem > maxValues) break;
    bytes += size;
    values += shape.valuesPerItem;
    items.push(item);
  }
  return Buffer.from(JSON.stringify(shape.wrap(items)));
}

interface Figure {
  shape: string;
  worstMs: number;
  worstStep: string;
  statuses: string;
}

async function measureShape(shape: Shape, dialect: BenchDialect): Promise<Figure> {
  const database = await dialect.create();
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  const steps: { step: string; ms: number; wallMs: number; status: number }[] = [];
  let store = await openStore(database.options);
  let app = await buildApp({ config: { bodyLimitBytes: BODY_LIMIT, logLevel: 'silent' }, store, logger: false });
  try {
    const key = (await app.workspaces.bootstrap(undefined))!.key;
    let base = await app.server.listen({ host: '127.0.0.1', port: 0 });
    const send = async (step: string, method: string, path: string, body?: Buffer | object) => {
      const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
      histogram.reset();
      histogram.enable();
      const started = performance.now();
      // A second opinion: the longest gap between ticks of a 1 ms interval.
      let last = performance.now();
      let gap = 0;
      const ticker = setInterval(() => {
        const now = performance.now();
        gap = Math.max(gap, now - last);
        last = now;
      }, 1);
      const response = await fetch(`${base}${path}`, {
        method,
        headers: { 'xi-api-key': key, ...(payload ? { 'content-type': 'application/json' } : {}) },
        body: payload ? new Uint8Array(payload) : undefined,
      });
      const text = await response.text();
      const wallMs = performance.now() - started;
      // One more turn of the loop, so that a block at the very end is recorded.
      await new Promise((resolve) => setTimeout(resolve, 5));
      histogram.disable();
      clearInterval(ticker);
      steps.push({ step, ms: Math.max(histogram.max / 1e6, gap), wallMs, status: response.status });
      if (process.env.BENCH_VERBOSE && response.status >= 400) console.log(step, text.slice(0, 300));
      return { status: response.status, json: () => JSON.parse(text) };
    };
    // Warm up (the first request compiles the schemas), unmeasured: a tenth of the shape.
    const warm = (await send('warm-up', 'POST', '/v1/convai/agents/create', { name: 'warm-up', conversation_config: {} })).json().agent_id;
    await send('warm-up', 'PATCH', `/v1/convai/agents/${warm}`, buildBody(shape, 'w', MAX_JSON_VALUES / 10));
    await send('warm-up', 'GET', `/v1/convai/agents/${warm}`);
    steps.length = 0;
    const bodyA = buildBody(shape, 'a');
    const bodyB = buildBody(shape, 'b');
    const withName = (body: Buffer) => Buffer.concat([Buffer.from('{"name":"big",'), body.subarray(1)]);
    const created = await send('create', 'POST', '/v1/convai/agents/create', withName(bodyA));
    const agentId: string =
      created.status === 200 ? created.json().agent_id : (await send('create (empty)', 'POST', '/v1/convai/agents/create', { conversation_config: {} })).json().agent_id;
    const head = (await send('read', 'GET', `/v1/convai/agents/${agentId}`)).json();
    await send('commit', 'PATCH', `/v1/convai/agents/${agentId}`, bodyB);
    const draft = { conversation_config: {}, platform_settings: {}, workflow: { nodes: {}, edges: {} }, name: 'draft', ...JSON.parse(bodyA.toString()) };
    await send('draft save', 'POST', `/v1/convai/agents/${agentId}/drafts?branch_id=${head.branch_id}`, draft);
    const branch = async (name: string, body: Buffer) => {
      const config = JSON.parse(body.toString()) as Record<string, unknown>;
      const response = await send('branch create with config', 'POST', `/v1/convai/agents/${agentId}/branches`, {
        parent_version_id: head.version_id,
        name,
        description: 'big',
        ...config,
      });
      return response.json().created_branch_id as string;
    };
    // Two sides that each hold most of a request's values, so that the merge of their differences
    // stays within what one version may hold (MAX_DOCUMENT_VALUES): the largest merge there can be.
    const left = await branch('left', buildBody(shape, 'c', MAX_JSON_VALUES * 0.4));
    const right = await branch('right', buildBody(shape, 'd', MAX_JSON_VALUES * 0.4));
    if (left && right) {
      await send('merge preview', 'GET', `/v1/convai/agents/${agentId}/branches/${left}/merge-preview?target_branch_id=${right}`);
      await send('merge', 'POST', `/v1/convai/agents/${agentId}/branches/${left}/merge?target_branch_id=${right}`, { force: true, archive_source_branch: false });
    }
    await app.server.close();
    await store.close();
    store = await openStore(database.options);
    app = await buildApp({ config: { bodyLimitBytes: BODY_LIMIT, logLevel: 'silent' }, store, logger: false });
    base = await app.server.listen({ host: '127.0.0.1', port: 0 });
    await send('read after restart', 'GET', `/v1/convai/agents/${agentId}`);
    await send('routed read after restart', 'GET', `/v1/convai/agents/${agentId}?conversation_id=conv_1`);
    if (right) await send('branch read after restart', 'GET', `/v1/convai/agents/${agentId}?branch_id=${right}`);
  } finally {
    await app.server.close();
    await store.close();
    await database.drop();
  }
  const worst = steps.reduce((a, b) => (b.ms > a.ms ? b : a));
  return {
    shape: shape.name,
    worstMs: worst.ms,
    worstStep: worst.step,
    statuses: steps.map((step) => `${step.step} ${step.status} ${step.ms.toFixed(0)} ms (${step.wallMs.toFixed(0)} ms)`).join(', '),
  };
}

export async function benchEventLoop(quick: boolean, dialect: BenchDialect): Promise<Row[]> {
  const rows: Row[] = [];
  for (const shape of (quick ? SHAPES.slice(0, 3) : SHAPES).filter((candidate) => !process.env.BENCH_SHAPE || candidate.name.includes(process.env.BENCH_SHAPE))) {
    const figure = await measureShape(shape, dialect);
    rows.push({
      name: `worst event-loop block at the body limit: ${figure.shape}, ${dialect.label}`,
      value: `${figure.worstMs.toFixed(0)} ms (${figure.worstStep})`,
      baseline: figure.statuses,
      ratio: '—',
      target: '≤ 100 ms',
    });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { benchDialects } = await import('./databases.js');
  const { dialects, stop } = await benchDialects();
  try {
    const only = process.env.BENCH_DIALECT;
    for (const dialect of dialects.filter((candidate) => !only || candidate.label === only)) {
      for (const row of await benchEventLoop(process.argv.includes('--quick'), dialect)) console.log(`${row.name}: ${row.value}\n    ${row.baseline}`);
    }
  } finally {
    stop();
  }
}
