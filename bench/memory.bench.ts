// Server RSS after serving many distinct agents (bench/README.md, targets): the caches that grow with the agents
// served are bounded by one byte budget (CACHE_MAX_BYTES), so RSS must level off near the idle
// server's plus that budget instead of growing with every agent.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { buildApp } from '../src/app.js';
import { openStore } from '../src/db/connect.js';
import { largeConversationConfig } from '../test/support/builders.js';
import { freePort, serverCommand } from '../test/support/server-process.js';
import type { BenchDialect } from './databases.js';
import { startProcess, stop } from './http.bench.js';

const KEY = 'sk_bench_memory_key';

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/** `count` agents of ~20 KB, each with its own first message (so each has its own documents). */
async function seedAgents(options: Parameters<typeof openStore>[0], count: number): Promise<string[]> {
  const store = await openStore(options);
  const app = await buildApp({ config: { bodyLimitBytes: 1 << 21, logLevel: 'silent' }, store, logger: false });
  await app.workspaces.bootstrap(KEY);
  const config = largeConversationConfig(20_000);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const created = await app.server.inject({
      method: 'POST',
      url: '/v1/convai/agents/create',
      headers: { 'xi-api-key': KEY, 'content-type': 'application/json' },
      payload: { name: `agent ${i}`, conversation_config: { ...config, agent: { ...config.agent, first_message: `Hello from agent ${i}` } } },
    });
    ids.push(created.json<{ agent_id: string }>().agent_id);
  }
  await app.server.close();
  await store.close();
  return ids;
}

async function readAll(base: string, ids: string[], query: (i: number) => string): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      const response = await fetch(`${base}/v1/convai/agents/${ids[i]}?${query(i)}`, { headers: { 'xi-api-key': KEY } });
      if (response.status !== 200) throw new Error(`GET agent ${ids[i]}: ${response.status}`);
      await response.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

export async function benchMemory(quick: boolean, dialect: BenchDialect) {
  const count = quick ? 1_000 : 10_000;
  // Small enough that the responses rendered (~60 KB per agent) overflow it several times.
  const budgetBytes = (quick ? 16 : 64) * 2 ** 20;
  const database = await dialect.create();
  let server: ChildProcess | undefined;
  try {
    const ids = await seedAgents(database.options, count);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    server = await startProcess(...serverCommand('serve'), { ...database.env, PORT: String(port), CACHE_MAX_BYTES: String(budgetBytes) }, async () =>
      (await fetch(`${base}/healthz`).catch(() => undefined))?.ok === true,
    );
    await readAll(base, ids.slice(0, 10), (i) => `conversation_id=conv_${i}`);
    const idle = rssBytes(server.pid!);
    // Every agent routed and at its head (two rendered responses of ~30 KB), a quarter at a time:
    // bounded caches make RSS level off instead of growing with each quarter.
    const quarters: number[] = [];
    for (let quarter = 0; quarter < 4; quarter++) {
      const some = ids.slice((quarter * count) / 4, ((quarter + 1) * count) / 4);
      await readAll(base, some, (i) => `conversation_id=conv_${i}`);
      await readAll(base, some, () => '');
      quarters.push(rssBytes(server.pid!));
    }
    const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
    const served = quarters[3];
    return {
      name: `server RSS after serving ${count.toLocaleString('en')} distinct ~20 KB agents (routed and head reads), ${dialect.label}`,
      value: `${mb(served)}; after each quarter of the agents: ${quarters.map(mb).join(', ')} (${mb(count * 2 * 30 * 1024)} of responses rendered in all)`,
      baseline: `${mb(idle)} after serving 10 agents`,
      ratio: `growth ${((served - idle) / budgetBytes).toFixed(2)}× the budget; last quarter added ${mb(quarters[3] - quarters[2])}`,
      target: `bounded by the cache's byte budget (CACHE_MAX_BYTES = ${mb(budgetBytes)} here; 256 MB by default)`,
    };
  } finally {
    if (server) await stop(server);
    await database.drop();
  }
}
