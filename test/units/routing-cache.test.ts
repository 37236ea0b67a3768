import { describe, expect, it } from 'vitest';

import type { ChangeEvent, ChangeFeed } from '../../src/db/change-feed.js';
import type { Caller } from '../../src/domain/caller.js';
import { freshBucketTable, type BucketTable } from '../../src/domain/traffic-split.js';
import type { AgentRow } from '../../src/features/agents/agents.store.js';
import { RoutingCache, type LoadedRoutingEntry, type RoutedDeployment } from '../../src/features/deployments/routing-cache.js';

// The routed read's cache in memory only (no database): its byte budget and least-recently-used
// order, expiry and background refresh, isolation between workspaces and what the change feed drops.

/** A change feed the test drives: its events, and whether it is live (a lost connection is not). */
function feed(): ChangeFeed & { live: boolean; emit(event: ChangeEvent): void } {
  const listeners = new Set<(event: ChangeEvent) => void>();
  return {
    live: true,
    origin: 'test',
    subscribe: (listener) => (listeners.add(listener), () => listeners.delete(listener)),
    emitLocal: () => undefined,
    emit: (event) => listeners.forEach((listener) => listener(event)),
    close: async () => undefined,
  };
}

/** These tests fill the cache themselves; a background reload finds nothing. */
const noReload = async () => undefined;

interface EntryShape {
  revision?: number;
  /** Branch id → its head version. */
  heads?: [string, string][];
  table?: BucketTable;
}

const entryFor = (agentId: string, { revision = 1, heads = [['main', 'v1']], table }: EntryShape = {}): LoadedRoutingEntry => ({
  agent: { id: agentId, workspace_id: 'ws', updated_at_ms: 1, revision, created_by_user_id: 'user' } as AgentRow,
  table: table ?? freshBucketTable([{ branchId: 'main', percentage: 100 }]),
  heads: new Map(heads.map(([branchId, versionId]) => [branchId, { versionId, documentHash: `hash-${versionId}` }])),
  deployment: { id: 'agtdpl_1', shares: new Map([['main', 1]]) },
});

describe('RoutingCache', () => {
  it('keeps what it holds, responses included, within its byte budget, dropping the least recently used agent first', () => {
    const changes = feed();
    const cache = new RoutingCache(changes, () => 0, noReload, 120_000);
    const response = Buffer.alloc(30_000);
    for (const agentId of ['a', 'b', 'c']) {
      const stored = cache.set(agentId, entryFor(agentId), cache.startFill())!;
      cache.addResponse(agentId, stored, 'v1|admin|true', response);
      expect(cache.bytes).toBeLessThanOrEqual(120_000);
    }
    // Each agent holds its 20 KB bucket table, 30 KB of response and some overhead: two fit.
    expect(cache.size).toBe(2);
    expect(cache.get('a')).toBeUndefined();
    cache.get('b');
    cache.set('d', entryFor('d'), cache.startFill());
    expect(cache.get('b')).toBeDefined();
    expect(cache.get('c')).toBeUndefined();
    expect(cache.bytes).toBeLessThanOrEqual(120_000);
  });

  it('forgets an agent when a change to it is announced, and everything on a reset', () => {
    const changes = feed();
    const cache = new RoutingCache(changes, () => 0, noReload);
    cache.set('a', entryFor('a'), cache.startFill());
    cache.set('b', entryFor('b'), cache.startFill());
    changes.emit({ kind: 'agent', agentId: 'a' });
    expect([cache.get('a'), cache.size]).toEqual([undefined, 1]);
    changes.emit({ kind: 'reset' });
    expect([cache.size, cache.bytes]).toEqual([0, 0]);
  });

  it('counts an expired entry as a miss', () => {
    let now = 0;
    const cache = new RoutingCache(feed(), () => now, noReload);
    cache.set('a', entryFor('a'), cache.startFill());
    expect(cache.get('a')).toBeDefined();
    now = 5_000;
    expect(cache.get('a')).toBeUndefined();
    expect([cache.hits, cache.misses]).toEqual([1, 1]);
  });
});

const creator: Caller = { workspaceId: 'ws', userId: 'user', userName: 'Creator', email: 'creator@example.com', role: 'admin' };
const viewer: Caller = { workspaceId: 'ws', userId: 'user_2', userName: 'Viewer', email: 'viewer@example.com', role: 'viewer' };

/** Every bucket to `branchId`: any routing key goes there. */
const allTo = (branchId: string): BucketTable => freshBucketTable([{ branchId, percentage: 100 }]);

/** A promise the test settles, to hold a background reload in flight. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((yes, no) => ((resolve = yes), (reject = no)));
  return { promise, resolve, reject };
}

/** Lets a settled reload's then/catch/finally run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('RoutingCache.peek', () => {
  function servedCache() {
    const cache = new RoutingCache(feed(), () => 0, noReload);
    const loaded = entryFor('a', { table: allTo('canary'), heads: [['main', 'v1'], ['canary', 'v2']] });
    const stored = cache.set('a', loaded, cache.startFill())!;
    const routed: [string, string, string, string, RoutedDeployment][] = [];
    cache.onRouted = (...args) => routed.push(args);
    return { cache, loaded, stored, routed };
  }

  it('serves the response rendered for the head the key routes to and the caller, and tells onRouted what it served', () => {
    const { cache, loaded, stored, routed } = servedCache();
    const forCreator = Buffer.from('creator');
    const forViewer = Buffer.from('viewer');
    cache.addResponse('a', stored, RoutingCache.responseKey(stored, 'v2', creator), forCreator);
    cache.addResponse('a', stored, RoutingCache.responseKey(stored, 'v2', viewer), forViewer);
    // The head remembers its last caller's key: a change of caller must change the answer.
    expect(cache.peek('a', creator, 'conv-1')).toBe(forCreator);
    expect(cache.peek('a', viewer, 'conv-2')).toBe(forViewer);
    expect(cache.peek('a', creator, 'conv-3')).toBe(forCreator);
    expect(routed).toEqual([
      ['a', 'conv-1', 'canary', 'v2', loaded.deployment],
      ['a', 'conv-2', 'canary', 'v2', loaded.deployment],
      ['a', 'conv-3', 'canary', 'v2', loaded.deployment],
    ]);
    expect(routed[0][4]).toBe(loaded.deployment);
  });

  it('serves nothing, and records nothing, when no response is rendered for the caller', () => {
    const { cache, stored, routed } = servedCache();
    cache.addResponse('a', stored, RoutingCache.responseKey(stored, 'v2', creator), Buffer.from('creator'));
    expect(cache.peek('a', viewer, 'conv-1')).toBeUndefined();
    expect(routed).toEqual([]);
  });

  it("serves nothing to a caller of another workspace, though a response for their role and creator status is rendered", () => {
    const { cache, stored, routed } = servedCache();
    const outsider: Caller = { ...creator, workspaceId: 'other' };
    // The response key holds no workspace: only the entry's agent row can tell the two apart.
    expect(RoutingCache.responseKey(stored, 'v2', outsider)).toBe(RoutingCache.responseKey(stored, 'v2', creator));
    cache.addResponse('a', stored, RoutingCache.responseKey(stored, 'v2', creator), Buffer.from('creator'));
    expect(cache.peek('a', outsider, 'conv-1')).toBeUndefined();
    expect(routed).toEqual([]);
    expect(cache.peek('a', creator, 'conv-1')).toEqual(Buffer.from('creator'));
  });

  it('serves nothing when the branch the key routes to has no head, or the agent is not cached', () => {
    const cache = new RoutingCache(feed(), () => 0, noReload);
    const stored = cache.set('a', entryFor('a', { table: allTo('canary'), heads: [['main', 'v1']] }), cache.startFill())!;
    cache.addResponse('a', stored, RoutingCache.responseKey(stored, 'v1', creator), Buffer.from('main'));
    expect(cache.peek('a', creator, 'conv-1')).toBeUndefined();
    expect(cache.peek('b', creator, 'conv-1')).toBeUndefined();
  });
});

describe('RoutingCache.responseKey', () => {
  const key = (revision: number, versionId: string, caller: Caller) => RoutingCache.responseKey(entryFor('a', { revision }), versionId, caller);

  it('differs by version, by agent revision, by role and by whether the caller created the agent', () => {
    const keys = [
      key(1, 'v1', creator),
      key(1, 'v2', creator),
      key(2, 'v1', creator),
      key(1, 'v1', { ...creator, role: 'editor' }),
      key(1, 'v1', { ...creator, userId: 'user_3' }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('is the same for two callers who differ in nothing access_info shows', () => {
    expect(key(1, 'v1', viewer)).toBe(key(1, 'v1', { ...viewer, userId: 'user_3', userName: 'Other', email: 'o@example.com' }));
  });
});

describe('RoutingCache.get', () => {
  it('serves nothing while the change feed is not live, though an entry is stored', () => {
    const changes = feed();
    const cache = new RoutingCache(changes, () => 0, noReload);
    cache.set('a', entryFor('a'), cache.startFill());
    changes.live = false;
    expect(cache.get('a')).toBeUndefined();
    changes.live = true;
    expect(cache.get('a')).toBeDefined();
  });

  it('drops an entry at exactly its expiry, counting a miss', () => {
    let now = 0;
    const cache = new RoutingCache(feed(), () => now, noReload);
    const { expiresAt, refreshAt } = cache.set('a', entryFor('a'), cache.startFill())!;
    // Refreshed before it expires, so that an entry in use never does.
    expect(0 < refreshAt && refreshAt < expiresAt).toBe(true);
    now = expiresAt - 1;
    expect(cache.get('a')).toBeDefined();
    now = expiresAt;
    expect(cache.get('a')).toBeUndefined();
    expect([cache.hits, cache.misses, cache.size, cache.bytes]).toEqual([1, 1, 0, 0]);
    expect(cache.get('a')).toBeUndefined();
    expect([cache.hits, cache.misses]).toEqual([1, 2]);
  });

  it('reloads an entry in the background from exactly its refresh time, once while the reload is in flight, and stores what it reads', async () => {
    let now = 0;
    const reloads: string[] = [];
    const reload = deferred<LoadedRoutingEntry | undefined>();
    const cache = new RoutingCache(feed(), () => now, (agentId) => (reloads.push(agentId), reload.promise));
    const first = cache.set('a', entryFor('a'), cache.startFill())!;
    const lifetime = first.expiresAt;
    now = first.refreshAt - 1;
    expect(cache.get('a')).toBe(first);
    expect(reloads).toEqual([]);
    now = first.refreshAt;
    expect(cache.get('a')).toBe(first);
    expect(cache.get('a')).toBe(first);
    expect(reloads).toEqual(['a']);
    reload.resolve(entryFor('a', { heads: [['main', 'v2']] }));
    await settle();
    const fresh = cache.get('a')!;
    expect(fresh).not.toBe(first);
    expect(fresh.heads.get('main')?.versionId).toBe('v2');
    expect(fresh.expiresAt).toBe(now + lifetime);
    expect(reloads).toEqual(['a']);
  });

  it('reloads again once a reload has settled without an entry', async () => {
    let now = 0;
    const reloads: string[] = [];
    const cache = new RoutingCache(feed(), () => now, async (agentId) => (reloads.push(agentId), undefined));
    const first = cache.set('a', entryFor('a'), cache.startFill())!;
    now = first.refreshAt;
    cache.get('a');
    await settle();
    expect(cache.get('a')).toBe(first);
    expect(reloads).toEqual(['a', 'a']);
  });

  it('drops an entry whose reload fails', async () => {
    let now = 0;
    const cache = new RoutingCache(feed(), () => now, () => Promise.reject(new Error('database gone')));
    const first = cache.set('a', entryFor('a'), cache.startFill())!;
    now = first.refreshAt;
    expect(cache.get('a')).toBe(first);
    await settle();
    expect(cache.size).toBe(0);
    expect(cache.get('a')).toBeUndefined();
  });

  it('does not store a reload read across an invalidation', async () => {
    let now = 0;
    const changes = feed();
    const reload = deferred<LoadedRoutingEntry | undefined>();
    const cache = new RoutingCache(changes, () => now, () => reload.promise);
    const first = cache.set('a', entryFor('a'), cache.startFill())!;
    now = first.refreshAt;
    cache.get('a');
    changes.emit({ kind: 'agent', agentId: 'b' });
    reload.resolve(entryFor('a', { heads: [['main', 'v2']] }));
    await settle();
    expect(cache.get('a')).toBe(first);
  });
});

describe('RoutingCache.set', () => {
  it.each<[string, ChangeEvent]>([
    ['a change to the agent', { kind: 'agent', agentId: 'a' }],
    ['a change to another agent', { kind: 'agent', agentId: 'b' }],
    ['a reset', { kind: 'reset' }],
  ])('refuses an entry read before %s', (_, event) => {
    const changes = feed();
    const cache = new RoutingCache(changes, () => 0, noReload);
    const started = cache.startFill();
    changes.emit(event);
    expect(cache.set('a', entryFor('a'), started)).toBeUndefined();
    expect(cache.size).toBe(0);
    // A fill started after it stores.
    expect(cache.set('a', entryFor('a'), cache.startFill())).toBeDefined();
  });

  it('stores an entry read across a change of keys, which no entry depends on', () => {
    const changes = feed();
    const cache = new RoutingCache(changes, () => 0, noReload);
    cache.set('b', entryFor('b'), cache.startFill());
    const started = cache.startFill();
    changes.emit({ kind: 'key' });
    expect(cache.set('a', entryFor('a'), started)).toBeDefined();
    expect(cache.size).toBe(2);
  });

  it('refuses an entry while the change feed is not live', () => {
    const changes = feed();
    const cache = new RoutingCache(changes, () => 0, noReload);
    changes.live = false;
    expect(cache.set('a', entryFor('a'), cache.startFill())).toBeUndefined();
    changes.live = true;
    expect(cache.size).toBe(0);
  });

  it("carries rendered responses to a reload of the same agent revision only, and the agent's bucket hasher always", () => {
    const cache = new RoutingCache(feed(), () => 0, noReload);
    const first = cache.set('a', entryFor('a', { revision: 1 }), cache.startFill())!;
    const response = Buffer.from('rendered');
    cache.addResponse('a', first, 'v1|1|admin|true', response);
    const same = cache.set('a', entryFor('a', { revision: 1 }), cache.startFill())!;
    expect(same.responses.get('v1|1|admin|true')).toBe(response);
    expect(same.bytes).toBe(first.bytes);
    expect(same.buckets).toBe(first.buckets);
    const updated = cache.set('a', entryFor('a', { revision: 2 }), cache.startFill())!;
    expect(updated.responses.size).toBe(0);
    expect(updated.bytes).toBe(first.bytes - response.byteLength);
    expect(updated.buckets).toBe(first.buckets);
  });
});

describe('RoutingCache byte accounting', () => {
  /** What an entry of `heads` heads and a bucket table of `tableBuckets` buckets costs, as stored. */
  function bytesOf(headCount: number, tableBuckets: number): number {
    const cache = new RoutingCache(feed(), () => 0, noReload);
    const heads = Array.from({ length: headCount }, (_, index): [string, string] => [`b${index}`, `v${index}`]);
    const table: BucketTable = { branchIds: ['b0'], branchOf: new Uint16Array(tableBuckets) };
    const stored = cache.set('a', entryFor('a', { heads, table }), cache.startFill())!;
    expect(cache.bytes).toBe(stored.bytes);
    return stored.bytes;
  }

  it('counts a fixed overhead, the bucket table and a fixed cost per head', () => {
    const overhead = bytesOf(0, 0);
    const perHead = bytesOf(1, 0) - overhead;
    expect(overhead).toBeGreaterThan(0);
    expect(Number.isInteger(perHead) && perHead > 0).toBe(true);
    expect(bytesOf(3, 0)).toBe(overhead + 3 * perHead);
    expect(bytesOf(0, 1_000)).toBe(overhead + 2_000);
    expect(bytesOf(2, 500)).toBe(overhead + 1_000 + 2 * perHead);
  });

  it('adds a response to the stored entry, once per key', () => {
    const cache = new RoutingCache(feed(), () => 0, noReload);
    const stored = cache.set('a', entryFor('a'), cache.startFill())!;
    const before = cache.bytes;
    const response = Buffer.from('€ rendered');
    cache.addResponse('a', stored, 'key', response);
    expect([cache.bytes, stored.bytes]).toEqual([before + response.byteLength, before + response.byteLength]);
    cache.addResponse('a', stored, 'key', Buffer.alloc(1_000));
    expect(cache.bytes).toBe(before + response.byteLength);
    expect(stored.responses.get('key')).toBe(response);
  });

  it('counts nothing for a response added to an entry that is not, or no longer, the stored one', () => {
    const cache = new RoutingCache(feed(), () => 0, noReload);
    const replaced = cache.set('a', entryFor('a', { revision: 1 }), cache.startFill())!;
    const stored = cache.set('a', entryFor('a', { revision: 2 }), cache.startFill())!;
    const before = cache.bytes;
    cache.addResponse('a', replaced, 'key', Buffer.alloc(100));
    const unstored = { responses: new Map<string, Buffer>() };
    cache.addResponse('a', unstored, 'key', Buffer.alloc(100));
    cache.addResponse('b', { responses: new Map<string, Buffer>() }, 'key', Buffer.alloc(100));
    expect([cache.bytes, stored.bytes, stored.responses.size]).toEqual([before, before, 0]);
    // The request's own entry keeps it, to serve it once.
    expect(unstored.responses.has('key')).toBe(true);
  });
});

describe('RoutingCache and the change feed (agent changes and resets: above)', () => {
  it('drops nothing on a change of keys', () => {
    const changes = feed();
    const cache = new RoutingCache(changes, () => 0, noReload);
    const a = cache.set('a', entryFor('a'), cache.startFill());
    changes.emit({ kind: 'key' });
    expect(cache.get('a')).toBe(a);
  });
});
