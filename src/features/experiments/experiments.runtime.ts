import type { Registry } from 'prom-client';

import type { AppContext } from '../../context.js';
import { type ExperimentCounters, newExperimentCounters, registerExperimentCounters } from './experiment-counters.js';
import { agentsStore } from '../agents/agents.store.js';
import { recordExposures } from './cells.js';
import type { ExposureRow } from './experiments.store.js';
import { byAgent, ExposureRecorder, type ExposureRecorderOptions } from './exposure-recorder.js';

/** What the experiment routes share within one app: counters, the exposure recorder, the public URL. */
export interface ExperimentRuntime {
  counters: ExperimentCounters;
  recorder: ExposureRecorder;
  /** `PUBLIC_URL`: the base of webhook URLs; undefined: taken from the request's Host. */
  publicUrl?: string;
}

const runtimes = new WeakMap<AppContext, ExperimentRuntime>();

/**
 * Writes a batch of routed exposures in one write transaction, agent by agent (an agent deleted
 * since its read is skipped). Returns how many were new.
 */
function exposureWriter(context: AppContext) {
  return (rows: ExposureRow[]): Promise<number> =>
    context.write(async (scope) => {
      // In agent id order: each agent's experiment lock is taken in turn (cells.ts).
      const groups = [...byAgent(rows)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      let recorded = 0;
      for (const [agentId, group] of groups) {
        if (await agentsStore(scope.trx).findById(agentId)) recorded += (await recordExposures(scope, agentId, group)).length;
      }
      return recorded;
    });
}

/**
 * The app's experiment runtime, made on first use (the app wires the recorder to the routed read;
 * `options` apply when it is made: the app asks first).
 */
export function experimentRuntimeOf(context: AppContext, options?: ExposureRecorderOptions): ExperimentRuntime {
  let runtime = runtimes.get(context);
  if (!runtime) {
    const counters = newExperimentCounters();
    runtime = { counters, recorder: new ExposureRecorder(exposureWriter(context), counters, () => context.now(), options) };
    runtimes.set(context, runtime);
  }
  return runtime;
}

/**
 * Wires the experiments into an app: the routed read records exposures (unless told not to: the
 * bench compares both), the counters join the app's metrics. Returns what closing the app runs:
 * the recorder writes what it holds.
 */
export function wireExperiments(
  context: AppContext,
  registry: Registry,
  options: { publicUrl?: string; recordExposures?: boolean; exposureFlushIntervalMs?: number },
): () => Promise<void> {
  const runtime = experimentRuntimeOf(context, { flushIntervalMs: options.exposureFlushIntervalMs });
  runtime.publicUrl = options.publicUrl?.replace(/\/+$/, '');
  registerExperimentCounters(registry, runtime.counters);
  if (options.recordExposures !== false) {
    const { recorder } = runtime;
    context.routing.onRouted = (agentId, unitId, branchId, versionId, deployment) =>
      recorder.record(agentId, unitId, branchId, versionId, deployment.id, deployment.shares.get(branchId));
  }
  return () => runtime.recorder.close();
}
