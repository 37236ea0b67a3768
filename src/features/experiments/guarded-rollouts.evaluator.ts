import type { AppContext } from '../../context.js';
import { acquireLease, newLeaseHolder, releaseLease } from '../../db/leases.js';
import { type EvaluationOutcome, guardedRolloutsService } from './guarded-rollouts.service.js';
import type { GuardedRolloutSources } from './guarded-rollouts.sources.js';
import { guardedRolloutsStore } from './guarded-rollouts.store.js';

/** The lease whose holder evaluates every running rollout (src/db/leases.ts). */
export const GUARDED_ROLLOUTS_LEASE = 'guarded-rollouts';

/** What one tick did: whether this process held the lease, and what each evaluation did. */
export interface EvaluationReport {
  held: boolean;
  outcomes: EvaluationOutcome[];
  failures: { rolloutId: string; error: unknown }[];
}

export interface GuardedRolloutEvaluator {
  /**
   * One tick: when a rollout is running, takes or renews the lease and, holding it, evaluates
   * every running rollout once. What the timer runs; tests call it directly.
   */
  evaluateOnce(): Promise<EvaluationReport>;
  /** Ticks every `intervalMs` until `stop`. */
  start(): void;
  /** Stops ticking, waits for a tick in flight, and gives the lease up. */
  stop(): Promise<void>;
}

export interface EvaluatorOptions {
  intervalMs: number;
  sources: GuardedRolloutSources;
  /** Where a failed evaluation is reported (the server's logger). */
  warn(details: Record<string, unknown>, message: string): void;
}

/**
 * Every process runs this timer; only the holder of the lease acts, so a rollout is evaluated
 * once a tick however many processes serve (architecture.md "Background work"). The lease lasts
 * three intervals (at least a second): a holder that dies is replaced within that. Each action is
 * written in a transaction that checks the rollout is as it was read, so even two evaluators
 * overlapping (a holder paused past its lease) act once.
 */
export function guardedRolloutEvaluator(context: AppContext, options: EvaluatorOptions): GuardedRolloutEvaluator {
  const rollouts = guardedRolloutsService(context, options.sources);
  const holder = newLeaseHolder();
  const leaseMs = Math.max(3 * options.intervalMs, 1_000);
  let held = false;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let inFlight: Promise<unknown> = Promise.resolve();

  async function evaluateOnce(): Promise<EvaluationReport> {
    const report: EvaluationReport = { held: false, outcomes: [], failures: [] };
    // Nothing to do costs one indexed read, and no write: most stores never run a rollout.
    if (!(await guardedRolloutsStore(context.db).anyRunning())) return report;
    held = await acquireLease(context.store, GUARDED_ROLLOUTS_LEASE, holder, context.now(), leaseMs);
    report.held = held;
    if (!held) return report;
    for (const row of await guardedRolloutsStore(context.db).running()) {
      try {
        report.outcomes.push(await rollouts.evaluate(row));
      } catch (error) {
        report.failures.push({ rolloutId: row.id, error });
        options.warn({ err: error, guardedRolloutId: row.id, agentId: row.agent_id }, 'guarded rollout evaluation failed');
      }
    }
    return report;
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      inFlight = evaluateOnce()
        .catch((error: unknown) => options.warn({ err: error }, 'guarded rollout evaluation tick failed'))
        .finally(schedule);
    }, options.intervalMs);
    // A server closes without waiting for the next tick.
    timer.unref();
  }

  return {
    evaluateOnce,
    start() {
      stopped = false;
      schedule();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inFlight;
      if (held) {
        held = false;
        await releaseLease(context.store, GUARDED_ROLLOUTS_LEASE, holder).catch(() => undefined);
      }
    },
  };
}
