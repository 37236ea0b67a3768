import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

import { patient } from './patience.js';

const bin = path.resolve('bin/branchwise.mjs');
const execFileAsync = promisify(execFile);

/** The node flags of `npm start` (package.json), which every server started here runs with too. */
export const SERVER_NODE_FLAGS: string[] = (() => {
  const [node, ...words] = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts.start.split(' ');
  if (node !== 'node') throw new Error('npm start is expected to run node');
  return words.filter((word) => word.startsWith('--'));
})();

/** The command and arguments of the server as `npm start` runs it, with `args` after the script. */
export function serverCommand(...args: string[]): [string, string[]] {
  return [process.execPath, [...SERVER_NODE_FLAGS, bin, ...args]];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}

export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = patient(20_000)): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await check()) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process printed so far. */
  output(): string;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `node bin/branchwise.mjs` (what `npm start` runs), ready when /healthz answers. It listens on a
 * port the system gives it (PORT=0) and says which: a port picked free beforehand can be taken by
 * another test's server before this one listens, and then the other one would answer /healthz.
 */
export async function startServerProcess(env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  const child = spawn(...serverCommand(), {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let url = '';
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output}`);
      url ||= /^Listening on (http:\/\/[^/\s]+)\//m.exec(output)?.[1] ?? '';
      return url !== '' && (await fetch(`${url}/healthz`).catch(() => undefined))?.ok === true;
    }, 'the server to listen');
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url,
    child,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** `npx branchwise …` as a child process. */
export function runCli(env: NodeJS.ProcessEnv, ...args: string[]) {
  return execFileAsync(process.execPath, [bin, ...args], { env: { ...process.env, ...env } });
}

export interface CliOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npx branchwise …` with its exit code, whatever it is. */
export function runCliOutcome(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliOutcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/**
 * `branchwise … | head -0`: the command's stdout is a pipe whose reading end this process closes
 * as soon as the command is spawned, long before it has loaded and written anything.
 */
export function runCliIntoClosedPipe(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}
