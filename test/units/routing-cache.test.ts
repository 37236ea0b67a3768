import { describe, expect, it } from 'vitest';

import type { ChangeEvent, ChangeFeed } from '../../src/db/change-feed.js';
import { freshBucketTable } from '../../src/domain/traffic-split.js';
import type { AgentRow } from '../../src/features/agents/agents.store.js';
import { RoutingCache } from '../../src/features/deployments/routing-cache.js';

// The routed read's cache in memory only (no database): its byte budget and least-recently-used order.

function feed(): ChangeFeed & { emit(event: ChangeEvent): void } {
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

const entryFor = (agentId: string) => ({
  agent: { id: agentId, workspace_id: 'ws', updated_at_ms: 1, created_by_user_id: 'user' } as AgentRow,
  table: freshBucketTable([{ branchId: 'main', percentage: 100 }]),
  heads: new Map([['main', { versionId: 'v1', documentHash: 'h' }]]),
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
