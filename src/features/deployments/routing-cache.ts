import type { ChangeFeed } from '../../db/change-feed.js';
import { type BucketTable, routeToBranch } from '../../domain/traffic-split.js';
import type { Caller } from '../workspaces/workspaces.store.js';
import type { AgentRow } from '../agents/agents.store.js';

/** How long an entry may serve without a notification: bounds a lost one (DESIGN §12.2). */
const ENTRY_TTL_MS = 1_000;
const MAX_AGENTS = 10_000;

export interface RoutingEntry {
  agent: AgentRow;
  table: BucketTable;
  /** Branch id → its head version. */
  heads: Map<string, { versionId: string; documentHash: string }>;
  /** Rendered response bytes by `versionId|role|isCreator` (access_info is per caller). */
  responses: Map<string, Buffer>;
  expiresAt: number;
}

/**
 * What the routed read needs per agent: the active bucket table and every branch head. Dropped
 * when a commit, deployment or branch change to the agent is announced by any process, when the
 * change feed resets, and after a second at most.
 */
export class RoutingCache {
  private readonly entries = new Map<string, RoutingEntry>();
  /** Moves on every invalidation: an entry read from the database before one is not stored. */
  private generation = 0;

  constructor(
    private readonly changes: ChangeFeed,
    private readonly now: () => number,
  ) {
    changes.subscribe((event) => {
      if (event.kind === 'agent') this.entries.delete(event.agentId);
      else if (event.kind === 'reset') this.entries.clear();
      if (event.kind !== 'key') this.generation++;
    });
  }

  get(agentId: string): RoutingEntry | undefined {
    if (!this.changes.live) return undefined;
    const entry = this.entries.get(agentId);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(agentId);
      return undefined;
    }
    return entry;
  }

  /** The key of a rendered response in an entry: access_info depends on the caller's role and identity. */
  static responseKey(entry: Omit<RoutingEntry, 'expiresAt'>, versionId: string, caller: Caller): string {
    return `${versionId}|${caller.role}|${caller.userId === entry.agent.created_by_user_id}`;
  }

  /**
   * The routed response, if everything it needs is cached: no I/O, no serialization. The hot
   * path (DESIGN §12.12) serves this and hands anything else to the full route.
   */
  peek(agentId: string, caller: Caller, routingKey: string): Buffer | undefined {
    const entry = this.get(agentId);
    if (!entry || entry.agent.workspace_id !== caller.workspaceId) return undefined;
    const head = entry.heads.get(routeToBranch(entry.table, entry.agent.id, routingKey));
    return head ? entry.responses.get(RoutingCache.responseKey(entry, head.versionId, caller)) : undefined;
  }

  /** Call before reading what `set` will store. */
  startFill(): number {
    return this.generation;
  }

  set(agentId: string, entry: Omit<RoutingEntry, 'expiresAt'>, startedAt: number): void {
    if (!this.changes.live || startedAt !== this.generation) return;
    if (this.entries.size >= MAX_AGENTS) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(agentId, { ...entry, expiresAt: this.now() + ENTRY_TTL_MS });
  }
}
