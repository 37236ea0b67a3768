import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { randomBytes } from 'node:crypto';

import { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import type { LightMyRequestResponse } from 'fastify';
import { expect, inject } from 'vitest';

import { type App, type AppOptions, buildApp } from '../../src/app.js';
import { openStore, type Store, type StoreOptions } from '../../src/db/connect.js';
import type { Role } from '../../src/domain/caller.js';
import { adminQuery } from './postgres-cluster.js';

/** The dialect this test run is on (vitest project `sqlite` or `postgres`). */
export const dialect: 'sqlite' | 'postgres' = process.env.TEST_DIALECT === 'postgres' ? 'postgres' : 'sqlite';

export interface TestDatabase {
  options: StoreOptions;
  /** Removes the database (a temp dir, or a PostgreSQL database cloned for this test). */
  drop(): Promise<void>;
}

/** A fresh, migrated, empty database of the current dialect. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'branchwise-test-'));
  if (dialect === 'sqlite') {
    return { options: { dataDir, guardEveryWrite: true }, drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const server = inject('postgresServerUrl');
  const name = `t_${randomBytes(8).toString('hex')}`;
  await adminQuery(server, `CREATE DATABASE ${name} TEMPLATE branchwise_template`);
  return {
    options: { dataDir, databaseUrl: `${server}/${name}`, poolSize: 4, guardEveryWrite: true },
    async drop() {
      rmSync(dataDir, { recursive: true, force: true });
      await adminQuery(server, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

export interface TestApp {
  app: App;
  store: Store;
  database: TestDatabase;
  /** An API key per role in workspace `default`. */
  keys: Record<Role, string>;
  /** The admin key of another workspace. */
  foreignKey: string;
  close(): Promise<void>;
}

/** A real app on its own database of the current dialect, with a key for every role. */
/**
 * A test app's config: `overrides` over the defaults. Routed reads record exposures, written a
 * flush interval later (issue 20): a test comparing snapshots around routed reads would see them
 * land at any moment. Off unless a test turns it on (test/experiments-exposures.test.ts,
 * test/e2e/experiments.sdk.test.ts); servers run with it on.
 */
function testConfig(overrides: Partial<AppOptions['config']> = {}): AppOptions['config'] {
  return { bodyLimitBytes: 2 * 1024 * 1024, logLevel: 'silent', recordExposures: false, ...overrides };
}

export async function startTestApp(
  options: { config?: Partial<AppOptions['config']>; now?: () => number; dashboardDir?: string } = {},
): Promise<TestApp> {
  const database = await createTestDatabase();
  const store = await openStore(database.options);
  const app = await buildApp({ config: testConfig(options.config), store, now: options.now, logger: false, dashboardDir: options.dashboardDir });
  const admin = await app.workspaces.bootstrap(undefined);
  if (!admin) throw new Error('bootstrap did not create a key on an empty store');
  const keys = { admin: admin.key } as Record<Role, string>;
  for (const role of ['editor', 'commenter', 'viewer'] as const) {
    keys[role] = (await app.workspaces.createKey('default', `${role}-user`, role)).key;
  }
  const foreignKey = (await app.workspaces.createWorkspace('elsewhere')).key;
  return {
    app,
    store,
    database,
    keys,
    foreignKey,
    async close() {
      await closeApp(app);
      await sayIfSlow('the store', store.close());
      await sayIfSlow('the database', database.drop());
    },
  };
}

export interface OtherApp {
  app: App;
  store: Store;
  /** Its listening base URL. */
  url: string;
  /** Closes it (before `testApp.close()`, which drops the database). */
  close(): Promise<void>;
}

/**
 * A second app on the test app's database, listening, with its own connections, caches and change
 * feed: another server process, as the database sees it (SQLite: another connection that commits;
 * PostgreSQL: another LISTEN).
 */
export async function startOtherApp(testApp: TestApp, options: { now?: () => number; config?: Partial<AppOptions['config']> } = {}): Promise<OtherApp> {
  const store = await openStore(testApp.database.options);
  const app = await buildApp({ config: testConfig(options.config), store, now: options.now, logger: false });
  const url = await app.server.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    store,
    url,
    async close() {
      await closeApp(app);
      await store.close();
    },
  };
}

/** How long `closeApp` waits for requests and responses in flight before it cuts their connections. */
export const CLOSE_GRACE_MS = 5_000;

/**
 * Closes an app as the server does on SIGTERM: it waits for the requests and responses in flight.
 * One that never finishes (a body its client never sends in full, or a large response its client
 * never reads: a test that checked a status and left the body) would hold the close without end:
 * after `graceMs` its connection is cut, and the log says so.
 */
export function closeApp(app: App, graceMs = CLOSE_GRACE_MS): Promise<void> {
  return ifSlow(app.server.close(), graceMs, () => {
    console.warn(`closeApp: connections still open after ${graceMs} ms (a response its client never read?); cut`);
    app.server.server.closeAllConnections();
  });
}

/** Waits for a step of a close, saying in the log which one if it takes over 10 s (a hook's timeout names none). */
function sayIfSlow(what: string, closing: Promise<void>): Promise<void> {
  return ifSlow(closing, 10_000, () => console.warn(`closing ${what} has taken over 10 s`));
}

/** Waits for `work`, running `then` once if it is still going after `ms`. */
async function ifSlow(work: Promise<void>, ms: number, then: () => void): Promise<void> {
  const timer = setTimeout(then, ms);
  try {
    await work;
  } finally {
    clearTimeout(timer);
  }
}

/** Listens on a free loopback port; returns the base URL. */
export async function listen(testApp: TestApp): Promise<string> {
  return testApp.app.server.listen({ host: '127.0.0.1', port: 0 });
}

export function sdk(baseUrl: string, apiKey: string): ElevenLabsClient {
  return new ElevenLabsClient({ apiKey, baseUrl, maxRetries: 0 });
}

/** An in-process request with a key (null: none) and, when given, a JSON body. */
export function injectAs(
  testApp: TestApp,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  key: string | null,
  payload?: unknown,
): Promise<LightMyRequestResponse> {
  return testApp.app.server.inject({
    method,
    url,
    headers: { ...(key === null ? {} : { 'xi-api-key': key }), ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
  });
}

/** The JSON body of a 200 (the start of any other body is in the failure). */
export function okJson<T>(response: LightMyRequestResponse): T {
  expect(response.statusCode, response.body.slice(0, 500)).toBe(200);
  return response.json() as T;
}

/** The ids of the users behind `testApp.keys`, by role (the default workspace's users). */
export async function userIdsByRole(testApp: TestApp): Promise<Record<Role, string>> {
  const users = await testApp.store.db
    .selectFrom('users')
    .innerJoin('workspaces', 'workspaces.id', 'users.workspace_id')
    .select(['users.id', 'users.name'])
    .where('workspaces.name', '=', 'default')
    .execute();
  const byName = new Map(users.map((user) => [user.name, user.id]));
  const roles = ['admin', 'editor', 'commenter', 'viewer'] as const;
  return Object.fromEntries(roles.map((role) => [role, byName.get(role === 'admin' ? 'admin' : `${role}-user`) as string])) as Record<Role, string>;
}
