import type { Kysely } from 'kysely';

import type { Store } from './db/connect.js';
import type { Database } from './db/schema.js';
import { type WriteScope, writeTransaction } from './db/write.js';
import { RoutingCache } from './features/deployments/routing-cache.js';
import { DocumentStore } from './features/versions/documents.store.js';
import { FrontierStore } from './features/versions/frontiers.store.js';
import { UserDirectory } from './features/workspaces/user-directory.js';

/** What every service needs: the database, the document store and the clock. */
export interface AppContext {
  store: Store;
  db: Kysely<Database>;
  documents: DocumentStore;
  frontiers: FrontierStore;
  users: UserDirectory;
  /** The routed read's cache of bucket tables and branch heads. */
  routing: RoutingCache;
  now(): number;
  /** A write transaction whose published changes reach every process's caches. */
  write<T>(work: (scope: WriteScope) => Promise<T>): Promise<T>;
}

export function createContext(store: Store, now: () => number = Date.now): AppContext {
  return {
    store,
    db: store.db,
    documents: new DocumentStore(),
    frontiers: new FrontierStore(),
    users: new UserDirectory(store.db),
    routing: new RoutingCache(store.changes, now),
    now,
    write: (work) => writeTransaction(store, work),
  };
}
