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
}

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
  };
}

function integer(raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, not ${JSON.stringify(raw)}`);
  return value;
}
