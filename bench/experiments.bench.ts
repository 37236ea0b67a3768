// Issue 20's figures: what recording exposures costs the routed read (on against off, same run),
// outcome events ingested per second, and the results over 1,000,000 exposures.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';

import { buildApp } from '../src/app.js';
import { openStore } from '../src/db/connect.js';
import { recordExposures, recordValues, type ValueEvent } from '../src/features/experiments/cells.js';
import type { ExposureRow } from '../src/features/experiments/experiments.store.js';
import { experimentScope } from '../src/features/experiments/experiments.runtime.js';
import { freePort, SERVER_NODE_FLAGS } from '../test/support/server-process.js';
import type { BenchDialect } from './databases.js';
import { KEY, seed, startProcess, stop, wrkAsync, type WrkResult } from './http.bench.js';

interface Row {
  name: string;
  value: string;
  baseline: string;
  ratio: string;
  target: string;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * The routed read with recording on against off, in the same process: each of `processes` fresh
 * servers (`recording-switch.ts`: the server as `npm start` runs it, recording switched over a
 * control port) alone on the servers' core, wrk's routed script on the other (a fresh conversation
 * id per request: every read is a new exposure, the worst case), windows of `seconds` alternating
 * on, off, off, on, … (so that a drift within the process weighs on both alike), after 5 s of warm-up
 * each way. Switching off first writes what was buffered. Reported: the mean of the adjacent
 * on/off windows' ratios of every process with its 95% interval (the target is judged by it), their
 * median, and all windows' requests on against off. One process per side (the method before) could
 * not tell 5% from 15%: two servers started alike keep speeds up to 15% apart for as long as they
 * run (bench/README.md). Ratios of single pairs spread by ±10% on this kind of machine, so many
 * short windows tell more than a few long ones (16 pairs of 5 s: a median's 95% interval ±0.08 in
 * one run; 32 of 3 s: about ±0.03).
 */
async function exposureCost(seconds: number, windows: number, processes: number, dialect: BenchDialect): Promise<Row> {
  const script = path.resolve('bench/lua/routed.lua');
  const ratios: number[] = [];
  const totals = { on: 0, off: 0 };
  const p99s = { on: [] as number[], off: [] as number[] };
  for (let index = 0; index < processes; index++) {
    const database = await dialect.create();
    let child: ChildProcess | undefined;
    try {
      const { agentId } = await seed(database.options);
      // Two probes in a row may be handed the same free port.
      const port = await freePort();
      let controlPort = await freePort();
      while (controlPort === port) controlPort = await freePort();
      const base = `http://127.0.0.1:${port}`;
      child = await startProcess(
        process.execPath,
        [...SERVER_NODE_FLAGS, '--import', 'tsx', path.resolve('bench/recording-switch.ts')],
        { ...database.env, PORT: String(port), CONTROL_PORT: String(controlPort), RECORD_EXPOSURES: 'true' },
        async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.ok === true,
      );
      const recording = async (on: boolean) => {
        const response = await fetch(`http://127.0.0.1:${controlPort}/${on ? 'on' : 'off'}`, { method: 'POST' });
        if (response.status !== 204) throw new Error(`switching recording ${on ? 'on' : 'off'}: ${response.status}`);
      };
      const env = { BENCH_API_KEY: KEY, BENCH_PATH: `/v1/convai/agents/${agentId}` };
      const run = async (on: boolean, secs: number) => {
        await recording(on);
        return wrkAsync(base, script, secs, env, 50);
      };
      await run(true, 5);
      await run(false, 5);
      let previous: { on: boolean; result: WrkResult } | undefined;
      for (let window = 0; window < windows; window++) {
        // on, off, off, on, on, off, …
        const on = Math.floor((window + 1) / 2) % 2 === 0;
        const result = await run(on, seconds);
        totals[on ? 'on' : 'off'] += result.requestsPerSecond;
        p99s[on ? 'on' : 'off'].push(result.p99Ms);
        if (previous && previous.on !== on) {
          const [onResult, offResult] = on ? [result, previous.result] : [previous.result, result];
          ratios.push(onResult.requestsPerSecond / offResult.requestsPerSecond);
          previous = undefined;
        } else previous = { on, result };
      }
    } finally {
      if (child) await stop(child);
      await database.drop();
    }
  }
  const sorted = [...ratios].sort((a, b) => a - b);
  const overall = totals.on / totals.off;
  const perSide = (processes * windows) / 2;
  const mean = ratios.reduce((sum, ratio) => sum + ratio, 0) / ratios.length;
  const variance = ratios.reduce((sum, ratio) => sum + (ratio - mean) ** 2, 0) / Math.max(1, ratios.length - 1);
  // Normal approximation: with 32 pairs, Student's t would widen it by 4%.
  const halfWidth = 1.96 * Math.sqrt(variance / ratios.length);
  return {
    name: `routed GET agent with exposure recording on (a new conversation id per request), ${dialect.label}; against off in the same process, windows alternating`,
    value: `${Math.round(totals.on / perSide)} req/s, p99 ${median(p99s.on).toFixed(2)} ms (${processes} fresh servers × ${windows} windows of ${seconds} s; on/off ratios of adjacent windows ${sorted.map((ratio) => ratio.toFixed(2)).join(', ')})`,
    baseline: `recording off, same requests, same processes: ${Math.round(totals.off / perSide)} req/s, p99 ${median(p99s.off).toFixed(2)} ms`,
    ratio: `${mean.toFixed(3)}× req/s (mean of ${ratios.length} pairs, 95% interval ${(mean - halfWidth).toFixed(3)}–${(mean + halfWidth).toFixed(3)}; median ${median(sorted).toFixed(3)}×; all windows ${overall.toFixed(3)}×)`,
    target: '≥ 0.95×',
  };
}

async function benchApp(dialect: BenchDialect) {
  const database = await dialect.create();
  const store = await openStore(database.options);
  const app = await buildApp({ config: { bodyLimitBytes: 1 << 21, logLevel: 'silent', recordExposures: false }, store, logger: false });
  await app.workspaces.bootstrap(KEY);
  const headers = { 'xi-api-key': KEY, 'content-type': 'application/json' };
  const inject = async <T>(method: 'GET' | 'POST', url: string, payload?: unknown): Promise<T> => {
    const response = await app.server.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }) });
    if (response.statusCode !== 200) throw new Error(`${method} ${url}: ${response.statusCode} ${response.body.slice(0, 300)}`);
    return response.json() as T;
  };
  const { agent_id: agentId } = await inject<{ agent_id: string }>('POST', '/v1/convai/agents/create', { name: 'Experiment', conversation_config: {} });
  const main = await inject<{ main_branch_id: string; version_id: string }>('GET', `/v1/convai/agents/${agentId}`);
  const branch = await inject<{ created_branch_id: string; created_version_id: string }>('POST', `/v1/convai/agents/${agentId}/branches`, {
    parent_version_id: main.version_id,
    name: 'candidate',
    description: '',
  });
  const split = (branchId: string) => ({ branch_id: branchId, deployment_strategy: { type: 'percentage', traffic_percentage: 50 } });
  await inject('POST', `/v1/convai/agents/${agentId}/deployments`, { deployment_request: { requests: [split(main.main_branch_id), split(branch.created_branch_id)] } });
  const deployment = await store.db.selectFrom('deployments').select('id').where('agent_id', '=', agentId).where('is_active', '=', 1).executeTakeFirstOrThrow();
  return {
    app,
    store,
    inject,
    agentId,
    arms: [
      { branchId: main.main_branch_id, versionId: main.version_id },
      { branchId: branch.created_branch_id, versionId: branch.created_version_id },
    ],
    deploymentId: deployment.id,
    async close() {
      await app.server.close();
      await store.close();
      await database.drop();
    },
  };
}

/** Outcome events through `POST …/outcomes`, 1,000 a request, every unit exposed (the cells move with each). */
async function outcomeIngestion(quick: boolean, dialect: BenchDialect): Promise<Row> {
  const bench = await benchApp(dialect);
  try {
    const units = quick ? 20_000 : 100_000;
    const nowMs = Date.now();
    for (let start = 0; start < units; start += 5_000) {
      const rows: ExposureRow[] = [];
      for (let i = start; i < start + 5_000; i++) {
        const arm = bench.arms[i % 2];
        rows.push({ agent_id: bench.agentId, unit_id: `u${i}`, branch_id: arm.branchId, version_id: arm.versionId, deployment_id: bench.deploymentId, probability: 0.5, exposed_at_ms: nowMs, source: 'routed' });
      }
      await bench.app.context.write((scope) => recordExposures(experimentScope(bench.app.context, scope), bench.agentId, rows));
    }
    await bench.inject('POST', `/v1/convai/agents/${bench.agentId}/metrics`, { metric_key: 'csat', kind: 'mean', higher_is_better: true, source: { type: 'event' } });
    const started = performance.now();
    for (let start = 0; start < units; start += 1_000) {
      const events = Array.from({ length: 1_000 }, (_, i) => ({ conversation_id: `u${start + i}`, metric_key: 'csat', value: (start + i) % 5, idempotency_key: `e${start + i}` }));
      await bench.inject('POST', `/v1/convai/agents/${bench.agentId}/outcomes`, { events });
    }
    const perSecond = units / ((performance.now() - started) / 1000);
    return {
      name: `outcome events ingested (POST …/outcomes, 1,000 a request, each unit exposed: value, cell, coverage), ${dialect.label}`,
      value: `${Math.round(perSecond)} events/s over ${units.toLocaleString('en')}`,
      baseline: '—',
      ratio: '—',
      target: dialect.label === 'SQLite' ? '≥ 5,000 events/s' : '—',
    };
  } finally {
    await bench.close();
  }
}

/** `GET …/experiment-results` over 1,000,000 exposures with values (read from the cells). */
async function resultsOverMillion(quick: boolean, dialect: BenchDialect): Promise<Row> {
  const bench = await benchApp(dialect);
  try {
    const exposures = quick ? 100_000 : 1_000_000;
    const days = 30;
    const nowMs = Date.now();
    const batch = 10_000;
    for (let start = 0; start < exposures; start += batch) {
      const rows: ExposureRow[] = [];
      const values: ValueEvent[] = [];
      for (let i = start; i < start + batch; i++) {
        const arm = bench.arms[i % 2];
        const exposedAtMs = nowMs - (i % days) * 86_400_000;
        rows.push({ agent_id: bench.agentId, unit_id: `u${i}`, branch_id: arm.branchId, version_id: arm.versionId, deployment_id: bench.deploymentId, probability: 0.5, exposed_at_ms: exposedAtMs, source: 'routed' });
        values.push({ unitId: `u${i}`, metricKey: 'call_successful', value: (i * 7919) % 10 < (i % 2 ? 6 : 5) ? 1 : 0, occurredAtMs: exposedAtMs, idempotencyKey: null });
        values.push({ unitId: `u${i}`, metricKey: 'call_duration_secs', value: 60 + ((i * 31) % 120), occurredAtMs: exposedAtMs, idempotencyKey: null });
      }
      await bench.app.context.write(async (write) => {
        const scope = experimentScope(bench.app.context, write);
        await recordExposures(scope, bench.agentId, rows);
        await recordValues(scope, bench.agentId, values, nowMs);
      });
    }
    const url = `/v1/convai/agents/${bench.agentId}/experiment-results`;
    await bench.inject('GET', url);
    const times: number[] = [];
    for (let run = 0; run < (quick ? 5 : 21); run++) {
      const started = performance.now();
      await bench.inject('GET', url);
      times.push(performance.now() - started);
    }
    const cells = await bench.store.db.selectFrom('outcome_cells').select((eb) => eb.fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
    return {
      name: `experiment results over ${exposures.toLocaleString('en')} exposures with two metrics (${days} days, ${Number(cells.count)} outcome cells), ${dialect.label}`,
      value: `median ${median(times).toFixed(1)} ms, worst ${Math.max(...times).toFixed(1)} ms (${times.length} reads)`,
      baseline: '—',
      ratio: '—',
      target: '≤ 200 ms',
    };
  } finally {
    await bench.close();
  }
}

export async function benchExperiments(quick: boolean, dialect: BenchDialect): Promise<Row[]> {
  return [await exposureCost(quick ? 2 : 3, quick ? 4 : 16, quick ? 1 : 4, dialect), await outcomeIngestion(quick, dialect), await resultsOverMillion(quick, dialect)];
}
