import type { Kysely } from 'kysely';

import { isLarge, offload } from '../../compute/offload.js';
import type { AppContext } from '../../context.js';
import { lockAgent, lockBranch } from '../../db/locks.js';
import type { Database } from '../../db/schema.js';
import type { WriteScope } from '../../db/write.js';
import { ConflictError, RequestValidationError } from '../../errors.js';
import { proceduresOf } from '../agents/agent-document.js';
import { renderAgentResponse } from '../agents/agent-response.js';
import { procedureRefs, renderProcedureConflicts } from '../procedures/procedure-sets.js';
import { type AgentRow, agentsStore } from '../agents/agents.store.js';
import { recordUserAction } from '../audit/audit.events.js';
import { assertCanWriteBranch, assertNotArchived } from '../branches/branch-access.js';
import { type BranchRow, branchesStore } from '../branches/branches.store.js';
import { activateDeployment, splitOf } from '../deployments/deployment-writer.js';
import { assertNoGuardedRollout } from '../experiments/guarded-rollouts.store.js';
import { deploymentsStore } from '../deployments/deployments.store.js';
import { commitTimeOn, landRebase, landVersion } from '../versions/commit.js';
import { type VersionRow, versionsStore } from '../versions/versions.store.js';
import { accessInfo } from '../workspaces/user-directory.js';
import type { Caller } from '../../domain/caller.js';
import { closeProposalsOfArchivedBranch } from '../merge-proposals/merge-proposals.store.js';
import { type MergePlan, overriddenFields, planMerge, planRebase, type ResolutionInput, type ResolutionsLocation } from './merge-plan.js';

const COMMA = Buffer.from(',');

async function offloadedBytes(value: unknown): Promise<Buffer> {
  const bytes = await offload('jsonBytes', value);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

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
  const source = await branchesStore(trx).findOrThrow(agent.id, resolved.source.id);
  const target = await branchesStore(trx).findOrThrow(agent.id, resolved.target.id);
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
  const mergedAuthorIds = intoMain ? await versionsStore(trx).authorsIn(agent.id, plan.aheadRanges) : undefined;
  let movedPercentage = 0;
  const { version } = await landVersion(scope, context, caller, {
    agent,
    onto: target,
    document: plan.document,
    prepared: plan.prepared,
    description: `Merge branch "${source.name}" into "${target.name}"`,
    parents: {
      in_branch_parent_id: plan.targetHead.id,
      merged_from_branch_id: source.id,
      merged_from_version_id: plan.sourceHead.id,
    },
    parentRows: [plan.targetHead, plan.sourceHead],
    mergedAuthorIds,
    committedAtMs: commitTimeOn(context, target),
    discards: 'all drafts',
    record: async ({ version }) => {
      movedPercentage = await recordMerge(scope, context, caller, { agent, source, target, plan, version, archive, force: options.force });
    },
  });
  return {
    version_id: version.id,
    target_branch_id: target.id,
    merged_from_version_id: plan.sourceHead.id,
    source_archived: archive,
    moved_traffic_percentage: movedPercentage,
    overridden_fields: overriddenFields(plan.conflicts),
  };
}

/**
 * What a merge writes besides its version: the source marked merged (and archived, its traffic
 * moved to the target, its proposals closed) and the `merge` event. Returns the traffic moved.
 */
async function recordMerge(
  scope: WriteScope,
  context: AppContext,
  caller: Caller,
  merge: { agent: AgentRow; source: BranchRow; target: BranchRow; plan: MergePlan; version: VersionRow; archive: boolean; force: boolean },
): Promise<number> {
  const { trx } = scope;
  const { agent, source, target, plan, version, archive } = merge;
  await branchesStore(trx).update(source.id, { merged_into_branch_id: target.id, ...(archive ? { is_archived: 1 } : {}) });
  if (archive) await closeProposalsOfArchivedBranch(trx, source.id, caller.userId, context.now());

  // Archiving the source moves its live traffic to the target (decisions.md D12).
  let movedPercentage = 0;
  let deploymentId: string | null = null;
  if (archive) {
    const active = await deploymentsStore(trx).active(agent.id);
    const split = active ? splitOf(active) : {};
    movedPercentage = split[source.id] ?? 0;
    if (movedPercentage > 0) {
      // A guarded rollout owns the split while it runs or is paused.
      await assertNoGuardedRollout(trx, agent.id);
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
      force: merge.force,
      overridden_fields: overriddenFields(plan.conflicts),
    },
  });
  return movedPercentage;
}

async function resolveBranches(trx: Kysely<Database>, caller: Caller, agentId: string, sourceId: string, targetId: string) {
  const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
  const source = await branchesStore(trx).findOrThrow(agent.id, sourceId);
  const target = await branchesStore(trx).findOrThrow(agent.id, targetId);
  if (source.id === target.id) {
    throw RequestValidationError.at(['query', 'target_branch_id'], 'A branch cannot be merged into itself.');
  }
  return { agent, source, target };
}

export function mergesService(context: AppContext) {
  const { db } = context;

  /**
   * The preview as UTF-8 bytes. Its conflicts hold whole values of three versions (a replaced
   * array of a 2 MB config is three such arrays): large ones are written out in a worker, and the
   * parts are joined as bytes, never as one long string (decisions.md D18).
   */
  async function renderPreview(caller: Caller, agent: AgentRow, onto: BranchRow, plan: MergePlan): Promise<Buffer> {
    const users = await context.users.describe([agent.created_by_user_id]);
    const procedures = await procedureRefs(context, db, agent.id, proceduresOf(plan.document));
    const agentJson = await renderAgentResponse(context.caches.sections, {
      agent,
      versionId: null,
      branchId: onto.id,
      documentHash: plan.prepared.rootHash,
      document: plan.document,
      access: accessInfo(users.get(agent.created_by_user_id), caller),
      documentIdentity: true,
      procedures,
    });
    const extra = {
      overridden_fields: overriddenFields(plan.conflicts),
      conflicts: await renderProcedureConflicts(context, db, agent.id, plan.conflicts),
      source_identical_to_target: plan.refusal !== undefined,
      // Extension: what the preview was computed against, for `expected_target_version_id`.
      target_version_id: plan.targetHead.id,
      merge_base_version_id: plan.base?.id ?? null,
    };
    const extraJson = isLarge(plan.conflicts) ? await offloadedBytes(extra) : Buffer.from(JSON.stringify(extra));
    return Buffer.concat([Buffer.from(agentJson.slice(0, -1)), COMMA, extraJson.subarray(1)]);
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
      const agent = await agentsStore(db).findOrThrow(caller.workspaceId, agentId);
      const branch = await branchesStore(db).findOrThrow(agent.id, branchId);
      if (branch.id === agent.main_branch_id) throw new ConflictError('cannot_rebase_main', 'The main branch cannot be rebased; other branches are rebased onto it.');
      const plan = await planRebase(db, context, agent, branch);
      return renderPreview(caller, agent, branch, plan);
    },

    async rebase(caller: Caller, agentId: string, branchId: string) {
      return context.write(async (scope) => {
        const { trx } = scope;
        const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        await branchesStore(trx).findOrThrow(agent.id, branchId);
        if (branchId === agent.main_branch_id) throw new ConflictError('cannot_rebase_main', 'The main branch cannot be rebased; other branches are rebased onto it.');
        await lockAgent(trx, agent.id);
        await lockBranch(trx, branchId);
        const branch = await branchesStore(trx).findOrThrow(agent.id, branchId);
        assertNotArchived(branch);
        assertCanWriteBranch(caller, branch);
        const plan = await planRebase(trx, context, agent, branch);
        if (plan.refusal) throw plan.refusal;
        const version = await landRebase(scope, context, caller, agent, branch, plan, 'manual');
        return { version_id: version.id, branch_id: branch.id, rebased_onto_version_id: plan.targetHead.id, overridden_fields: overriddenFields(plan.conflicts) };
      });
    },
  };
}
