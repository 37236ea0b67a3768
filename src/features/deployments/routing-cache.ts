import type { ChangeFeed } from '../../db/change-feed.js';
import { LruCache } from '../../domain/lru.js';
import { AgentBuckets, type BucketTable } from '../../domain/traffic-split.js';
import type { Caller } from '../../domain/caller.js';
import type { AgentRow } from '../agents/agents.store.js';

/** How long an entry may serve without a notification: bounds a lost one (decisions.md D16). */
const ENTRY_TTL_MS = 1_000;
/** From this age on, an entry in use is reloaded in the background, so it never expires under load. */
const REFRESH_AFTER_MS = 400;
const MAX_AGENTS = 10_000;
/** What an entry costs besides its bucket table and responses: the agent row, head map, bookkeeping. */
const ENTRY_OVERHEAD_BYTES = 2_048;
const HEAD_BYTES = 256;

export interface RoutingEntry {
  agent: AgentRow;
  table: BucketTable;
  /** Branch id → its head version. */
  heads: Map<string, RoutingHead>;
  /** The active deployment the table is of: what an exposure records. */
  deployment: RoutedDeployment;
  /** Rendered response bytes by `versionId|revision|role|isCreator` (access_info is per caller). */
  responses: Map<string, Buffer>;
  /** The agent's routing keys to buckets. */
  buckets: AgentBuckets;
  expiresAt: number;
  refreshAt: number;
  refreshing?: boolean;
  /** What this entry holds, as counted against the cache's byte budget. */
  bytes: number;
}

export interface RoutingHead {
  versionId: string;
  documentHash: string;
  /** The response key of the last caller served this head, so that the hot path builds none. */
  lastCaller?: Caller;
  lastKey?: string;
}

export interface RoutedDeployment {
  id: string;
  /** Branch id → its share of the buckets (0..1]. */
  shares: Map<string, number>;
}

/** A routed read served `versionId` of `branchId` to `routingKey` (experiments record it as an exposure). */
export type RoutedListener = (agentId: string, routingKey: string, branchId: string, versionId: string, deployment: RoutedDeployment) => void;

export type LoadedRoutingEntry = Pick<RoutingEntry, 'agent' | 'table' | 'heads' | 'deployment'>;
export type RoutingEntryLoader = (agentId: string) => Promise<LoadedRoutingEntry | undefined>;

/**
 * What the routed read needs per agent: the active bucket table and every branch head. Dropped
 * when a commit, deployment or branch change to the agent is announced by any process, when the
 * change feed resets, and after a second at most. Least recently used entries go first when the
 * byte budget (bucket tables and rendered responses) or the entry limit is reached.
 */
export class RoutingCache {
  private readonly entries: LruCache<string, RoutingEntry>;
  /** Moves on every invalidation: an entry read from the database before one is not stored. */
  private generation = 0;
  /** Entries found but expired: misses, though the LRU counted them as hits. */
  private expired = 0;
  /** Told of every routed read served (set once by the app; none: nothing is recorded). */
  onRouted: RoutedListener | undefined;

  constructor(
    private readonly changes: ChangeFeed,
    private readonly now: () => number,
    /** How entries are reloaded in the background. */
    private readonly loader: RoutingEntryLoader,
    maxBytes: number = Number.POSITIVE_INFINITY,
  ) {
    this.entries = new LruCache({ maxEntries: MAX_AGENTS, maxBytes, sizeOf: (entry) => entry.bytes });
    changes.subscribe((event) => {
      if (event.kind === 'agent') this.entries.delete(event.agentId);
      else if (event.kind === 'reset') this.entries.clear();
      if (event.kind !== 'key') this.generation++;
    });
  }

  /** Lookups that found / did not find a live entry (for metrics). */
  get hits(): number {
    return this.entries.hits - this.expired;
  }

  get misses(): number {
    return this.entries.misses + this.expired;
  }

  /** Bytes held, as counted against the budget. */
  get bytes(): number {
    return this.entries.bytes;
  }

  get size(): number {
    return this.entries.size;
  }

  get(agentId: string): RoutingEntry | undefined {
    if (!this.changes.live) return undefined;
    const entry = this.entries.get(agentId);
    if (!entry) return undefined;
    const now = this.now();
    if (entry.expiresAt <= now) {
      this.entries.delete(agentId);
      this.expired++;
      return undefined;
    }
    if (entry.refreshAt <= now && !entry.refreshing) {
      entry.refreshing = true;
      const started = this.startFill();
      this.loader(agentId)
        .then((fresh) => fresh && this.set(agentId, fresh, started))
        .catch(() => this.entries.delete(agentId))
        .finally(() => (entry.refreshing = false));
    }
    return entry;
  }

  /**
   * The key of a rendered response in an entry: the version, the agent row it was rendered from
   * (its revision: an entry's responses are carried to its reload only for the same revision,
   * and the key says so on its own), and access_info, which depends on the caller's role and identity.
   */
  static responseKey(entry: Pick<RoutingEntry, 'agent'>, versionId: string, caller: Caller): string {
    return `${versionId}|${entry.agent.revision}|${caller.role}|${caller.userId === entry.agent.created_by_user_id}`;
  }

  /**
   * The routed response, if everything it needs is cached: no I/O, no serialization. The hot
   * path (decisions.md D17) serves this and hands anything else to the full route.
   */
  peek(agentId: string, caller: Caller, routingKey: string): Buffer | undefined {
    const entry = this.get(agentId);
    if (!entry || entry.agent.workspace_id !== caller.workspaceId) return undefined;
    const branchId = entry.buckets.routeToBranch(entry.table, routingKey);
    const head = entry.heads.get(branchId);
    if (!head) return undefined;
    if (head.lastCaller !== caller) {
      head.lastKey = RoutingCache.responseKey(entry, head.versionId, caller);
      head.lastCaller = caller;
    }
    const body = entry.responses.get(head.lastKey as string);
    // The entry's own id: the same string read after read (the exposure recorder compares by identity first).
    if (body !== undefined) this.onRouted?.(entry.agent.id, routingKey, branchId, head.versionId, entry.deployment);
    return body;
  }

  /** Keeps a rendered response in an entry, within the byte budget. */
  addResponse(agentId: string, entry: Pick<RoutingEntry, 'responses'>, key: string, response: Buffer): void {
    if (entry.responses.has(key)) return;
    entry.responses.set(key, response);
    // Entries not (or no longer) stored are private to one request: nothing to account.
    const stored = this.entries.peek(agentId);
    if (stored?.responses !== entry.responses) return;
    stored.bytes += response.byteLength;
    // Set again, so that the budget counts what it holds now.
    this.entries.set(agentId, stored);
  }

  /** Call before reading what `set` will store. */
  startFill(): number {
    return this.generation;
  }

  /** Stores an entry read since `startedAt`, unless an invalidation came in between. */
  set(agentId: string, entry: LoadedRoutingEntry, startedAt: number): RoutingEntry | undefined {
    if (!this.changes.live || startedAt !== this.generation) return undefined;
    const previous = this.entries.peek(agentId);
    // Rendered bytes stay valid while the agent row is unchanged (they are keyed by version): its
    // revision moves with every update, where two updates can share `updated_at_ms`.
    const responses = previous && previous.agent.revision === entry.agent.revision ? previous.responses : new Map<string, Buffer>();
    let bytes = ENTRY_OVERHEAD_BYTES + entry.table.branchOf.byteLength + entry.heads.size * HEAD_BYTES;
    for (const response of responses.values()) bytes += response.byteLength;
    const now = this.now();
    const buckets = previous?.buckets ?? new AgentBuckets(entry.agent.id);
    const stored: RoutingEntry = { ...entry, responses, buckets, expiresAt: now + ENTRY_TTL_MS, refreshAt: now + REFRESH_AFTER_MS, bytes };
    // An entry larger than the whole budget is not kept (the caller serves it once).
    this.entries.set(agentId, stored);
    return this.entries.peek(agentId);
  }
}
