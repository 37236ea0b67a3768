// Figures measured inside one process: the routing decision, a merge preview of two 20 KB
// configs, and the agent list at two sizes.
import { randomUUID } from 'node:crypto';

import { buildApp } from '../src/app.js';
import { openStore } from '../src/db/connect.js';
import { threeWayMerge } from '../src/domain/three-way-merge.js';
import { AgentBuckets, freshBucketTable, routeToBranch } from '../src/domain/traffic-split.js';
import { largeConversationConfig } from '../test/support/builders.js';
import type { BenchDialect } from './databases.js';

type Row = { name: string; value: string; baseline: string; ratio: string; target: string };

function timeEach(runs: number, work: (i: number) => void): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) work(i);
  return Number(process.hrtime.bigint() - started) / runs;
}

function routingDecision(quick: boolean): Row {
  const table = freshBucketTable([
    { branchId: 'agtbrch_main', percentage: 90 },
    { branchId: 'agtbrch_canary', percentage: 10 },
  ]);
  const keys = Array.from({ length: 1024 }, () => `conv_${randomUUID()}`);
  let sink = 0;
  const runs = quick ? 200_000 : 2_000_000;
  const agentId = 'agent_01m89pr0fy6w085wdrfph1rv7psd';
  timeEach(runs / 10, (i) => (sink += routeToBranch(table, agentId, keys[i & 1023]).length));
  const whole = timeEach(runs, (i) => (sink += routeToBranch(table, agentId, keys[i & 1023]).length));
  // What the fast path does: the agent id's part of the hash is computed once per cached agent.
  const buckets = new AgentBuckets(agentId);
  timeEach(runs / 10, (i) => (sink += buckets.routeToBranch(table, keys[i & 1023]).length));
  const hot = timeEach(runs, (i) => (sink += buckets.routeToBranch(table, keys[i & 1023]).length));
  if (sink === 0) throw new Error('unreachable');
  return {
    name: 'routing decision in process (murmur3 + bucket table)',
    value: `${(hot / 1000).toFixed(3)} µs on the fast path (agent id hashed once); ${(whole / 1000).toFixed(3)} µs hashing the whole key`,
    baseline: '—',
    ratio: '—',
    target: '≤ 1 µs',
  };
}

function mergePreview(quick: boolean): Row {
  const base = largeConversationConfig(20_000) as unknown as Record<string, unknown>;
  const tools = (base.agent as { prompt: { tools: Record<string, unknown>[] } }).prompt.tools;
  const edit = (side: string) => {
    const copy = structuredClone(base) as typeof base;
    const copyTools = (copy.agent as { prompt: { tools: Record<string, unknown>[] } }).prompt.tools;
    for (let i = 0; i < 50; i++) {
      const tool = copyTools[i % tools.length];
      tool[`${side}_setting_${i}`] = `${side} value ${i}`;
    }
    return copy;
  };
  const source = edit('source');
  const target = edit('target');
  const runs = quick ? 50 : 500;
  const ns = timeEach(runs, () => threeWayMerge(base as never, source as never, target as never, { winner: 'source' }));
  return {
    name: 'three-way merge of two 20 KB configs, 50 changed paths each side',
    value: `${(ns / 1e6).toFixed(3)} ms`,
    baseline: '—',
    ratio: '—',
    target: '≤ 2 ms',
  };
}

async function listAgents(quick: boolean, dialect: BenchDialect): Promise<Row> {
  const measure = async (agents: number) => {
    const database = await dialect.create();
    try {
      const store = await openStore(database.options);
      const app = await buildApp({ config: { bodyLimitBytes: 1 << 21, logLevel: 'silent' }, store, logger: false });
      const key = (await app.workspaces.bootstrap(undefined))!.key;
      const headers = { 'xi-api-key': key, 'content-type': 'application/json' };
      for (let i = 0; i < agents; i++) {
        await app.server.inject({ method: 'POST', url: '/v1/convai/agents/create', headers, payload: { name: `agent ${i}`, conversation_config: {} } });
      }
      const runs = quick ? 100 : 1_000;
      const started = process.hrtime.bigint();
      for (let i = 0; i < runs; i++) await app.server.inject({ method: 'GET', url: '/v1/convai/agents?page_size=30', headers });
      const micros = Number(process.hrtime.bigint() - started) / 1e3 / runs;
      await store.close();
      return micros;
    } finally {
      await database.drop();
    }
  };
  const small = await measure(10);
  const large = await measure(quick ? 1_000 : 10_000);
  return {
    name: `list agents (page of 30) with ${quick ? '1,000' : '10,000'} agents, ${dialect.label}, in process`,
    value: `${large.toFixed(0)} µs`,
    baseline: `${small.toFixed(0)} µs with 10 agents`,
    ratio: `${(large / small).toFixed(2)}×`,
    target: '≤ 2×',
  };
}

/** The pure figures once (with the first dialect), the database ones on every dialect. */
export async function benchInProcess(quick: boolean, dialect: BenchDialect, first: boolean): Promise<Row[]> {
  return [...(first ? [routingDecision(quick), mergePreview(quick)] : []), await listAgents(quick, dialect)];
}
