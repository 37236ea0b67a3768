import { Counter, type Registry } from 'prom-client';

/** What the experiment ingestion counts instead of logging or auditing per event (read when scraped). */
export interface ExperimentCounters {
  exposuresRecorded: number;
  /** Routed exposures dropped because the buffer was full (the read was served all the same). */
  exposuresDropped: number;
  exposureFlushFailures: number;
  webhookRecorded: number;
  webhookDuplicates: number;
  /** Deliveries of another type, or without an agent or conversation id. */
  webhookIgnored: number;
  /** Deliveries naming an agent that is not one of the webhook's workspace. */
  webhookUnknownAgent: number;
  /** Unknown webhook, missing, stale or wrong signature (401). */
  webhookRefused: number;
}

export function newExperimentCounters(): ExperimentCounters {
  return {
    exposuresRecorded: 0,
    exposuresDropped: 0,
    exposureFlushFailures: 0,
    webhookRecorded: 0,
    webhookDuplicates: 0,
    webhookIgnored: 0,
    webhookUnknownAgent: 0,
    webhookRefused: 0,
  };
}

/** Registers the counters in the app's registry, read at each scrape. */
export function registerExperimentCounters(registry: Registry, counters: ExperimentCounters): void {
  new Counter({
    name: 'branchwise_experiment_exposures_total',
    help: 'Routed-read exposures, by outcome: recorded (written), dropped (buffer full), flush_failed (a batch that could not be written).',
    labelNames: ['outcome'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ outcome: 'recorded' }, counters.exposuresRecorded);
      this.inc({ outcome: 'dropped' }, counters.exposuresDropped);
      this.inc({ outcome: 'flush_failed' }, counters.exposureFlushFailures);
    },
  });
  new Counter({
    name: 'branchwise_outcome_webhook_deliveries_total',
    help: 'Post-call webhook deliveries, by result: recorded, duplicate, ignored (another type), unknown_agent, refused (401).',
    labelNames: ['result'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ result: 'recorded' }, counters.webhookRecorded);
      this.inc({ result: 'duplicate' }, counters.webhookDuplicates);
      this.inc({ result: 'ignored' }, counters.webhookIgnored);
      this.inc({ result: 'unknown_agent' }, counters.webhookUnknownAgent);
      this.inc({ result: 'refused' }, counters.webhookRefused);
    },
  });
}
