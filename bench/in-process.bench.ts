// Figures measured inside one process: the routing decision, a merge preview of two 20 KB
// configs, commits per second with the storage they add, and the agent list at two sizes.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';

import SqliteDatabase from 'better-sqlite3';

import { buildApp } from '../src/app.js';
import { openStore } from '../src/db/connect.js';
import { threeWayMerge } from '../src/domain/three-way-merge.js';
import { freshBucketTable, routeToBranch } from '../src/domain/traffic-split.js';
import { largeConversationConfig } from '../test/support/builders.js';

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
  timeEach(runs / 10, (i) => (sink += routeToBranch(table, 'agent_01m89pr0fy6w085wdrfph1rv7psd', keys[i & 1023]).length));
  const ns = timeEach(runs, (i) => (sink += routeToBranch(table, 'agent_01m89pr0fy6w085wdrfph1rv7psd', keys[i & 1023]).length));
  if (sink === 0) throw new Error('unreachable');
  return { name: 'routing decision in process (murmur3 + bucket table)', value: `${(ns / 1000).toFixed(3)} µs`, baseline: '—', ratio: '—', target: '≤ 1 µs' };
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

async function commits(quick: boolean): Promise<Row> {
  const dir = mkdtempSync(path.join(tmpdir(), 'branchwise-bench-commits-'));
  try {
    const store = await openStore({ dataDir: dir });
    const app = await buildApp({ config: { bodyLimitBytes: 1 << 21, logLevel: 'silent' }, store, logger: false });
    const key = (await app.workspaces.bootstrap(undefined))!.key;
    const headers = { 'xi-api-key': key, 'content-type': 'application/json' };
    const config = largeConversationConfig(20_000);
    const created = await app.server.inject({ method: 'POST', url: '/v1/convai/agents/create', headers, payload: { conversation_config: config } });
    const agentId = created.json<{ agent_id: string }>().agent_id;
    const sqlite = store.sqlite!;
    const used = () => {
      sqlite.pragma('wal_checkpoint(TRUNCATE)');
      return ((sqlite.pragma('page_count', { simple: true }) as number) - (sqlite.pragma('freelist_count', { simple: true }) as number)) * (sqlite.pragma('page_size', { simple: true }) as number);
    };
    const count = quick ? 200 : 1_000;
    const before = used();
    const started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      await app.server.inject({
        method: 'PATCH',
        url: `/v1/convai/agents/${agentId}`,
        headers,
        payload: { conversation_config: { agent: { prompt: { temperature: (i % 100) / 100 + 0.001 } } } },
      });
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const perCommit = (used() - before) / count;
    await store.close();

    // Baseline: raw better-sqlite3 inserts of the same ~20 KB document, one transaction each.
    const raw = new SqliteDatabase(path.join(dir, 'raw.sqlite'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
    raw.exec('create table documents (id integer primary key, body text not null)');
    const insert = raw.prepare('insert into documents (body) values (?)');
    const document = JSON.stringify(config);
    const rawStarted = process.hrtime.bigint();
    for (let i = 0; i < count; i++) insert.run(`${document}${i}`);
    const rawSeconds = Number(process.hrtime.bigint() - rawStarted) / 1e9;
    raw.close();
    return {
      name: 'commits via PATCH (20 KB config, one field), SQLite, in process (inject: no socket)',
      value: `${Math.round(count / seconds)} commits/s; ${Math.round(perCommit)} bytes stored per commit`,
      baseline: `raw better-sqlite3 insert of the document: ${Math.round(count / rawSeconds)} inserts/s`,
      ratio: `${(count / seconds / (count / rawSeconds)).toFixed(3)}×`,
      target: '≥ 2,000 commits/s; ≤ 2 KB per commit',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function listAgents(quick: boolean): Promise<Row> {
  const measure = async (agents: number) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'branchwise-bench-list-'));
    try {
      const store = await openStore({ dataDir: dir });
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
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const small = await measure(10);
  const large = await measure(quick ? 1_000 : 10_000);
  return {
    name: `list agents (page of 30) with ${quick ? '1,000' : '10,000'} agents, in process`,
    value: `${large.toFixed(0)} µs`,
    baseline: `${small.toFixed(0)} µs with 10 agents`,
    ratio: `${(large / small).toFixed(2)}×`,
    target: '≤ 2×',
  };
}

export async function benchInProcess(quick: boolean): Promise<Row[]> {
  return [routingDecision(quick), mergePreview(quick), await commits(quick), await listAgents(quick)];
}
