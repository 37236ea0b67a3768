import type { Kysely } from 'kysely';

import type { Database } from './db/schema.js';
import { DocumentStore } from './features/versions/documents.store.js';
import { UserDirectory } from './features/workspaces/user-directory.js';

/** What every service needs: the database, the document store and the clock. */
export interface AppContext {
  db: Kysely<Database>;
  documents: DocumentStore;
  users: UserDirectory;
  now(): number;
}

export function createContext(db: Kysely<Database>, now: () => number = Date.now): AppContext {
  return { db, documents: new DocumentStore(), users: new UserDirectory(db), now };
}
