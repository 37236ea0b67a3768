import { randomBytes } from 'node:crypto';

import type SqliteDatabase from 'better-sqlite3';
import pg from 'pg';

/**
 * Tells in-memory caches that data changed, in this process and in every other process on the
 * same database (decisions.md D16).
 *
 * PostgreSQL: writers `pg_notify` inside their transaction (delivered at commit) and each process
 * LISTENs on a dedicated connection. If that connection drops, the process resets its caches,
 * stops serving from them (`live` is false) and reconnects.
 * SQLite: the server's own connection polls `PRAGMA data_version`, which moves when another
 * connection (another process, the key CLI) commits, not for its own commits; any move resets the
 * caches.
 */

export const CHANGE_CHANNEL = 'branchwise_changes';

export type Change = { kind: 'key' } | { kind: 'agent'; agentId: string };
export type ChangeEvent = Change | { kind: 'reset' };
type Listener = (event: ChangeEvent) => void;

export interface ChangeFeed {
  /** False while changes from other processes might be missed: caches must not serve then. */
  readonly live: boolean;
  subscribe(listener: Listener): () => void;
  /** Delivers changes committed by this process to its own listeners at once. */
  emitLocal(changes: readonly Change[]): void;
  /**
   * Marks this process's notifications (PostgreSQL), so that it does not hear its own changes a
   * second time, later: `emitLocal` has delivered them, and a late repeat would drop cache
   * entries filled since.
   */
  readonly origin: string;
  close(): Promise<void>;
}

class ListenerSet {
  private readonly listeners = new Set<Listener>();

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: ChangeEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

const POLL_INTERVAL_MS = 100;

export function sqliteChangeFeed(connection: SqliteDatabase.Database): ChangeFeed {
  const listeners = new ListenerSet();
  const probe = connection;
  let version = probe.pragma('data_version', { simple: true });
  const timer = setInterval(() => {
    const current = probe.pragma('data_version', { simple: true });
    if (current !== version) {
      version = current;
      listeners.emit({ kind: 'reset' });
    }
  }, POLL_INTERVAL_MS);
  timer.unref();
  return {
    live: true,
    origin: 'sqlite',
    subscribe: (listener) => listeners.subscribe(listener),
    emitLocal: (changes) => changes.forEach((change) => listeners.emit(change)),
    async close() {
      clearInterval(timer);
    },
  };
}

export async function postgresChangeFeed(connectionString: string): Promise<ChangeFeed> {
  const listeners = new ListenerSet();
  let client: pg.Client | undefined;
  let live = false;
  let closed = false;
  let retryMs = 50;
  const origin = randomBytes(8).toString('hex');

  const lost = () => {
    if (!live && client === undefined) return;
    live = false;
    client = undefined;
    // Whatever happened while nobody listened is unknown: forget everything cached.
    listeners.emit({ kind: 'reset' });
    if (!closed) setTimeout(connect, retryMs).unref();
    retryMs = Math.min(retryMs * 2, 1_000);
  };

  async function connect(): Promise<void> {
    if (closed) return;
    const candidate = new pg.Client({ connectionString, application_name: 'branchwise-listener' });
    candidate.on('error', () => lost());
    candidate.on('end', () => lost());
    candidate.on('notification', (message) => {
      if (message.channel !== CHANGE_CHANNEL || !message.payload) return;
      try {
        const { origin: from, ...change } = JSON.parse(message.payload) as Change & { origin?: string };
        if (from !== origin) listeners.emit(change as Change);
      } catch {
        listeners.emit({ kind: 'reset' });
      }
    });
    try {
      await candidate.connect();
      await candidate.query(`LISTEN ${CHANGE_CHANNEL}`);
      client = candidate;
      live = true;
      retryMs = 50;
      // Changes between the loss and now were missed.
      listeners.emit({ kind: 'reset' });
    } catch {
      candidate.removeAllListeners('end');
      await candidate.end().catch(() => undefined);
      if (!closed) setTimeout(connect, retryMs).unref();
      retryMs = Math.min(retryMs * 2, 1_000);
    }
  }

  await connect();
  return {
    get live() {
      return live;
    },
    origin,
    subscribe: (listener) => listeners.subscribe(listener),
    emitLocal: (changes) => changes.forEach((change) => listeners.emit(change)),
    async close() {
      closed = true;
      live = false;
      const current = client;
      client = undefined;
      if (current) {
        current.removeAllListeners('end');
        await current.end().catch(() => undefined);
      }
    },
  };
}
