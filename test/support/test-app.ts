import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';

import { type App, buildApp } from '../../src/app.js';
import { openStore, type Store } from '../../src/db/connect.js';
import type { Role } from '../../src/db/schema.js';

export interface TestApp {
  app: App;
  store: Store;
  dataDir: string;
  /** An API key per role in workspace `default`. */
  keys: Record<Role, string>;
  /** The admin key of another workspace. */
  foreignKey: string;
  close(): Promise<void>;
}

/** A real app on its own SQLite file in a temp dir, with a key for every role. */
export async function startTestApp(): Promise<TestApp> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'branchwise-test-'));
  const store = await openStore({ dataDir });
  const app = await buildApp({ config: { bodyLimitBytes: 2 * 1024 * 1024, logLevel: 'silent' }, store, logger: false });
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
    dataDir,
    keys,
    foreignKey,
    async close() {
      await app.server.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Listens on a free loopback port; returns the base URL. */
export async function listen(testApp: TestApp): Promise<string> {
  return testApp.app.server.listen({ host: '127.0.0.1', port: 0 });
}

export function sdk(baseUrl: string, apiKey: string): ElevenLabsClient {
  return new ElevenLabsClient({ apiKey, baseUrl, maxRetries: 0 });
}
