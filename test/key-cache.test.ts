import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ChangeEvent, ChangeFeed } from '../src/db/change-feed.js';
import { openStore, type Store } from '../src/db/connect.js';
import { workspacesStore } from '../src/features/workspaces/workspaces.store.js';
import { type WorkspacesService, workspacesService } from '../src/features/workspaces/workspaces.service.js';
import { createTestDatabase, type TestDatabase } from './support/test-app.js';

// The API-key cache behind every request and the fast path (decisions.md D16): what `authenticate`
// answers, what `cachedCaller` (the fast path's only way to know a caller) answers after it, and
// how long. The clock is injected, so ages are exact.

let database: TestDatabase;
let store: Store;
let clock = 1_000_000;
const now = () => clock;
let workspaces: WorkspacesService;
let adminKey: string;

beforeAll(async () => {
  database = await createTestDatabase();
  store = await openStore(database.options);
  workspaces = workspacesService(store, now);
  const admin = await workspaces.bootstrap(undefined);
  if (!admin) throw new Error('bootstrap made no key on an empty store');
  adminKey = admin.key;
});

afterAll(async () => {
  await store.close();
  await database.drop();
});

describe('the API-key cache', () => {
  it('knows a key only once authenticate has looked it up, then for less than a second', async () => {
    const created = await workspaces.createKey('default', 'cache-reader', 'viewer');
    expect(workspaces.cachedCaller(created.key)).toBeUndefined();

    const caller = await workspaces.authenticate(created.key);
    expect(caller).toMatchObject({ userName: 'cache-reader', role: 'viewer' });
    expect(workspaces.cachedCaller(created.key)).toEqual(caller);
    clock += 999;
    expect(workspaces.cachedCaller(created.key)).toEqual(caller);
    clock += 1;
    expect(workspaces.cachedCaller(created.key)).toBeUndefined();

    // Looked up again, it is known again, from the new lookup's time.
    expect(await workspaces.authenticate(created.key)).toEqual(caller);
    expect(workspaces.cachedCaller(created.key)).toEqual(caller);
  });

  it('names the workspace, user and role of the key, and tells workspaces apart', async () => {
    const admin = await workspaces.authenticate(adminKey);
    const defaultWorkspace = (await workspaces.listWorkspaces()).find((workspace) => workspace.name === 'default');
    expect(admin).toMatchObject({ workspaceId: defaultWorkspace?.id, userName: 'admin', role: 'admin' });
    expect(admin?.userId).toMatch(/^user_/);

    const foreign = await workspaces.createWorkspace('cache-elsewhere');
    const stranger = await workspaces.authenticate(foreign.key);
    expect(stranger).toMatchObject({ role: 'admin', userName: 'admin' });
    expect(stranger?.workspaceId).not.toBe(admin?.workspaceId);
    expect(stranger?.userId).not.toBe(admin?.userId);
    expect(workspaces.cachedCaller(foreign.key)).toEqual(stranger);
    expect(workspaces.cachedCaller(adminKey)).toEqual(admin);
  });

  it('answers no caller for an unknown key, from the database and from memory', async () => {
    expect(await workspaces.authenticate('sk_not_a_key')).toBeUndefined();
    expect(workspaces.cachedCaller('sk_not_a_key')).toBeUndefined();
    expect(await workspaces.authenticate('sk_not_a_key')).toBeUndefined();
  });

  it('forgets a revoked key at once, without waiting for the second to pass', async () => {
    const created = await workspaces.createKey('default', 'cache-revoked', 'editor');
    expect(await workspaces.authenticate(created.key)).toMatchObject({ role: 'editor' });
    expect(await workspaces.revokeKey('default', created.keyId)).toBe(true);
    expect(workspaces.cachedCaller(created.key)).toBeUndefined();
    expect(await workspaces.authenticate(created.key)).toBeUndefined();
  });

  it("applies a user's new role at once to the keys it already has", async () => {
    const first = await workspaces.createKey('default', 'cache-demoted', 'editor');
    expect(await workspaces.authenticate(first.key)).toMatchObject({ role: 'editor' });
    await workspaces.createKey('default', 'cache-demoted', 'viewer', { changeRole: true });
    expect(workspaces.cachedCaller(first.key)).toBeUndefined();
    expect(await workspaces.authenticate(first.key)).toMatchObject({ role: 'viewer' });
  });

  it('keeps nothing in memory while the change feed is not live, and asks the database every time', async () => {
    const events = new Set<(event: ChangeEvent) => void>();
    const deaf: ChangeFeed = {
      live: false,
      origin: 'test',
      subscribe: (listener) => (events.add(listener), () => events.delete(listener)),
      emitLocal: () => undefined,
      close: async () => undefined,
    };
    const uncached = workspacesService({ ...store, changes: deaf }, now);
    const created = await workspaces.createKey('default', 'cache-deaf', 'editor');
    expect(await uncached.authenticate(created.key)).toMatchObject({ role: 'editor' });
    expect(uncached.cachedCaller(created.key)).toBeUndefined();

    // Revoked behind its back (no change event reaches it): the next lookup still sees it.
    const workspaceId = (await uncached.authenticate(created.key))?.workspaceId as string;
    expect(await workspacesStore(store.db).revokeApiKey(workspaceId, created.keyId, clock)).toBe(true);
    expect(await uncached.authenticate(created.key)).toBeUndefined();
  });

  it('stops serving from memory while the feed is down, and keeps nothing looked up meanwhile', async () => {
    let live = true;
    const flaky: ChangeFeed = {
      get live() {
        return live;
      },
      origin: 'test',
      subscribe: () => () => undefined,
      emitLocal: () => undefined,
      close: async () => undefined,
    };
    const service = workspacesService({ ...store, changes: flaky }, now);
    const first = await workspaces.createKey('default', 'cache-flaky-1', 'editor');
    const second = await workspaces.createKey('default', 'cache-flaky-2', 'editor');
    const caller = await service.authenticate(first.key);
    expect(service.cachedCaller(first.key)).toEqual(caller);

    // Down: a revocation could go unnoticed, so memory answers nothing and lookups are not kept.
    live = false;
    expect(service.cachedCaller(first.key)).toBeUndefined();
    expect(await service.authenticate(second.key)).toMatchObject({ userName: 'cache-flaky-2' });
    const workspaceId = caller?.workspaceId as string;
    // Revoked behind its back (this feed delivers nothing).
    await workspacesStore(store.db).revokeApiKey(workspaceId, second.keyId, clock);

    // Back up: what was looked up while it was down was not kept, so the revocation is seen.
    live = true;
    expect(service.cachedCaller(second.key)).toBeUndefined();
    expect(await service.authenticate(second.key)).toBeUndefined();
  });
});
