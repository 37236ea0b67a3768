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
