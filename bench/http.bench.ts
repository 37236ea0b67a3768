// The hot path over HTTP (bench/README.md, targets): `GET agent` for a ~20 KB config — routed by a fresh
// conversation id under a 90/10 split, at a branch head, at a version — against a bare node:http
// server returning the same bytes, both measured by wrk in its own process in the same run.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { buildApp } from '../src/app.js';
import { openStore, type StoreOptions } from '../src/db/connect.js';
import type { BenchDialect } from './databases.js';
import { largeConversationConfig } from '../test/support/builders.js';
import { freePort, serverCommand, waitFor } from '../test/support/server-process.js';

export const KEY = 'sk_bench_admin_key';

export interface WrkResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

function ensureWrk(): void {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (error) {
    // wrk prints its version and exits 1; only a missing binary throws ENOENT.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return;
    execFileSync('apt-get', ['install', '-y', '-qq', 'wrk'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
}

function toMs(value: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!match) throw new Error(`cannot read wrk latency ${value}`);
  const number = Number(match[1]);
  return match[2] === 'us' ? number / 1000 : match[2] === 's' ? number * 1000 : number;
}

/**
 * With two or more cores, each server runs on core 0 and wrk on core 1, so that the load generator
 * and the server under test do not take turns on the same core (which made p99 swing run to run).
 */
const pinned = os.cpus().length >= 2 && hasTaskset();

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function onCore(core: number, command: string, args: string[]): [string, string[]] {
  return pinned ? ['taskset', ['-c', String(core), command, ...args]] : [command, args];
}

function wrkCommand(url: string, script: string, seconds: number, connections: number): [string, string[]] {
  return onCore(1, 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url]);
}

function parseWrk(output: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output);
  const p50 = /\n\s+50%\s+(\S+)/.exec(output);
  const p99 = /\n\s+99%\s+(\S+)/.exec(output);
  if (!rps || !p50 || !p99) throw new Error(`cannot read wrk output:\n${output}`);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  if (non2xx) throw new Error(`${non2xx[1]} requests failed during the run:\n${output}`);
  return { requestsPerSecond: Number(rps[1]), p50Ms: toMs(p50[1]), p99Ms: toMs(p99[1]) };
}

export function wrk(url: string, script: string, seconds: number, env: Record<string, string>, connections = 50): WrkResult {
  const [command, args] = wrkCommand(url, script, seconds, connections);
  return parseWrk(execFileSync(command, args, { encoding: 'utf8', env: { ...process.env, ...env } }));
}

/** `wrk` without waiting: several run at once (each on wrk's core). */
export async function wrkAsync(url: string, script: string, seconds: number, env: Record<string, string>, connections = 50): Promise<WrkResult> {
  const [command, args] = wrkCommand(url, script, seconds, connections);
  const { stdout } = await promisify(execFile)(command, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  return parseWrk(stdout);
}

export async function startProcess(command: string, args: string[], env: NodeJS.ProcessEnv, ready: () => Promise<boolean>): Promise<ChildProcess> {
  const [pinnedCommand, pinnedArgs] = onCore(0, command, args);
  const child = spawn(pinnedCommand, pinnedArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor(ready, `${args.join(' ')} to listen`);
  return child;
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** A store with one ~20 KB agent, a canary branch and a 90/10 split. */
export async function seed(options: StoreOptions) {
  const store = await openStore(options);
  const app = await buildApp({ config: { bodyLimitBytes: 1 << 21, logLevel: 'silent' }, store, logger: false });
  await app.workspaces.bootstrap(KEY);
  const headers = { 'xi-api-key': KEY, 'content-type': 'application/json' };
  const created = await app.server.inject({
    method: 'POST',
    url: '/v1/convai/agents/create',
    headers,
    payload: { name: 'Bench agent', conversation_config: largeConversationConfig(20_000) },
  });
  const agentId = created.json<{ agent_id: string }>().agent_id;
  const main = (await app.server.inject({ method: 'GET', url: `/v1/convai/agents/${agentId}`, headers })).json<{ version_id: string; main_branch_id: string }>();
  const canary = (
    await app.server.inject({
      method: 'POST',
      url: `/v1/convai/agents/${agentId}/branches`,
      headers,
      payload: { parent_version_id: main.version_id, name: 'canary', description: '', conversation_config: { agent: { first_message: 'Hi from the canary' } } },
    })
  ).json<{ created_branch_id: string }>();
  const split = (branch: string, percentage: number) => ({ branch_id: branch, deployment_strategy: { type: 'percentage', traffic_percentage: percentage } });
  await app.server.inject({
    method: 'POST',
    url: `/v1/convai/agents/${agentId}/deployments`,
    headers,
    payload: { deployment_request: { requests: [split(main.main_branch_id, 90), split(canary.created_branch_id, 10)] } },
  });
  await app.server.close();
  await store.close();
  return { agentId, mainBranchId: main.main_branch_id, versionId: main.version_id };
}

export interface HttpFigure {
  name: string;
  value: string;
  baseline: string;
  ratio: number;
  p99Ratio: number;
  target: string;
}

export const HTTP_SETUP = pinned
  ? 'Servers pinned to core 0, wrk (1 thread, 50 connections) to core 1 (taskset).'
  : 'wrk (1 thread, 50 connections) and the servers share the cores (no taskset).';

/**
 * Each figure is measured `rounds` times, each round on fresh processes of both servers and
 * interleaved with the bare baseline (bare, routed, head, version), so that drift on the machine
 * hits both sides; the round with the median ratio is reported.
 */
export async function benchHttp(seconds: number, rounds: number, dialect: BenchDialect): Promise<HttpFigure[]> {
  ensureWrk();
  const dir = mkdtempSync(path.join(tmpdir(), 'branchwise-bench-http-'));
  const database = await dialect.create();
  const processes: ChildProcess[] = [];
  try {
    const { agentId, mainBranchId, versionId } = await seed(database.options);
    const agentPath = `/v1/convai/agents/${agentId}`;
    const cases: [string, string, string][] = [
      ['routed GET agent (90/10 split, random conversation ids)', 'routed.lua', agentPath],
      ['GET agent at a branch head', 'fixed.lua', `${agentPath}?branch_id=${mainBranchId}`],
      ['GET agent at a version', 'fixed.lua', `${agentPath}?version_id=${versionId}`],
    ];
    const lua = (name: string) => path.resolve('bench/lua', name);
    const env = (pathname: string) => ({ BENCH_API_KEY: KEY, BENCH_PATH: pathname });
    const bodyFile = path.join(dir, 'body.json');
    let bytes = Buffer.alloc(0);
    // Each round starts both servers afresh: identical runs of one process agree closely, but
    // processes differ from one another (by up to a fifth on this kind of machine), so the median
    // is taken over processes, not over runs of one.
    const measured = cases.map(() => [] as { result: WrkResult; bare: WrkResult }[]);
    for (let round = 0; round < rounds; round++) {
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      // The server as users run it (`npm start`), logging at its default level.
      const server = await startProcess(...serverCommand('serve'), { ...database.env, PORT: String(port) }, async () =>
        (await fetch(`${base}/healthz`).catch(() => undefined))?.ok === true,
      );
      processes.push(server);
      const sample = await fetch(`${base}${agentPath}?conversation_id=conv_sample`, { headers: { 'xi-api-key': KEY } });
      bytes = Buffer.from(await sample.arrayBuffer());
      if (sample.status !== 200) throw new Error(`the routed read failed: ${sample.status} ${bytes.toString()}`);
      writeFileSync(bodyFile, bytes);
      const barePort = await freePort();
      const bareServer = await startProcess(process.execPath, [path.resolve('bench/bare-server.mjs'), bodyFile, String(barePort)], {}, async () =>
        (await fetch(`http://127.0.0.1:${barePort}/`).catch(() => undefined))?.ok === true,
      );
      processes.push(bareServer);
      // Warm both servers (JIT, caches) before measuring.
      wrk(`http://127.0.0.1:${barePort}`, lua('fixed.lua'), 1, env('/'));
      for (const [, script, pathname] of cases) wrk(base, lua(script), 1, env(pathname));

      // The baseline gets the same requests from the same script: wrk builds a fixed request once,
      // but runs Lua for every routed one (a fresh conversation id), which costs the load generator
      // as much as it costs the server. The bare server ignores the path.
      const bare = new Map<string, WrkResult>();
      for (const script of new Set(cases.map(([, name]) => name))) bare.set(script, wrk(`http://127.0.0.1:${barePort}`, lua(script), seconds, env('/')));
      cases.forEach(([, script, pathname], index) =>
        measured[index].push({ result: wrk(base, lua(script), seconds, env(pathname)), bare: bare.get(script) as WrkResult }),
      );
      for (const child of processes.splice(0)) await stop(child);
    }
    return cases.map(([name], index) => {
      const byRatio = measured[index].sort((a, b) => a.result.requestsPerSecond / a.bare.requestsPerSecond - b.result.requestsPerSecond / b.bare.requestsPerSecond);
      const ratios = byRatio.map(({ result, bare }) => (result.requestsPerSecond / bare.requestsPerSecond).toFixed(2));
      const { result, bare } = byRatio[Math.floor(byRatio.length / 2)];
      const spread = rounds > 1 ? ` (median of ${rounds} rounds, each on fresh server processes; ratios ${ratios.join(', ')})` : '';
      return {
        name: `${name}, ${(bytes.length / 1024).toFixed(1)} KB, ${dialect.label}`,
        value: `${Math.round(result.requestsPerSecond)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms${spread}`,
        baseline: `bare node:http, same requests: ${Math.round(bare.requestsPerSecond)} req/s, p50 ${bare.p50Ms.toFixed(2)} ms, p99 ${bare.p99Ms.toFixed(2)} ms`,
        ratio: result.requestsPerSecond / bare.requestsPerSecond,
        p99Ratio: result.p99Ms / bare.p99Ms,
        target: '≥ 0.70× req/s, p99 ≤ 2×',
      };
    });
  } finally {
    for (const child of processes) await stop(child);
    rmSync(dir, { recursive: true, force: true });
    await database.drop();
  }
}
