/** Days of experiment data kept by default (`EXPERIMENT_RETENTION_DAYS`). */
export const DEFAULT_EXPERIMENT_RETENTION_DAYS = 90;

/** The default byte budget of the caches that grow with the number of agents served. */
export const DEFAULT_CACHE_MAX_BYTES = 256 * 1024 * 1024;

/**
 * How long a connection may take over each part of an exchange, in milliseconds (0 = no limit).
 * They bound what a slow client (slowloris: headers or a body a byte at a time) can hold.
 */
export interface HttpTimeouts {
  /** All request headers received (`HEADERS_TIMEOUT_MS`), then 408 and the connection is closed. */
  headersMs: number;
  /** The whole request, body included, received (`REQUEST_TIMEOUT_MS`), then 408. */
  requestMs: number;
  /** An idle keep-alive connection between requests (`KEEP_ALIVE_TIMEOUT_MS`). */
  keepAliveMs: number;
  /** A socket with no traffic either way, mid-request or mid-response (`CONNECTION_TIMEOUT_MS`). */
  connectionMs: number;
}

/**
 * Keep-alive outlives the 60 s idle timeout of common load balancers (nginx, AWS ALB), so the
 * balancer, not the server, closes an idle connection and never reuses one being closed: Fastify's
 * own default for the same reason.
 */
export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 72_000, connectionMs: 120_000 };

/** Per-API-key token bucket: `perSecond` requests a second on average, `burst` at once. */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl?: string;
  bootstrapApiKey?: string;
  sqliteSynchronous: 'NORMAL' | 'FULL';
  /** Largest accepted request body; larger ones get 413. */
  bodyLimitBytes: number;
  logLevel: string;
  /** Byte budget of the caches that grow with the agents served (`CACHE_MAX_BYTES`). */
  cacheMaxBytes: number;
  /** Off (undefined) unless `RATE_LIMIT_RPS` is set: the official SDK retries 429s. */
  rateLimit?: RateLimit;
  httpTimeouts: HttpTimeouts;
  /** How often guarded rollouts are evaluated (`EXPERIMENT_EVALUATION_INTERVAL_MS`, 1–30,000). */
  experimentEvaluationIntervalMs: number;
  /** The server's public base URL (`PUBLIC_URL`), for URLs it hands out (outcome webhooks); else the request's Host. */
  publicUrl?: string;
  /** Days of experiment data kept (`EXPERIMENT_RETENTION_DAYS`, by the exposure's day); 0 keeps everything. */
  experimentRetentionDays: number;
  /** Routed reads record exposures (`RECORD_EXPOSURES=false` turns it off). */
  recordExposures: boolean;
  /**
   * Recorded exposures are written this long after the first of a batch at most
   * (`EXPOSURE_FLUSH_INTERVAL_MS`, default 200, at most 1,000): what a SIGKILL may lose.
   */
  exposureFlushIntervalMs: number;
}

export const DEFAULT_EXPERIMENT_EVALUATION_INTERVAL_MS = 10_000;
/** Issue 20: a regression is rolled back within 30 s at most. */
const MAX_EXPERIMENT_EVALUATION_INTERVAL_MS = 30_000;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const synchronous = (env.SQLITE_SYNCHRONOUS ?? 'NORMAL').toUpperCase();
  if (synchronous !== 'NORMAL' && synchronous !== 'FULL') {
    throw new Error(`SQLITE_SYNCHRONOUS must be NORMAL or FULL, not ${JSON.stringify(env.SQLITE_SYNCHRONOUS)}`);
  }
  return {
    host: env.HOST ?? '127.0.0.1',
    port: integer(env.PORT, 8080, 'PORT'),
    dataDir: env.DATA_DIR ?? './data',
    databaseUrl: env.DATABASE_URL || undefined,
    bootstrapApiKey: env.BRANCHWISE_BOOTSTRAP_API_KEY || undefined,
    sqliteSynchronous: synchronous,
    bodyLimitBytes: integer(env.BODY_LIMIT_BYTES, 2 * 1024 * 1024, 'BODY_LIMIT_BYTES'),
    logLevel: env.LOG_LEVEL ?? 'info',
    cacheMaxBytes: integer(env.CACHE_MAX_BYTES, DEFAULT_CACHE_MAX_BYTES, 'CACHE_MAX_BYTES'),
    rateLimit: rateLimitFrom(env),
    httpTimeouts: httpTimeoutsFrom(env),
    experimentEvaluationIntervalMs: evaluationIntervalFrom(env),
    publicUrl: publicUrlFrom(env.PUBLIC_URL),
    experimentRetentionDays: integer(env.EXPERIMENT_RETENTION_DAYS, DEFAULT_EXPERIMENT_RETENTION_DAYS, 'EXPERIMENT_RETENTION_DAYS'),
    recordExposures: booleanFrom(env.RECORD_EXPOSURES, true, 'RECORD_EXPOSURES'),
    exposureFlushIntervalMs: exposureFlushFrom(env.EXPOSURE_FLUSH_INTERVAL_MS),
  };
}

function evaluationIntervalFrom(env: NodeJS.ProcessEnv): number {
  const interval = integer(env.EXPERIMENT_EVALUATION_INTERVAL_MS, DEFAULT_EXPERIMENT_EVALUATION_INTERVAL_MS, 'EXPERIMENT_EVALUATION_INTERVAL_MS');
  if (interval < 1 || interval > MAX_EXPERIMENT_EVALUATION_INTERVAL_MS) {
    throw new Error(`EXPERIMENT_EVALUATION_INTERVAL_MS must be between 1 and ${MAX_EXPERIMENT_EVALUATION_INTERVAL_MS}, not ${interval}`);
  }
  return interval;
}

function rateLimitFrom(env: NodeJS.ProcessEnv): RateLimit | undefined {
  const raw = env.RATE_LIMIT_RPS;
  const perSecond = raw === undefined || raw === '' ? 0 : Number(raw);
  if (!Number.isFinite(perSecond) || perSecond < 0) throw new Error(`RATE_LIMIT_RPS must be a non-negative number, not ${JSON.stringify(raw)}`);
  if (perSecond === 0) return undefined;
  const burst = integer(env.RATE_LIMIT_BURST, Math.max(1, Math.ceil(perSecond)), 'RATE_LIMIT_BURST');
  if (burst < 1) throw new Error('RATE_LIMIT_BURST must be at least 1');
  return { perSecond, burst };
}

function httpTimeoutsFrom(env: NodeJS.ProcessEnv): HttpTimeouts {
  const timeouts = {
    headersMs: integer(env.HEADERS_TIMEOUT_MS, DEFAULT_HTTP_TIMEOUTS.headersMs, 'HEADERS_TIMEOUT_MS'),
    requestMs: integer(env.REQUEST_TIMEOUT_MS, DEFAULT_HTTP_TIMEOUTS.requestMs, 'REQUEST_TIMEOUT_MS'),
    keepAliveMs: integer(env.KEEP_ALIVE_TIMEOUT_MS, DEFAULT_HTTP_TIMEOUTS.keepAliveMs, 'KEEP_ALIVE_TIMEOUT_MS'),
    connectionMs: integer(env.CONNECTION_TIMEOUT_MS, DEFAULT_HTTP_TIMEOUTS.connectionMs, 'CONNECTION_TIMEOUT_MS'),
  };
  // node:http refuses a headers timeout longer than the whole request's.
  if (timeouts.requestMs > 0 && timeouts.headersMs > timeouts.requestMs) {
    throw new Error(`HEADERS_TIMEOUT_MS (${timeouts.headersMs}) must not exceed REQUEST_TIMEOUT_MS (${timeouts.requestMs})`);
  }
  return timeouts;
}

function integer(raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, not ${JSON.stringify(raw)}`);
  return value;
}

function publicUrlFrom(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`PUBLIC_URL must be an absolute http(s) URL, not ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`PUBLIC_URL must be an absolute http(s) URL, not ${JSON.stringify(raw)}`);
  return raw.replace(/\/+$/, '');
}

function booleanFrom(raw: string | undefined, fallback: boolean, name: string): boolean {
  if (raw === undefined || raw === '') return fallback;
  const text = raw.toLowerCase();
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw new Error(`${name} must be true or false, not ${JSON.stringify(raw)}`);
}

function exposureFlushFrom(raw: string | undefined): number {
  const value = integer(raw, 200, 'EXPOSURE_FLUSH_INTERVAL_MS');
  // Issue 20: a SIGKILL loses at most the last second of exposures.
  if (value < 1 || value > 1_000) throw new Error(`EXPOSURE_FLUSH_INTERVAL_MS must be between 1 and 1000, not ${value}`);
  return value;
}
