import type { AppContext } from '../../context.js';
import { acquireLease, newLeaseHolder, releaseLease } from '../../db/leases.js';
import { dropExpiredDays } from './cells.js';
import { experimentScope } from './experiments.runtime.js';

/** The lease whose holder drops expired experiment days (src/db/leases.ts). */
export const EXPERIMENT_RETENTION_LEASE = 'experiment-retention';
/** How often the holder drops expired days: they expire a day at a time. */
export const RETENTION_INTERVAL_MS = 60 * 60 * 1_000;

export interface ExperimentRetention {
  /** One run: takes or renews the lease and, holding it, drops the days past retention. Whether it held it. */
  runOnce(): Promise<boolean>;
  start(): void;
  /** Stops, waits for a run in flight, and gives the lease up. */
  stop(): Promise<void>;
}

/**
 * `EXPERIMENT_RETENTION_DAYS` (0 keeps everything): every process runs the timer, the holder of the
 * lease drops exposures, values, deliveries and cells older than that, whole UTC days at a time
 * (cells.ts `dropExpiredDays`), in one write.
 */
export function experimentRetention(
  context: AppContext,
  options: { retentionDays: number; intervalMs?: number; warn(details: Record<string, unknown>, message: string): void },
): ExperimentRetention {
  const intervalMs = options.intervalMs ?? RETENTION_INTERVAL_MS;
  const holder = newLeaseHolder();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let held = false;
  let inFlight: Promise<unknown> = Promise.resolve();

  async function runOnce(): Promise<boolean> {
    if (options.retentionDays <= 0) return false;
    const nowMs = context.now();
    // Held across runs (two intervals): the holder keeps it; another takes over once it lapses.
    held = await acquireLease(context.store, EXPERIMENT_RETENTION_LEASE, holder, nowMs, 2 * intervalMs);
    if (!held) return false;
    await context.write((scope) => dropExpiredDays(experimentScope(context, scope), options.retentionDays, nowMs));
    return true;
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      inFlight = runOnce()
        .catch((error: unknown) => options.warn({ err: error }, 'experiment retention failed'))
        .finally(schedule);
    }, intervalMs);
    timer.unref();
  }

  return {
    runOnce,
    start: () => {
      if (options.retentionDays > 0) schedule();
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await inFlight;
      if (held) await releaseLease(context.store, EXPERIMENT_RETENTION_LEASE, holder).catch(() => undefined);
    },
  };
}
