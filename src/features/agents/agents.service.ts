import type { AppContext } from '../../context.js';
import { canonicalJson, type JsonObject } from '../../domain/canonical-json.js';
import { newId } from '../../domain/ids.js';
import { decodeCursor, encodeCursor, isSafeInteger, isString } from '../../http/cursor.js';
import { NotFoundError, RequestValidationError } from '../../errors.js';
import { assertCanWriteBranch } from '../branches/branch-access.js';
import { branchesStore, newBranch } from '../branches/branches.store.js';
import { activateDeployment } from '../deployments/deployment-writer.js';
import { RoutingCache, type RoutingEntry } from '../deployments/routing-cache.js';
import { loadRoutingEntry } from '../deployments/routing-entry.js';
import { recordUserAction } from '../audit/audit.events.js';
import { loadDocument } from '../versions/documents.store.js';
import { type CommitOptions, commitToBranch, type ProduceChange, startBranch } from '../versions/commit.js';
import { type VersionRow, versionsStore } from '../versions/versions.store.js';
import { accessInfo } from '../workspaces/user-directory.js';
import type { Caller } from '../../domain/caller.js';
import { type AgentDocument, copyNameOf, proceduresOf, voiceIdOf, withProcedures } from './agent-document.js';
import { deleteAgentAndOwned } from './agent-owned-tables.js';
import { renderAgentResponse } from './agent-response.js';
import { routeToBranch } from '../../domain/traffic-split.js';
import { type ExplicitProcedures, withPublishedProcedures } from '../procedures/procedure-publish.js';
import { procedureCopier } from '../procedures/procedure-copy.js';
import { procedureRefs } from '../procedures/procedure-sets.js';
import { type AgentRow, type AgentSort, agentsStore, splitAgentVersionRow } from './agents.store.js';
import type { ConfigChanges } from './config-changes.js';
import { prepareChange } from './prepared-change.js';

export const MAIN_BRANCH_NAME = 'Main';

export interface AgentSelector {
  versionId?: string;
  branchId?: string;
  /** Extension: route by the active deployment (`conversation_id` or `routing_key`). */
  routingKey?: string;
}

export interface AgentListQuery {
  pageSize: number;
  cursor?: string;
  search?: string;
  archived: boolean;
  tags?: string[];
  createdByUserId?: string;
  showOnlyOwnedAgents: boolean;
  sortBy?: AgentSort;
  sortDirection: 'asc' | 'desc';
}

export function agentsService(context: AppContext) {
  const { db } = context;

  type VersionRef = Pick<VersionRow, 'id' | 'branch_id' | 'document_hash'>;

  /**
   * The agent at a version, as response bytes. Cached by everything the bytes depend on: the
   * version (immutable), the agent row (its revision, which every update moves; two updates can
   * share a millisecond) and the caller's role and authorship.
   */
  async function renderAt(caller: Caller, agent: AgentRow, version: VersionRef): Promise<Buffer> {
    const key = `${agent.id}|${version.id}|${agent.revision}|${caller.role}|${caller.userId === agent.created_by_user_id}`;
    const cached = context.caches.rendered.get(key);
    if (cached) return cached;
    const document = (await context.documents.load(db, version.document_hash)) as AgentDocument;
    const users = await context.users.describe([agent.created_by_user_id]);
    // Part of the cached bytes: a version's procedure versions never change, so the key holds.
    const procedures = await procedureRefs(context, db, agent.id, proceduresOf(document));
    const bytes = Buffer.from(
      await renderAgentResponse(context.caches.sections, {
        agent,
        versionId: version.id,
        branchId: version.branch_id,
        documentHash: version.document_hash,
        document,
        access: accessInfo(users.get(agent.created_by_user_id), caller),
        procedures,
      }),
    );
    context.caches.rendered.set(key, bytes);
    return bytes;
  }

  /** The head or version read behind `quickGet`, kept under `stamped` when read at a SQLite stamp. */
  async function readQuick(
    caller: Caller,
    agentId: string,
    selector: Omit<AgentSelector, 'routingKey'>,
    stamped: { stamp: number; key: string } | undefined,
  ): Promise<Buffer | undefined> {
    try {
      const fast = context.store.fastReads;
      const row = await (selector.versionId
        ? fast.version(caller.workspaceId, agentId, selector.versionId)
        : fast.head(caller.workspaceId, agentId, selector.branchId ?? null));
      if (!row) return undefined;
      const { agent, version } = splitAgentVersionRow(row);
      const bytes = await renderAt(caller, agent, version);
      // Read at or after the stamp: if anything was committed since, the stamp has moved.
      if (stamped) context.caches.stamped.set(stamped.key, { stamp: stamped.stamp, bytes });
      return bytes;
    } catch {
      return undefined;
    }
  }

  async function resolveVersion(agent: AgentRow, selector: AgentSelector): Promise<VersionRow> {
    if (selector.versionId) {
      const version = await versionsStore(db).findOrThrow(agent.id, selector.versionId);
      if (selector.branchId) {
        await branchesStore(db).findOrThrow(agent.id, selector.branchId);
        if (version.branch_id !== selector.branchId) {
          throw RequestValidationError.at(
            ['query', 'version_id'],
            `Version ${selector.versionId} is not on branch ${selector.branchId}; it belongs to branch ${version.branch_id}.`,
          );
        }
      }
      return version;
    }
    const branch = await branchesStore(db).findOrThrow(agent.id, selector.branchId ?? agent.main_branch_id);
    return versionsStore(db).findOrThrow(agent.id, branch.head_version_id);
  }

  /**
   * The hot path: the branch head that the active split assigns to this routing key, served from
   * the routing cache (fresh within 1 s across processes, decisions.md D16).
   */
  async function routed(caller: Caller, agentId: string, routingKey: string): Promise<Buffer> {
    let entry: Pick<RoutingEntry, 'agent' | 'table' | 'heads' | 'responses' | 'deployment'> | undefined = context.routing.get(agentId);
    if (!entry) {
      const started = context.routing.startFill();
      const loaded = await loadRoutingEntry(db, agentId);
      if (!loaded || loaded.agent.workspace_id !== caller.workspaceId) throw new NotFoundError('agent', agentId);
      entry = context.routing.set(agentId, loaded, started) ?? { ...loaded, responses: new Map() };
    }
    if (entry.agent.workspace_id !== caller.workspaceId) throw new NotFoundError('agent', agentId);
    const branchId = routeToBranch(entry.table, entry.agent.id, routingKey);
    const head = entry.heads.get(branchId);
    if (!head) throw new Error(`branch ${branchId} of the active deployment has no head`);
    const key = RoutingCache.responseKey(entry, head.versionId, caller);
    let response = entry.responses.get(key);
    if (response === undefined) {
      response = await renderAt(caller, entry.agent, { id: head.versionId, branch_id: branchId, document_hash: head.documentHash });
      context.routing.addResponse(agentId, entry, key, response);
    }
    context.routing.onRouted?.(entry.agent.id, routingKey, branchId, head.versionId, entry.deployment);
    return response;
  }

  /** A commit (`commitToBranch`), as the agent at the resulting head. */
  async function commit(
    caller: Caller,
    agentId: string,
    options: CommitOptions,
    produce: ProduceChange,
  ): Promise<Buffer> {
    const { agent, version } = await commitToBranch(context, caller, agentId, options, produce);
    return renderAt(caller, agent, version);
  }

  return {
    async create(caller: Caller, body: ConfigChanges & { conversation_config: JsonObject }): Promise<{ agent_id: string }> {
      const config = await prepareChange(context.documents, null, body);
      const { prepared } = config;
      const now = context.now();
      const agentId = newId('agent_', now);
      const branchId = newId('agtbrch_', now);
      await context.write(async (scope) => {
        const { trx } = scope;
        await startBranch(
          scope,
          context,
          caller,
          newBranch({ id: branchId, agent_id: agentId, name: MAIN_BRANCH_NAME, description: '', parent_branch_id: null }, caller.userId, now),
          { prepared, description: 'Initial version', parents: {}, parentRows: [] },
        );
        await agentsStore(trx).insert(
          {
            id: agentId,
            workspace_id: caller.workspaceId,
            name: config.document.name,
            tags: JSON.stringify(config.document.tags),
            agent_settings: canonicalJson(config.agentSettings),
            voice_id: voiceIdOf(config.document),
            archived: config.agentSettings.archived === true ? 1 : 0,
            main_branch_id: branchId,
            created_by_user_id: caller.userId,
            created_at_ms: now,
            updated_at_ms: now,
          },
          config.document.tags,
        );
        // Every agent has exactly one active deployment from its creation on (decisions.md D14).
        await activateDeployment(trx, {
          agentId,
          split: [{ branchId, percentage: 100 }],
          source: 'manual',
          authorUserId: caller.userId,
          deployedAtMs: now,
        });
        await recordUserAction(trx, caller, now, { action: 'agent.create', agentId, resourceId: agentId, details: { name: config.document.name } });
      });
      return { agent_id: agentId };
    },

    /**
     * The hot path's version of `get` for a head or a version: the bytes, or undefined for anything
     * the full route should answer (not found, not allowed, both selectors, errors).
     */
    /**
     * A head or version read for the fast path, or undefined when it should take the full route.
     * Synchronous when the answer is known to be current.
     */
    quickGet(caller: Caller, agentId: string, selector: Omit<AgentSelector, 'routingKey'>): Buffer | undefined | Promise<Buffer | undefined> {
      if (selector.versionId && selector.branchId) return undefined;
      let stamp: number | undefined;
      try {
        stamp = context.store.fastReads.stamp?.();
      } catch {
        return undefined;
      }
      if (stamp === undefined) return readQuick(caller, agentId, selector, undefined);
      // SQLite: no commit anywhere since this caller's answer was read means it is still the
      // answer (decisions.md D16), for the cost of one pragma instead of a query.
      const key = `${caller.workspaceId}|${caller.userId}|${caller.role}|${agentId}|${selector.branchId ?? ''}|${selector.versionId ?? ''}`;
      const answer = context.caches.stamped.get(key);
      if (answer !== undefined && answer.stamp === stamp) return answer.bytes;
      return readQuick(caller, agentId, selector, { stamp, key });
    },

    async get(caller: Caller, agentId: string, selector: AgentSelector): Promise<Buffer> {
      // An explicit branch or version pins the conversation and bypasses the split.
      if (selector.routingKey !== undefined && !selector.branchId && !selector.versionId) {
        return routed(caller, agentId, selector.routingKey);
      }
      if (!selector.versionId) {
        // The head of main or of a branch in one query; anything unusual takes the path below,
        // which says precisely what is missing.
        const view = await agentsStore(db).headView(caller.workspaceId, agentId, selector.branchId);
        if (view) return renderAt(caller, view.agent, view.version);
      }
      const agent = await agentsStore(db).findOrThrow(caller.workspaceId, agentId);
      return renderAt(caller, agent, await resolveVersion(agent, selector));
    },

    /**
     * A commit (decisions.md D4), which also publishes procedures: the caller's drafts, or the
     * explicit map (procedure-publish.ts). Returns the agent at the resulting head.
     */
    async update(caller: Caller, agentId: string, options: CommitOptions, changes: ConfigChanges, procedures?: ExplicitProcedures | null): Promise<Buffer> {
      return commit(caller, agentId, options, async ({ trx, agent, branch, current }) =>
        withPublishedProcedures(context, trx, caller, agent, branch, current.document, await prepareChange(context.documents, current, changes), procedures),
      );
    },

    /**
     * Extension: a new version on the branch whose config equals an earlier version's (any
     * version of the agent): the one-call answer to a bad commit on a live branch.
     */
    async restore(caller: Caller, agentId: string, branchId: string, versionId: string, note: string | null | undefined): Promise<Buffer> {
      return commit(caller, agentId, { branchId }, async ({ trx, current, agent }) => {
        const source = await versionsStore(trx).find(agent.id, versionId);
        if (!source) {
          throw RequestValidationError.at(['body', 'version_id'], `Version ${JSON.stringify(versionId)} is not a version of agent ${agent.id}.`);
        }
        const sourceBranch = await branchesStore(trx).find(agent.id, source.branch_id);
        const restored = `Restore of version ${source.id} (#${source.seq_no_in_branch} on branch "${sourceBranch?.name ?? source.branch_id}")`;
        return {
          document: await loadDocument(context, trx, source),
          agentSettings: current.agentSettings,
          description: note ? `${restored}: ${note}` : restored,
        };
      });
    },

    async delete(caller: Caller, agentId: string): Promise<void> {
      await context.write(async ({ trx, publish }) => {
        const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        publish({ kind: 'agent', agentId: agent.id });
        const main = await branchesStore(trx).findOrThrow(agent.id, agent.main_branch_id);
        assertCanWriteBranch(caller, main);
        await deleteAgentAndOwned(trx, agent.id);
        // The agent's versions go with it: this event is what remains of who deleted it.
        await recordUserAction(trx, caller, context.now(), { action: 'agent.delete', agentId: agent.id, resourceId: agent.id, details: { name: agent.name } });
      });
    },

    /**
     * A new agent with a copy of every unarchived branch at its head (same names and
     * descriptions), without history, drafts or deployments (upstream's `agents.duplicate`); the
     * procedures of those heads under new ids.
     */
    async duplicate(caller: Caller, agentId: string, name: string | null | undefined): Promise<{ agent_id: string }> {
      const now = context.now();
      const newAgentId = newId('agent_', now);
      await context.write(async (scope) => {
        const { trx } = scope;
        const source = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        const branches = await branchesStore(trx).list(source.id, { includeArchived: false });
        const branchIds = new Map(branches.map((branch) => [branch.id, newId('agtbrch_', now)]));
        const copyName = name ?? copyNameOf(source.name);
        const procedures = procedureCopier(trx, caller, source.id, newAgentId, now);
        for (const branch of branches) {
          const head = await versionsStore(trx).findOrThrow(source.id, branch.head_version_id);
          const isMain = branch.id === source.main_branch_id;
          const newBranchId = branchIds.get(branch.id) as string;
          let document = await loadDocument(context, trx, head);
          if (isMain) document = { ...document, name: copyName };
          if (Object.keys(proceduresOf(document)).length > 0) document = withProcedures(document, await procedures.copy(proceduresOf(document)));
          const prepared = await context.documents.prepare(document);
          const { head_version_id: _head, head_seq_no: _seqNo, ...copied } = branch;
          await startBranch(
            scope,
            context,
            caller,
            {
              ...copied,
              id: newBranchId,
              agent_id: newAgentId,
              parent_branch_id: branch.parent_branch_id ? (branchIds.get(branch.parent_branch_id) ?? null) : null,
              merged_into_branch_id: null,
              created_by_user_id: caller.userId,
              created_at_ms: now,
              last_committed_at_ms: now,
            },
            { prepared, description: `Duplicated from ${source.id}`, parents: {}, parentRows: [] },
          );
          if (isMain) {
            const tags = JSON.parse(source.tags) as string[];
            const { revision: _sourceRevision, ...sourceRow } = source;
            await agentsStore(trx).insert(
              {
                ...sourceRow,
                id: newAgentId,
                name: copyName,
                main_branch_id: newBranchId,
                created_by_user_id: caller.userId,
                created_at_ms: now,
                updated_at_ms: now,
              },
              tags,
            );
            // All traffic on the copy's main: deployments are not copied.
            await activateDeployment(trx, {
              agentId: newAgentId,
              split: [{ branchId: newBranchId, percentage: 100 }],
              source: 'manual',
              authorUserId: caller.userId,
              deployedAtMs: now,
            });
            await recordUserAction(trx, caller, now, { action: 'agent.duplicate', agentId: newAgentId, resourceId: newAgentId, details: { source_agent_id: source.id, name: copyName } });
          }
        }
      });
      return { agent_id: newAgentId };
    },

    async list(caller: Caller, query: AgentListQuery) {
      const sortBy = query.sortBy ?? 'created_at';
      const after = query.cursor ? decodeCursor<string | number>(query.cursor, sortBy === 'name' ? isString : isSafeInteger) : undefined;
      const ownedOnly = query.createdByUserId ?? (query.showOnlyOwnedAgents ? '@me' : undefined);
      const rows = await agentsStore(db).list({
        workspaceId: caller.workspaceId,
        archived: query.archived,
        search: query.search,
        tags: query.tags,
        createdByUserId: ownedOnly === '@me' ? caller.userId : ownedOnly,
        sortBy,
        direction: query.sortDirection,
        after,
        limit: query.pageSize + 1,
      });
      const page = rows.slice(0, query.pageSize);
      const hasMore = rows.length > query.pageSize;
      const last = page.at(-1);
      const users = await context.users.describe(page.map((row) => row.created_by_user_id));
      return {
        agents: page.map((row) => agentSummary(row, accessInfo(users.get(row.created_by_user_id), caller))),
        has_more: hasMore,
        next_cursor: hasMore && last ? encodeCursor(sortBy === 'name' ? last.name : last.created_at_ms, last.id) : null,
      };
    },

    async summaries(caller: Caller, agentIds: string[]) {
      const rows = await agentsStore(db).findMany(caller.workspaceId, agentIds);
      const byId = new Map(rows.map((row) => [row.id, row]));
      const users = await context.users.describe(rows.map((row) => row.created_by_user_id));
      const result: Record<string, unknown> = {};
      for (const id of agentIds) {
        const row = byId.get(id);
        result[id] = row
          ? { status: 'success', data: agentSummary(row, accessInfo(users.get(row.created_by_user_id), caller)) }
          : { status: 'failure', error_code: 404, error_status: 'not_found', error_message: `Agent ${JSON.stringify(id)} was not found.` };
      }
      return result;
    },
  };
}

function agentSummary(row: AgentRow, access: ReturnType<typeof accessInfo>) {
  return {
    agent_id: row.id,
    name: row.name,
    voice_id: row.voice_id,
    tags: JSON.parse(row.tags) as string[],
    created_at_unix_secs: Math.floor(row.created_at_ms / 1000),
    access_info: access,
    last_call_time_unix_secs: null,
    archived: row.archived === 1,
  };
}
