import type { Kysely } from 'kysely';

import type { AppContext } from '../../context.js';
import { lockAgent, lockBranch } from '../../db/locks.js';
import type { Database } from '../../db/schema.js';
import type { WriteScope } from '../../db/write.js';
import { ConflictError, RequestValidationError } from '../../errors.js';
import { voiceIdOf } from '../agents/agent-document.js';
import { renderAgentResponse } from '../agents/agent-response.js';
import { assertCanWriteBranch, assertNotArchived, findAgentOrThrow, findBranchOrThrow } from '../agents/agents.service.js';
import { type AgentRow, agentsStore } from '../agents/agents.store.js';
import { recordUserAction } from '../audit/audit.events.js';
import { type BranchRow, branchesStore } from '../branches/branches.store.js';
import { activateDeployment, splitOf } from '../deployments/deployment-writer.js';
import { deploymentsStore } from '../deployments/deployments.store.js';
import { insertVersion } from '../versions/versions.service.js';
import { type VersionRow, versionsStore } from '../versions/versions.store.js';
import { accessInfo } from '../workspaces/user-directory.js';
import type { Caller } from '../../domain/caller.js';
import { closeProposalsOfArchivedBranch } from '../merge-proposals/merge-proposals.store.js';
import { type MergePlan, overriddenFields, planMerge, type ResolutionInput, type ResolutionsLocation } from './merge-plan.js';

export interface MergeOptions {
  force: boolean;
  archiveSourceBranch: boolean;
  /** Extension: settle conflicts by hand. */
  resolutions?: ResolutionInput;
  /** Where `resolutions` came from, for the location of errors in them. */
  resolutionsIn?: ResolutionsLocation;
  /** Extension: 409 when the target moved since the preview was read. */
  expectedTargetVersionId?: string;
}

/** Writes a merge's or rebase's version on `onto`, moves its head and discards its drafts. */
async function landVersion(
  scope: WriteScope,
  context: AppContext,
  agent: AgentRow,
  onto: BranchRow,
  plan: MergePlan,
  version: { description: string; parents: Partial<VersionRow>; parentRows: VersionRow[]; authorUserId: string; mergedAuthorIds?: string[] },
): Promise<VersionRow> {
  const { trx } = scope;
  const now = Math.max(context.now(), onto.last_committed_at_ms);
  scope.afterCommit(() => context.documents.markStored(plan.prepared));
  const row = await insertVersion(trx, context, {
    agentId: agent.id,
    branchId: onto.id,
    seqNo: onto.head_seq_no + 1,
    prepared: plan.prepared,
    description: version.description,
    authorUserId: version.authorUserId,
    parents: version.parents,
    parentRows: version.parentRows,
    committedAtMs: now,
    mergedAuthorIds: version.mergedAuthorIds,
  });
  await branchesStore(trx).update(onto.id, { head_version_id: row.id, head_seq_no: row.seq_no_in_branch, last_committed_at_ms: now });
  // A merge or rebase landing on a branch discards every draft on it (DESIGN §5).
  await trx.deleteFrom('drafts').where('branch_id', '=', onto.id).execute();
  if (onto.id === agent.main_branch_id) {
    await agentsStore(trx).update(
      agent.id,
      { name: plan.document.name, tags: JSON.stringify(plan.document.tags), voice_id: voiceIdOf(plan.document), updated_at_ms: now },
      plan.document.tags,
    );
  }
  scope.publish({ kind: 'agent', agentId: agent.id });
  return row;
}

/**
 * After every new main version, each `auto_rebase` branch is rebased onto it (the branch's value
 * wins conflicts). The caller holds the agent lock.
 */
export async function autoRebaseBranches(scope: WriteScope, context: AppContext, agent: AgentRow, caller: Caller): Promise<void> {
  const { trx } = scope;
  const branches = await branchesStore(trx).list(agent.id, { includeArchived: false });
  for (const candidate of branches) {
    if (!candidate.auto_rebase || candidate.id === agent.main_branch_id) continue;
    await lockBranch(trx, candidate.id);
    const branch = await findBranchOrThrow(trx, agent.id, candidate.id);
    const main = await findBranchOrThrow(trx, agent.id, agent.main_branch_id);
    const plan = await planMerge(trx, context, agent.id, branch, main, { kind: 'rebase', winner: 'source' });
    if (plan.refusal) continue;
    scope.afterCommit(() => context.metrics.rebases.inc({ trigger: 'auto' }));
    const version = await landVersion(scope, context, agent, branch, plan, {
      description: 'Automatic rebase onto main',
      parents: { in_branch_parent_id: plan.sourceHead.id, out_of_branch_parent_id: plan.targetHead.id, rebased_from_version_id: plan.sourceHead.id },
      parentRows: [plan.sourceHead, plan.targetHead],
      authorUserId: caller.userId,
    });
    await recordUserAction(trx, caller, context.now(), {
      action: 'rebase',
      agentId: agent.id,
      resourceId: branch.id,
      details: { automatic: true, version_id: version.id, rebased_onto_version_id: plan.targetHead.id, overridden_fields: overriddenFields(plan.conflicts) },
    });
  }
}

/**
 * The merge itself, inside the caller's write transaction: the branch merge route and a merge
 * proposal's merge both run it, so they cannot differ.
 */
export async function mergeBranches(
  scope: WriteScope,
  context: AppContext,
  caller: Caller,
  agentId: string,
  sourceId: string,
  targetId: string,
  options: MergeOptions,
) {
  const { trx } = scope;
  const resolved = await resolveBranches(trx, caller, agentId, sourceId, targetId);
  const { agent } = resolved;
  // Agent first, then branches in id order: the lock order every writer follows.
  await lockAgent(trx, agent.id);
  for (const id of [resolved.source.id, resolved.target.id].sort()) await lockBranch(trx, id);
  const source = await findBranchOrThrow(trx, agent.id, resolved.source.id);
  const target = await findBranchOrThrow(trx, agent.id, resolved.target.id);
  assertNotArchived(target);
  assertNotArchived(source);
  assertCanWriteBranch(caller, target);
  const isMainSource = source.id === agent.main_branch_id;
  const archive = options.archiveSourceBranch && !isMainSource;
  if (archive) assertCanWriteBranch(caller, source);
  if (options.expectedTargetVersionId && options.expectedTargetVersionId !== target.head_version_id) {
    throw new ConflictError(
      'concurrent_modification',
      `Branch "${target.name}" has moved since the preview: its head is ${target.head_version_id}, not ${options.expectedTargetVersionId}.`,
    );
  }
  const plan = await planMerge(trx, context, agent.id, source, target, {
    kind: 'merge',
    winner: options.force ? 'source' : 'later',
    resolutions: options.resolutions,
    resolutionsIn: options.resolutionsIn,
  });
  if (plan.refusal) throw plan.refusal;

  scope.afterCommit(() => context.metrics.merges.inc());
  const intoMain = target.id === agent.main_branch_id;
  const version = await landVersion(scope, context, agent, target, plan, {
    description: `Merge branch "${source.name}" into "${target.name}"`,
    parents: {
      in_branch_parent_id: plan.targetHead.id,
      merged_from_branch_id: source.id,
      merged_from_version_id: plan.sourceHead.id,
    },
    parentRows: [plan.targetHead, plan.sourceHead],
    authorUserId: caller.userId,
    mergedAuthorIds: intoMain ? await versionsStore(trx).authorsIn(agent.id, plan.aheadRanges) : undefined,
  });
  await branchesStore(trx).update(source.id, { merged_into_branch_id: target.id, ...(archive ? { is_archived: 1 } : {}) });
  if (archive) await closeProposalsOfArchivedBranch(trx, source.id, caller.userId, context.now());

  // Archiving the source moves its live traffic to the target (DESIGN §12.7).
  let movedPercentage = 0;
  let deploymentId: string | null = null;
  if (archive) {
    const active = await deploymentsStore(trx).active(agent.id);
    const split = active ? splitOf(active) : {};
    movedPercentage = split[source.id] ?? 0;
    if (movedPercentage > 0) {
      scope.afterCommit(() => context.metrics.deployments.inc({ source: 'branch_merge' }));
      const next = Object.entries(split)
        .filter(([branchId]) => branchId !== source.id)
        .map(([branchId, percentage]) => ({ branchId, percentage: branchId === target.id ? percentage + movedPercentage : percentage }));
      if (!next.some((item) => item.branchId === target.id)) next.push({ branchId: target.id, percentage: movedPercentage });
      const deployment = await activateDeployment(trx, {
        agentId: agent.id,
        split: next,
        source: 'branch_merge',
        authorUserId: caller.userId,
        deployedAtMs: context.now(),
      });
      deploymentId = deployment.id;
    }
  }
  await recordUserAction(trx, caller, context.now(), {
    action: 'merge',
    agentId: agent.id,
    resourceId: target.id,
    details: {
      source_branch_id: source.id,
      target_branch_id: target.id,
      version_id: version.id,
      merged_from_version_id: plan.sourceHead.id,
      source_archived: archive,
      moved_traffic_percentage: movedPercentage,
      deployment_id: deploymentId,
      force: options.force,
      overridden_fields: overriddenFields(plan.conflicts),
    },
  });
  if (intoMain) await autoRebaseBranches(scope, context, agent, caller);
  return {
    version_id: version.id,
    target_branch_id: target.id,
    merged_from_version_id: plan.sourceHead.id,
    source_archived: archive,
    moved_traffic_percentage: movedPercentage,
    overridden_fields: overriddenFields(plan.conflicts),
  };
}

async function resolveBranches(trx: Kysely<Database>, caller: Caller, agentId: string, sourceId: string, targetId: string) {
  const agent = await findAgentOrThrow(trx, caller, agentId);
  const source = await findBranchOrThrow(trx, agent.id, sourceId);
  const target = await findBranchOrThrow(trx, agent.id, targetId);
  if (source.id === target.id) {
    throw RequestValidationError.at(['query', 'target_branch_id'], 'A branch cannot be merged into itself.');
  }
  return { agent, source, target };
}

export function mergesService(context: AppContext) {
  const { db } = context;

  async function renderPreview(caller: Caller, agent: AgentRow, onto: BranchRow, plan: MergePlan): Promise<string> {
    const users = await context.users.describe([agent.created_by_user_id]);
    const agentJson = await renderAgentResponse(context.caches.sections, {
      agent,
      versionId: null,
      branchId: onto.id,
      documentHash: plan.prepared.rootHash,
      document: plan.document,
      access: accessInfo(users.get(agent.created_by_user_id), caller),
      documentIdentity: true,
    });
    const extra = {
      overridden_fields: overriddenFields(plan.conflicts),
      conflicts: plan.conflicts,
      source_identical_to_target: plan.refusal !== undefined,
      // Extension: what the preview was computed against, for `expected_target_version_id`.
      target_version_id: plan.targetHead.id,
      merge_base_version_id: plan.base?.id ?? null,
    };
    return `${agentJson.slice(0, -1)},${JSON.stringify(extra).slice(1)}`;
  }

  return {
    async previewMerge(caller: Caller, agentId: string, sourceId: string, targetId: string, force: boolean, resolutions?: ResolutionInput) {
      const { agent, source, target } = await resolveBranches(db, caller, agentId, sourceId, targetId);
      const plan = await planMerge(db, context, agent.id, source, target, {
        kind: 'merge',
        winner: force ? 'source' : 'later',
        resolutions,
        resolutionsIn: 'query',
      });
      return renderPreview(caller, agent, target, plan);
    },

    async merge(caller: Caller, agentId: string, sourceId: string, targetId: string, options: MergeOptions) {
      return context.write((scope) => mergeBranches(scope, context, caller, agentId, sourceId, targetId, options));
    },

    async previewRebase(caller: Caller, agentId: string, branchId: string) {
      const agent = await findAgentOrThrow(db, caller, agentId);
      const branch = await findBranchOrThrow(db, agent.id, branchId);
      if (branch.id === agent.main_branch_id) throw new ConflictError('cannot_rebase_main', 'The main branch cannot be rebased; other branches are rebased onto it.');
      const main = await findBranchOrThrow(db, agent.id, agent.main_branch_id);
      const plan = await planMerge(db, context, agent.id, branch, main, { kind: 'rebase', winner: 'source' });
      return renderPreview(caller, agent, branch, plan);
    },

    async rebase(caller: Caller, agentId: string, branchId: string) {
      return context.write(async (scope) => {
        const { trx } = scope;
        const agent = await findAgentOrThrow(trx, caller, agentId);
        await findBranchOrThrow(trx, agent.id, branchId);
        if (branchId === agent.main_branch_id) throw new ConflictError('cannot_rebase_main', 'The main branch cannot be rebased; other branches are rebased onto it.');
        await lockAgent(trx, agent.id);
        await lockBranch(trx, branchId);
        const branch = await findBranchOrThrow(trx, agent.id, branchId);
        assertNotArchived(branch);
        assertCanWriteBranch(caller, branch);
        const main = await findBranchOrThrow(trx, agent.id, agent.main_branch_id);
        const plan = await planMerge(trx, context, agent.id, branch, main, { kind: 'rebase', winner: 'source' });
        if (plan.refusal) throw plan.refusal;
        scope.afterCommit(() => context.metrics.rebases.inc({ trigger: 'manual' }));
        const version = await landVersion(scope, context, agent, branch, plan, {
          description: 'Rebase onto main',
          parents: { in_branch_parent_id: plan.sourceHead.id, out_of_branch_parent_id: plan.targetHead.id, rebased_from_version_id: plan.sourceHead.id },
          parentRows: [plan.sourceHead, plan.targetHead],
          authorUserId: caller.userId,
        });
        const overridden = overriddenFields(plan.conflicts);
        await recordUserAction(trx, caller, context.now(), {
          action: 'rebase',
          agentId: agent.id,
          resourceId: branch.id,
          details: { automatic: false, version_id: version.id, rebased_onto_version_id: plan.targetHead.id, overridden_fields: overridden },
        });
        return { version_id: version.id, branch_id: branch.id, rebased_onto_version_id: plan.targetHead.id, overridden_fields: overridden };
      });
    },
  };
}
