import pg from 'pg';
import type { TestProject } from 'vitest/node';

import { openStore } from '../src/db/connect.js';
import { type Cluster, findPostgresBin, startCluster } from './support/postgres-cluster.js';

// The PostgreSQL half of the suite: one throwaway cluster (or TEST_DATABASE_URL) with a migrated
// template database; each test file clones its own database from it.

export const TEMPLATE_DATABASE = 'branchwise_template';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresServerUrl: string;
  }
}

let cluster: Cluster | undefined;

export default async function setup(project: TestProject) {
  let serverUrl = process.env.TEST_DATABASE_URL;
  if (!serverUrl) {
    const bin = findPostgresBin();
    if (!bin) throw new Error('PostgreSQL binaries not found under /usr/lib/postgresql (vitest.config.ts should have skipped)');
    cluster = await startCluster(bin);
    serverUrl = cluster.url;
  }
  const base = new URL(serverUrl);
  base.pathname = '/';
  const admin = new pg.Client({ connectionString: new URL('/postgres', base).toString() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE}`);
  await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  await admin.end();
  const store = await openStore({ databaseUrl: new URL(`/${TEMPLATE_DATABASE}`, base).toString(), dataDir: '' });
  await store.close();
  project.provide('postgresServerUrl', base.toString().replace(/\/$/, ''));

  return () => {
    cluster?.stop();
  };
}
