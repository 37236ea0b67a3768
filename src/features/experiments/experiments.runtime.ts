import type { Registry } from 'prom-client';

import type { AppContext } from '../../context.js';
import { type ExperimentCounters, newExperimentCounters, registerExperimentCounters } from './experiment-counters.js';
import { agentsStore } from '../agents/agents.store.js';
import { DEFAULT_EXPERIMENT_RETENTION_DAYS } from '../../config.js';
import type { WriteScope } from '../../db/write.js';
import { type ExperimentScope, recordExposureBatch } from './cells.js';
import type { ExposureBatch } from './exposure-batch.js';
import { ExposureLogs } from './exposure-log.js';
import { ExposureRecorder, type ExposureRecorderOptions } from './exposure-recorder.js';

/** What the experiment routes share within one app: counters, the exposure recorder, the public URL. */
export interface ExperimentRuntime {
  counters: ExperimentCounters;
  recorder: ExposureRecorder;
  /** Which units of each agent have an exposure (exposure-log.ts). */
  exposures: ExposureLogs;
  /** `PUBLIC_URL`: the base of webhook URLs; undefined: taken from the request's Host. */
  publicUrl?: string;
}

const runtimes = new WeakMap<AppContext, ExperimentRuntime>();

/**
 * Writes a batch of routed exposures in one write transaction, agent by agent (an agent deleted
 * since its read is skipped). Returns how many were new.
 */
function exposureWriter(context: AppContext, exposures: ExposureLogs) {
  return (batch: ExposureBatch): Promise<number> =>
    context.write(async (write) => {
      const scope = { ...write, exposures };
      // In agent id order: each agent's experiment lock is taken in turn (cells.ts).
      const groups = [...batch.byAgent()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      let recorded = 0;
      for (const [agentId, group] of groups) {
        if (await agentsStore(scope.trx).exists(agentId)) recorded += (await recordExposureBatch(scope, agentId, group)).length;
      }
      return recorded;
    }, { unguarded: true });
}

/**
 * The app's experiment runtime, made on first use (the app wires the recorder to the routed read;
 * `options` apply when it is made: the app asks first).
 */
export function experimentRuntimeOf(context: AppContext, options?: ExposureRecorderOptions): ExperimentRuntime {
  let runtime = runtimes.get(context);
  if (!runtime) {
    const counters = newExperimentCounters();
    const exposures = new ExposureLogs({ retentionDays: DEFAULT_EXPERIMENT_RETENTION_DAYS, now: () => context.now() });
    runtime = { counters, exposures, recorder: new ExposureRecorder(exposureWriter(context, exposures), counters, () => context.now(), options) };
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
  options: { publicUrl?: string; recordExposures?: boolean; exposureFlushIntervalMs?: number; experimentRetentionDays?: number },
): () => Promise<void> {
  const runtime = experimentRuntimeOf(context, { flushIntervalMs: options.exposureFlushIntervalMs });
  runtime.exposures.retentionDays = options.experimentRetentionDays ?? DEFAULT_EXPERIMENT_RETENTION_DAYS;
  runtime.publicUrl = options.publicUrl?.replace(/\/+$/, '');
  registerExperimentCounters(registry, runtime.counters);
  if (options.recordExposures !== false) {
    const { recorder } = runtime;
    context.routing.onRouted = (agentId, unitId, branchId, versionId, deployment) =>
      recorder.record(agentId, unitId, branchId, versionId, deployment.id, deployment.shares.get(branchId));
  }
  return () => runtime.recorder.close();
}

/** A write's scope with this app's exposure logs: what experiment writes (cells.ts) take. */
export function experimentScope(context: AppContext, scope: WriteScope): ExperimentScope {
  return { ...scope, exposures: experimentRuntimeOf(context).exposures };
}
