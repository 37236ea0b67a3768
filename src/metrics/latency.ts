import { Histogram, type Registry } from 'prom-client';

/** Upper bounds of every latency histogram, in seconds: the fast path answers in tens of µs. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * Latencies counted into fixed buckets with no allocation: a few array increments per request,
 * where prom-client's `observe` allocates and hashes labels (~400 ns, measured). For the fast path.
 */
export class LatencyRecorder {
  /** Observations per bucket; the last one is above every bound (+Inf). */
  readonly counts = new Float64Array(LATENCY_BUCKETS_SECONDS.length + 1);
  sumSeconds = 0;

  record(milliseconds: number): void {
    const seconds = milliseconds / 1000;
    let bucket = 0;
    while (bucket < LATENCY_BUCKETS_SECONDS.length && seconds > LATENCY_BUCKETS_SECONDS[bucket]) bucket++;
    this.counts[bucket]++;
    this.sumSeconds += seconds;
  }
}

interface ExposedValue {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string>;
  value: number;
  metricName: string;
}

/**
 * A prom-client histogram read from a `LatencyRecorder` at scrape time. prom-client renders every
 * metric through `getForPromString()` (the text format; `get()` reads it too), so that is what this
 * replaces; a test scrapes it, so a change in prom-client shows.
 */
export class RecordedHistogram extends Histogram {
  private readonly exposedName: string;
  private readonly exposedHelp: string;

  constructor(
    private readonly recorder: LatencyRecorder,
    options: { name: string; help: string; registry: Registry },
  ) {
    super({ name: options.name, help: options.help, buckets: [...LATENCY_BUCKETS_SECONDS], registers: [options.registry] });
    this.exposedName = options.name;
    this.exposedHelp = options.help;
  }

  async getForPromString() {
    const values: ExposedValue[] = [];
    let cumulative = 0;
    LATENCY_BUCKETS_SECONDS.forEach((bound, index) => {
      cumulative += this.recorder.counts[index];
      values.push({ labels: { le: bound }, sharedLabels: {}, value: cumulative, metricName: `${this.exposedName}_bucket` });
    });
    cumulative += this.recorder.counts[LATENCY_BUCKETS_SECONDS.length];
    values.push({ labels: { le: '+Inf' }, sharedLabels: {}, value: cumulative, metricName: `${this.exposedName}_bucket` });
    values.push({ labels: {}, sharedLabels: {}, value: this.recorder.sumSeconds, metricName: `${this.exposedName}_sum` });
    values.push({ labels: {}, sharedLabels: {}, value: cumulative, metricName: `${this.exposedName}_count` });
    return { name: this.exposedName, help: this.exposedHelp, type: 'histogram', aggregator: 'sum', values };
  }
}
