// The databases a bench figure runs on: SQLite in a temp dir, and PostgreSQL (DATABASE_URL, or a
// throwaway cluster of the machine's binaries with PostgreSQL's durable defaults) when available.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { StoreOptions } from '../src/db/connect.js';
import { adminQuery, type Cluster, findPostgresBin, startCluster } from '../test/support/postgres-cluster.js';

export interface BenchDatabase {
  /** Store options for a process of the bench, and the environment for a server process. */
  options: StoreOptions;
  env: Record<string, string>;
  drop(): Promise<void>;
}

export interface BenchDialect {
  label: 'SQLite' | 'PostgreSQL';
  /** A fresh, empty database. */
  create(): Promise<BenchDatabase>;
}

const sqlite: BenchDialect = {
  label: 'SQLite',
  async create() {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'branchwise-bench-'));
    return { options: { dataDir }, env: { DATA_DIR: dataDir }, drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
  },
};

function postgres(server: string): BenchDialect {
  return {
    label: 'PostgreSQL',
    async create() {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'branchwise-bench-'));
      const name = `bench_${randomBytes(6).toString('hex')}`;
      await adminQuery(server, `CREATE DATABASE ${name}`);
      const databaseUrl = `${server}/${name}`;
      return {
        options: { dataDir, databaseUrl },
        env: { DATA_DIR: dataDir, DATABASE_URL: databaseUrl },
        async drop() {
          rmSync(dataDir, { recursive: true, force: true });
          await adminQuery(server, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        },
      };
    },
  };
}

/**
 * SQLite always; PostgreSQL from DATABASE_URL (a server URL whose user may create databases) or a
 * throwaway cluster. `stop` ends the cluster the bench started.
 */
export async function benchDialects(): Promise<{ dialects: BenchDialect[]; postgresNote: string; stop(): void }> {
  const url = process.env.DATABASE_URL;
  if (url) {
    const server = new URL(url);
    server.pathname = '';
    return { dialects: [sqlite, postgres(server.toString().replace(/\/$/, ''))], postgresNote: 'PostgreSQL from DATABASE_URL', stop() {} };
  }
  const bin = findPostgresBin();
  if (!bin) return { dialects: [sqlite], postgresNote: 'PostgreSQL not found: SQLite figures only', stop() {} };
  const cluster: Cluster = await startCluster(bin, { durable: true });
  return {
    dialects: [sqlite, postgres(cluster.url)],
    postgresNote: `PostgreSQL ${path.basename(path.dirname(bin))}: a throwaway local cluster with its durable defaults (fsync, synchronous commits)`,
    stop: () => cluster.stop(),
  };
}
