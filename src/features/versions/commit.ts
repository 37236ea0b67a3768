import type { Kysely } from 'kysely';

import type { AppContext } from '../../context.js';
import { lockAgent, lockBranch } from '../../db/locks.js';
import type { Database } from '../../db/schema.js';
import type { WriteScope } from '../../db/write.js';
import type { JsonObject } from '../../domain/canonical-json.js';
import { frontierOf } from '../../domain/frontier.js';
import { newId } from '../../domain/ids.js';
import { ConflictError, NotFoundError } from '../../errors.js';
import { type AgentDocument, voiceIdOf } from '../agents/agent-document.js';
import { agentSettingsChange, agentSettingsColumns, recordAgentSettingsChange } from '../agents/agent-settings.js';
import { type AgentRow, agentsStore } from '../agents/agents.store.js';
import type { ChangedConfig } from '../agents/config-changes.js';
import { type PreparedChange, sameVisible } from '../agents/prepared-change.js';
import { recordUserAction } from '../audit/audit.events.js';
import { assertCanChangeAgentSettings, assertCanWriteBranch, assertNotArchived } from '../branches/branch-access.js';
import { type BranchRow, type NewBranchRow, branchesStore } from '../branches/branches.store.js';
import { draftsStore } from '../drafts/drafts.store.js';
import { type MergePlan, overriddenFields, planRebase } from '../merges/merge-plan.js';
import type { Caller } from '../../domain/caller.js';
import { loadDocument, type PreparedDocument } from './documents.store.js';
import { positionOf } from './history.js';
import { NO_PARENTS, type VersionParents } from './versions.service.js';
import { type VersionRow, versionsStore } from './versions.store.js';

// The one write path for a new version (README.md beside this file): a commit, a merge, a
// rebase (manual or automatic), a restore and a new branch's first version all land here.

export interface VersionDraft {
  agentId: string;
  branchId: string;
  /** 1 for a branch's first version, else the locked head's number + 1. */
  seqNo: number;
  prepared: PreparedDocument;
  description: string;
  authorUserId: string;
  parents: Partial<VersionParents>;
  /** The versions named in `parents`, for the generation number. */
  parentRows: VersionRow[];
  committedAtMs: number;
  mergedAuthorIds?: string[];
}

/**
 * Writes a version and its document. The caller holds the branch lock and moves the head;
 * the unique key (branch_id, seq_no_in_branch) refuses a duplicate number if it did not.
 * Only `landVersion` and `startBranch` call it (and tests that build a history by hand).
 */
export async function insertVersion(trx: Kysely<Database>, context: AppContext, draft: VersionDraft): Promise<VersionRow> {
  await context.documents.write(trx, draft.prepared);
  const parentPositions = await Promise.all(draft.parentRows.map((parent) => positionOf(context, trx, parent)));
  const frontierHash = await context.frontiers.write(trx, frontierOf(draft.branchId, parentPositions));
  const row: VersionRow = {
    id: newId('agtvrsn_', draft.committedAtMs),
    agent_id: draft.agentId,
    branch_id: draft.branchId,
    seq_no_in_branch: draft.seqNo,
    ...NO_PARENTS,
    ...draft.parents,
    generation: Math.max(0, ...draft.parentRows.map((parent) => parent.generation)) + 1,
    description: draft.description,
    author_user_id: draft.authorUserId,
    committed_at_ms: draft.committedAtMs,
    document_hash: draft.prepared.rootHash,
    merged_author_ids: draft.mergedAuthorIds ? JSON.stringify(draft.mergedAuthorIds) : null,
    frontier_hash: frontierHash,
  };
  await versionsStore(trx).insert(row);
  return row;
}

/** When a version lands on a branch: now, and never before the branch's last commit (a clock that went back). */
export function commitTimeOn(context: AppContext, onto: BranchRow): number {
  return Math.max(context.now(), onto.last_committed_at_ms);
}

/** A version to land on an existing branch, and what landing it changes besides the branch. */
export interface Landing {
  /** The agent row, read under the agent lock. */
  agent: AgentRow;
  /** The branch, read under its lock. */
  onto: BranchRow;
  document: AgentDocument;
  prepared: PreparedDocument;
  description: string;
  parents: Partial<VersionParents>;
  parentRows: VersionRow[];
  mergedAuthorIds?: string[];
  /** `commitTimeOn(context, onto)`. */
  committedAtMs: number;
  /** A commit discards its author's draft on the branch; a merge or rebase landing there discards every draft (decisions.md D8). */
  discards: 'own draft' | 'all drafts';
  /**
   * Columns of the agent row it changes besides those a new main version sets (name, tags,
   * voice). Given (a commit), the row is written whatever the branch; absent (a merge or
   * rebase), only when the version lands on main.
   */
  agentChanges?: Partial<Omit<AgentRow, 'id' | 'revision'>>;
  /**
   * What the operation writes about its version in the same transaction (its audit event, a
   * merge's bookkeeping), before a new main version rebases the `auto_rebase` branches.
   */
  record?: (landed: Landed) => Promise<void>;
}

export interface Landed {
  /** The agent row as it now is. */
  agent: AgentRow;
  version: VersionRow;
}

/**
 * Lands a version on a branch whose head the caller has locked (with the agent, in that order):
 * the version with the next gapless `seq_no_in_branch`, the head moved, drafts discarded, the
 * agent row moved when main moves, caches told; then, on main, the auto-rebase branches follow.
 */
export async function landVersion(scope: WriteScope, context: AppContext, caller: Caller, landing: Landing): Promise<Landed> {
  const { trx } = scope;
  const { agent, onto, committedAtMs: now } = landing;
  scope.afterCommit(() => context.documents.markStored(landing.prepared));
  const version = await insertVersion(trx, context, {
    agentId: agent.id,
    branchId: onto.id,
    seqNo: onto.head_seq_no + 1,
    prepared: landing.prepared,
    description: landing.description,
    authorUserId: caller.userId,
    parents: landing.parents,
    parentRows: landing.parentRows,
    committedAtMs: now,
    mergedAuthorIds: landing.mergedAuthorIds,
  });
  await branchesStore(trx).update(onto.id, { head_version_id: version.id, head_seq_no: version.seq_no_in_branch, last_committed_at_ms: now });
  if (landing.discards === 'own draft') await draftsStore(trx).discardOfUser(onto.id, caller.userId);
  else await draftsStore(trx).discardAll(onto.id);
  const isMain = onto.id === agent.main_branch_id;
  const { document } = landing;
  const updated =
    isMain || landing.agentChanges
      ? await agentsStore(trx).update(
          agent.id,
          {
            ...landing.agentChanges,
            updated_at_ms: now,
            ...(isMain ? { name: document.name, tags: JSON.stringify(document.tags), voice_id: voiceIdOf(document) } : {}),
          },
          isMain ? document.tags : undefined,
        )
      : agent;
  scope.publish({ kind: 'agent', agentId: agent.id });
  const landed = { agent: updated, version };
  await landing.record?.(landed);
  if (isMain) await autoRebaseBranches(scope, context, updated, caller);
  return landed;
}

/**
 * A new branch and its first version (`seq_no_in_branch` 1), committed when the branch was
 * made: a new agent's main, a branch made from a version, a duplicated agent's branches.
 */
export async function startBranch(
  scope: WriteScope,
  context: AppContext,
  caller: Caller,
  branch: Omit<NewBranchRow, 'head_version_id' | 'head_seq_no'>,
  first: { prepared: PreparedDocument; description: string; parents: Partial<VersionParents>; parentRows: VersionRow[] },
): Promise<VersionRow> {
  scope.afterCommit(() => context.documents.markStored(first.prepared));
  const version = await insertVersion(scope.trx, context, {
    agentId: branch.agent_id,
    branchId: branch.id,
    seqNo: 1,
    prepared: first.prepared,
    description: first.description,
    authorUserId: caller.userId,
    parents: first.parents,
    parentRows: first.parentRows,
    committedAtMs: branch.last_committed_at_ms,
  });
  await branchesStore(scope.trx).insert({ ...branch, head_version_id: version.id, head_seq_no: 1 });
  return version;
}

export interface CommitOptions {
  branchId?: string;
  /** Extension: refuse with 409 when the branch head is no longer this version. */
  expectedVersionId?: string;
  description?: string | null;
}

/** Turns the head's config into the next one, under the locks; with what it knows of it already (`PreparedChange`). */
export type ProduceChange = (input: {
  trx: Kysely<Database>;
  agent: AgentRow;
  /** The branch committed to, read under its lock. */
  branch: BranchRow;
  current: ChangedConfig;
}) => Promise<ChangedConfig & { description?: string } & Partial<PreparedChange>>;

/**
 * One commit to a branch (decisions.md D4, D5): under the branch lock, `produce` turns the head's config
 * into the next one. A document that reads the same makes no version; agent-wide settings that
 * read the same are not written. Returns the agent and the branch's head.
 */
export async function commitToBranch(
  context: AppContext,
  caller: Caller,
  agentId: string,
  options: CommitOptions,
  produce: ProduceChange,
): Promise<{ agent: AgentRow; version: VersionRow }> {
  return context.write(async (scope) => {
    const { trx, publish, afterCommit } = scope;
    const found = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
    const branchId = options.branchId ?? found.main_branch_id;
    // The agent lock first, then the branch (the order every write keeps): a commit updates
    // the agent row, and a main commit rebases the auto-rebase branches. Taking the branch
    // first deadlocked against merges and deployments on PostgreSQL.
    await lockAgent(trx, found.id);
    // Read again under the lock: the agent-wide settings this commit merges into are the latest.
    const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
    const locked = await branchesStore(trx).findLocked(agent.id, branchId);
    if (!locked) throw new NotFoundError('branch', branchId);
    assertCanWriteBranch(caller, locked);
    assertNotArchived(locked);
    if (options.expectedVersionId && options.expectedVersionId !== locked.head_version_id) {
      throw new ConflictError(
        'concurrent_modification',
        `Branch "${locked.name}" has moved: its head is ${locked.head_version_id}, not ${options.expectedVersionId}.`,
      );
    }
    const head = await versionsStore(trx).findOrThrow(agent.id, locked.head_version_id);
    const current = await loadDocument(context, trx, head);
    const currentSettings = JSON.parse(agent.agent_settings) as JsonObject;
    const next = await produce({ trx, agent, branch: locked, current: { document: current, agentSettings: currentSettings } });
    const settingsChange = agentSettingsChange(currentSettings, next.agentSettings);
    if (settingsChange) await assertCanChangeAgentSettings(trx, caller, agent, locked);
    const now = commitTimeOn(context, locked);

    const prepared = next.prepared ?? (await context.documents.prepare(next.document));
    if (prepared.rootHash === head.document_hash || (next.same ?? (await sameVisible(current, next.document)))) {
      // Deliberate difference: a commit that changes nothing a read shows makes no version.
      if (!settingsChange) return { agent, version: head };
      publish({ kind: 'agent', agentId: agent.id });
      const updated = await agentsStore(trx).update(agent.id, { ...agentSettingsColumns(next.agentSettings), updated_at_ms: now });
      await recordAgentSettingsChange(trx, caller, now, agent.id, locked.id, settingsChange);
      return { agent: updated, version: head };
    }

    afterCommit(() => context.metrics.commits.inc());
    return landVersion(scope, context, caller, {
      agent,
      onto: locked,
      document: next.document,
      prepared,
      description: next.description ?? options.description ?? '',
      parents: { in_branch_parent_id: head.id },
      parentRows: [head],
      committedAtMs: now,
      discards: 'own draft',
      agentChanges: settingsChange ? agentSettingsColumns(next.agentSettings) : {},
      record: async () => {
        if (settingsChange) await recordAgentSettingsChange(trx, caller, now, agent.id, locked.id, settingsChange);
      },
    });
  });
}

/**
 * Lands a rebase of `branch` onto main (`plan`, not refused) and records it: the rebase route
 * and the automatic rebase after every new main version both run it.
 */
export async function landRebase(
  scope: WriteScope,
  context: AppContext,
  caller: Caller,
  agent: AgentRow,
  branch: BranchRow,
  plan: MergePlan,
  trigger: 'manual' | 'auto',
): Promise<VersionRow> {
  scope.afterCommit(() => context.metrics.rebases.inc({ trigger }));
  const { version } = await landVersion(scope, context, caller, {
    agent,
    onto: branch,
    document: plan.document,
    prepared: plan.prepared,
    description: trigger === 'auto' ? 'Automatic rebase onto main' : 'Rebase onto main',
    parents: { in_branch_parent_id: plan.sourceHead.id, out_of_branch_parent_id: plan.targetHead.id, rebased_from_version_id: plan.sourceHead.id },
    parentRows: [plan.sourceHead, plan.targetHead],
    committedAtMs: commitTimeOn(context, branch),
    discards: 'all drafts',
  });
  await recordUserAction(scope.trx, caller, context.now(), {
    action: 'rebase',
    agentId: agent.id,
    resourceId: branch.id,
    details: { automatic: trigger === 'auto', version_id: version.id, rebased_onto_version_id: plan.targetHead.id, overridden_fields: overriddenFields(plan.conflicts) },
  });
  return version;
}

/**
 * After every new main version, each `auto_rebase` branch is rebased onto it (the branch's value
 * wins conflicts). The caller holds the agent lock.
 */
async function autoRebaseBranches(scope: WriteScope, context: AppContext, agent: AgentRow, caller: Caller): Promise<void> {
  const { trx } = scope;
  const branches = await branchesStore(trx).list(agent.id, { includeArchived: false });
  for (const candidate of branches) {
    if (!candidate.auto_rebase || candidate.id === agent.main_branch_id) continue;
    await lockBranch(trx, candidate.id);
    const branch = await branchesStore(trx).findOrThrow(agent.id, candidate.id);
    const plan = await planRebase(trx, context, agent, branch);
    if (plan.refusal) continue;
    await landRebase(scope, context, caller, agent, branch, plan, 'auto');
  }
}
