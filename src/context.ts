import type { Kysely } from 'kysely';

import { DEFAULT_CACHE_MAX_BYTES } from './config.js';
import type { Store } from './db/connect.js';
import type { Database } from './db/schema.js';
import { type WriteOptions, type WriteScope, writeTransaction } from './db/write.js';
import { LruCache } from './domain/lru.js';
import type { SectionCache } from './features/agents/agent-response.js';
import { RoutingCache } from './features/deployments/routing-cache.js';
import { loadRoutingEntry } from './features/deployments/routing-entry.js';
import { DocumentStore } from './features/versions/documents.store.js';
import { FrontierStore } from './features/versions/frontiers.store.js';
import { UserDirectory } from './features/workspaces/user-directory.js';
import type { WriteMetrics } from './metrics/write-metrics.js';

/** What every service needs: the database, the document store, the caches, the write counters and the clock. */
export interface AppContext {
  store: Store;
  db: Kysely<Database>;
  documents: DocumentStore;
  frontiers: FrontierStore;
  users: UserDirectory;
  /** The routed read's cache of bucket tables and branch heads. */
  routing: RoutingCache;
  caches: {
    /** Rendered `GET agent` responses (about 30 KB each). */
    rendered: LruCache<string, Buffer>;
    /** Head and version answers by caller and request, with the SQLite stamp they were read at. */
    stamped: LruCache<string, StampedAnswer>;
    sections: SectionCache;
  };
  /** Successful writes, counted once their transaction commits. */
  metrics: WriteMetrics;
  now(): number;
  /** A write transaction whose published changes reach every process's caches. */
  write<T>(work: (scope: WriteScope) => Promise<T>, options?: WriteOptions): Promise<T>;
}

/**
 * How the byte budget is shared. The routed read's cache comes first: it is what serves every
 * conversation. Documents are counted by their stored JSON size times the overhead of a parsed object.
 */
const BUDGET_SHARES = { routing: 0.45, rendered: 0.2, stamped: 0.05, documents: 0.2, sections: 0.1 };

export interface StampedAnswer {
  stamp: number;
  bytes: Buffer;
}

export function createContext(
  store: Store,
  metrics: WriteMetrics,
  now: () => number = Date.now,
  cacheMaxBytes = DEFAULT_CACHE_MAX_BYTES,
): AppContext {
  const budget = (share: keyof typeof BUDGET_SHARES) => Math.floor(cacheMaxBytes * BUDGET_SHARES[share]);
  return {
    store,
    db: store.db,
    documents: new DocumentStore(budget('documents')),
    frontiers: new FrontierStore(),
    users: new UserDirectory(store.db),
    routing: new RoutingCache(store.changes, now, (agentId) => loadRoutingEntry(store.db, agentId), budget('routing')),
    caches: {
      rendered: new LruCache({ maxEntries: 5_000, maxBytes: budget('rendered'), sizeOf: (bytes) => bytes.byteLength }),
      // Mostly the very buffers `rendered` holds, but counted again: they outlive an eviction there.
      stamped: new LruCache({ maxEntries: 5_000, maxBytes: budget('stamped'), sizeOf: (answer) => answer.bytes.byteLength }),
      // JavaScript strings of JSON text are mostly one byte per character.
      sections: new LruCache({ maxEntries: 10_000, maxBytes: budget('sections'), sizeOf: (text) => text.length }),
    },
    metrics,
    now,
    write: (work, options) => writeTransaction(store, work, options),
  };
}
