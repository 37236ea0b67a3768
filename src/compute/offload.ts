import { availableParallelism } from 'node:os';

import { Piscina } from 'piscina';

import { OVER_BUDGET, withinBudget } from '../domain/work-budget.js';
import { type TaskName, type TaskOutcome, type Tasks, TASKS, taskError } from './tasks.js';

/**
 * Work over a large document runs in a worker thread, so that one tenant's large write cannot
 * hold every tenant's requests (decisions.md D18: no request at or under the body limit blocks the event
 * loop for more than 100 ms). Validation, merge, encoding and rendering cost about 10–25 µs per
 * value on a quiet machine (bench: "The event loop under the largest requests"), several times
 * that on a loaded one, so work over this many values (array items and object members) is sent
 * to a worker; smaller work runs here, where it is cheaper than the trip.
 */
let largeValues = 1_000;

/**
 * Work whose size is not known in advance (encoding what the memo lacks, filling what the render
 * cache lacks) runs here within this many containers (`withinBudget`), else in a worker: a
 * one-field commit to a 20 KB config visits a handful.
 */
export const WORK_BUDGET = 2_000;

/** For tests: send everything to the workers (0), or nothing (Infinity). */
export function setLargeValues(values: number): void {
  largeValues = values;
}

/** `work` here within `WORK_BUDGET`, else the task in a worker. */
export async function withinBudgetOr<T, K extends TaskName>(work: () => T, name: K, ...args: Parameters<Tasks[K]>): Promise<T | ReturnType<Tasks[K]>> {
  if (largeValues === Number.POSITIVE_INFINITY) return work();
  const result = largeValues === 0 ? OVER_BUDGET : withinBudget(WORK_BUDGET, work);
  return result === OVER_BUDGET ? offload(name, ...args) : result;
}

/** Whether the values hold `largeValues` or more array items and object members in all. */
export function isLarge(...values: unknown[]): boolean {
  if (largeValues === 0) return true;
  if (largeValues === Number.POSITIVE_INFINITY) return false;
  let count = 0;
  const stack: unknown[] = [...values];
  while (stack.length > 0) {
    const value = stack.pop();
    if (value === null || typeof value !== 'object') continue;
    const children = Array.isArray(value) ? value : Object.values(value);
    count += children.length;
    if (count >= largeValues) return true;
    for (const child of children) if (child !== null && typeof child === 'object') stack.push(child);
  }
  return false;
}

let pool: Piscina | undefined;

/**
 * Workers start with the first large task (about a second: they load the wire schemas), not with
 * the server: a worker starting beside the hot path took a core from it for that second.
 */
function workers(): Piscina {
  pool ??= new Piscina({
    filename: new URL('./worker.mjs', import.meta.url).href,
    // One core stays with the event loop.
    maxThreads: Math.max(1, Math.min(4, availableParallelism() - 1)),
    minThreads: 0,
    // A worker starts in about a second (it loads the wire schemas): keep it between bursts.
    idleTimeout: 60_000,
  });
  return pool;
}


/** Tasks run in a worker thread, by name, since the process started (for metrics). */
export const offloaded = new Map<TaskName, number>();

/** Runs a task in a worker thread. */
export async function offload<K extends TaskName>(name: K, ...args: Parameters<Tasks[K]>): Promise<ReturnType<Tasks[K]>> {
  offloaded.set(name, (offloaded.get(name) ?? 0) + 1);
  const outcome = (await workers().run({ name, args })) as TaskOutcome;
  if (!outcome.ok) throw taskError(outcome.error);
  return outcome.value as ReturnType<Tasks[K]>;
}

/** Runs a task in a worker when `large`, else here: the same function, so the same result. */
export async function compute<K extends TaskName>(large: boolean, name: K, ...args: Parameters<Tasks[K]>): Promise<ReturnType<Tasks[K]>> {
  if (large) return offload(name, ...args);
  return (TASKS[name] as (...taskArgs: Parameters<Tasks[K]>) => ReturnType<Tasks[K]>)(...args);
}

/** Stops the worker threads (a server's shutdown); the next task starts them again. */
export async function stopCompute(): Promise<void> {
  const stopping = pool;
  pool = undefined;
  await stopping?.destroy();
}
