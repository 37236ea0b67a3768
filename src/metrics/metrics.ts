import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import { offloaded } from '../compute/offload.js';
import type { AppContext } from '../context.js';
import type { Store } from '../db/connect.js';
import type { RateLimiter } from '../http/rate-limit.js';
import { LATENCY_BUCKETS_SECONDS, type LatencyRecorder, RecordedHistogram } from './latency.js';
import type { WriteMetrics } from './write-metrics.js';

/** What a cache reports about itself. */
interface CacheStatistics {
  hits: number;
  misses: number;
  bytes: number;
  size: number;
}

export interface MetricSources {
  context: AppContext;
  store: Store;
  /** What the fast path answered, counted by the fast path itself (it has no Fastify hooks). */
  fastPath: { served: number; latency: LatencyRecorder };
  /** The route pattern the fast path answers for (its requests are counted under it). */
  fastPathRoute: string;
  limiter?: RateLimiter;
}

export interface AppMetrics {
  /** This app's metrics; `render` adds the process's. */
  registry: Registry;
  writes: WriteMetrics;
  /** One response Fastify sent, by route pattern (never the raw URL: its ids would explode the labels). */
  recordResponse(method: string, route: string, statusCode: number, seconds: number): void;
  contentType: string;
  render(): Promise<string>;
}

let processRegistry: Registry | undefined;

/**
 * prom-client's default process metrics (CPU, memory, event loop, GC), collected once per process:
 * they describe the process, not an app, and each collection installs a GC observer that is never
 * removed and would keep its registry, and every app behind it, alive.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
    new Counter({
      name: 'branchwise_compute_tasks_total',
      help: 'Work over large documents run in a compute worker thread, off the event loop, by task.',
      labelNames: ['task'],
      registers: [processRegistry],
      collect() {
        this.reset();
        for (const [task, count] of offloaded) this.inc({ task }, count);
      },
    });
  }
  return processRegistry;
}

/**
 * One registry per app (tests build many apps in one process; prom-client's global registry would
 * mix them), scraped together with the process metrics. Statistics kept elsewhere (caches, the
 * pool, the fast path, the limiter) are read when scraped, costing nothing per request.
 */
export function createMetrics(sources: MetricSources): AppMetrics {
  const registry = new Registry();
  const registers = [registry];

  const { fastPath, fastPathRoute, limiter } = sources;
  const fastLabels = { method: 'GET', route: fastPathRoute, status_code: '200' } as const;
  let fastCounted = 0;
  const requests = new Counter({
    name: 'branchwise_http_requests_total',
    help: 'HTTP responses by method, route pattern and status code, the fast path included.',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers,
    collect() {
      const served = fastPath.served;
      if (served > fastCounted) this.inc(fastLabels, served - fastCounted);
      fastCounted = served;
    },
  });
  const durations = new Histogram({
    name: 'branchwise_http_request_duration_seconds',
    help: 'Time to answer a request Fastify handled, by method, route pattern and status code (fast path: branchwise_fast_path_duration_seconds).',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [...LATENCY_BUCKETS_SECONDS],
    registers,
  });
  new RecordedHistogram(fastPath.latency, {
    name: 'branchwise_fast_path_duration_seconds',
    help: `Time to answer GET ${fastPathRoute} on the fast path, from the parsed request to the written response.`,
    registry,
  });
  absoluteCounter(registry, 'branchwise_fast_path_responses_total', 'Responses written by the GET agent fast path (it writes no log line).', () => fastPath.served);
  absoluteCounter(registry, 'branchwise_rate_limited_requests_total', 'Requests refused with 429 by the per-key rate limit.', () => limiter?.rejected ?? 0);

  // The services count writes on the context's counters; they are reported here.
  const writes = sources.context.metrics;
  for (const metric of Object.values(writes)) registry.registerMetric(metric);

  cacheMetrics(registry, () => ({
    routing: sources.context.routing,
    rendered: sources.context.caches.rendered,
    stamped: sources.context.caches.stamped,
    sections: sources.context.caches.sections,
    documents: sources.context.documents.cache,
  }));
  databaseMetrics(registry, sources.store);

  return {
    registry,
    writes,
    recordResponse(method, route, statusCode, seconds) {
      const labels = { method, route, status_code: String(statusCode) };
      requests.inc(labels);
      durations.observe(labels, seconds);
    },
    contentType: registry.contentType,
    render: () => Registry.merge([processMetrics(), registry]).metrics(),
  };
}

/** A counter whose total is kept elsewhere and read at scrape time. */
function absoluteCounter(registry: Registry, name: string, help: string, total: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(total());
    },
  });
}

function cacheMetrics(registry: Registry, caches: () => Record<string, CacheStatistics>): void {
  const labelNames = ['cache'] as const;
  const registers = [registry];
  const counter = (name: string, help: string, read: (statistics: CacheStatistics) => number) =>
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [cache, statistics] of Object.entries(caches())) this.inc({ cache }, read(statistics));
      },
    });
  const gauge = (name: string, help: string, read: (statistics: CacheStatistics) => number) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        for (const [cache, statistics] of Object.entries(caches())) this.set({ cache }, read(statistics));
      },
    });
  counter('branchwise_cache_hits_total', 'Cache lookups that found an entry.', (statistics) => statistics.hits);
  counter('branchwise_cache_misses_total', 'Cache lookups that found nothing.', (statistics) => statistics.misses);
  gauge('branchwise_cache_bytes', 'Bytes a cache holds, as it counts them against CACHE_MAX_BYTES.', (statistics) => statistics.bytes);
  gauge('branchwise_cache_entries', 'Entries a cache holds.', (statistics) => statistics.size);
}

/** PostgreSQL's pool; SQLite has none (one embedded connection for writes), so only its dialect shows. */
function databaseMetrics(registry: Registry, store: Store): void {
  const registers = [registry];
  new Gauge({ name: 'branchwise_db_info', help: 'The database in use (value 1).', labelNames: ['dialect'] as const, registers }).set({ dialect: store.dialect }, 1);
  const pool = store.pool;
  if (!pool) return;
  new Gauge({
    name: 'branchwise_db_pool_connections',
    help: 'PostgreSQL pool connections: state="busy" (checked out) or "idle".',
    labelNames: ['state'] as const,
    registers,
    collect() {
      this.set({ state: 'idle' }, pool.idleCount);
      this.set({ state: 'busy' }, pool.totalCount - pool.idleCount);
    },
  });
  new Gauge({
    name: 'branchwise_db_pool_max_connections',
    help: 'Most connections the PostgreSQL pool opens.',
    registers,
    collect() {
      this.set(pool.options.max ?? 10);
    },
  });
  new Gauge({
    name: 'branchwise_db_pool_waiting_requests',
    help: 'Queries waiting for a free PostgreSQL pool connection.',
    registers,
    collect() {
      this.set(pool.waitingCount);
    },
  });
}
