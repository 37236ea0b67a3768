import type { Kysely } from 'kysely';

import type { AppContext } from '../../context.js';
import { lockAgent } from '../../db/locks.js';
import type { Database } from '../../db/schema.js';
import { type BucketMovement, bucketMovements, bucketsPerBranch, type SplitItem } from '../../domain/traffic-split.js';
import { ConflictError, ForbiddenError, NotFoundError, RequestValidationError, type ValidationIssue } from '../../errors.js';
import { type AgentRow, agentsStore } from '../agents/agents.store.js';
import { recordUserAction } from '../audit/audit.events.js';
import { type BranchRow, branchesStore } from '../branches/branches.store.js';
import type { UserSummary } from '../workspaces/user-directory.js';
import type { Caller } from '../../domain/caller.js';
import { assertNoGuardedRollout } from '../experiments/guarded-rollouts.store.js';
import { activateDeployment, bucketTableAfter, bucketTableOf, splitOf } from './deployment-writer.js';
import { type DeploymentRow, deploymentsStore } from './deployments.store.js';

/** Percentages may be fractions; their total must be 100 to within this. */
const TOTAL_TOLERANCE = 1e-9;

export interface DeploymentRequestItem {
  branch_id: string;
  deployment_strategy: { type: string; traffic_percentage: number };
}

/** The share of live traffic of every branch of the agent under its active deployment. */
export async function liveShares(db: Kysely<Database>, agentId: string): Promise<Map<string, number>> {
  const active = await deploymentsStore(db).active(agentId);
  return new Map(active ? Object.entries(splitOf(active)) : []);
}

/**
 * A deployment or rollback that changes the share of an `admin_perms_required` branch needs
 * admin (decisions.md D22).
 */
export function assertMayChangeShares(caller: Caller, branches: BranchRow[], before: Map<string, number>, after: Map<string, number>) {
  if (caller.role === 'admin') return;
  for (const branch of branches) {
    const changes = Math.abs((before.get(branch.id) ?? 0) - (after.get(branch.id) ?? 0)) > TOTAL_TOLERANCE;
    if (changes && branch.protection_status === 'admin_perms_required') {
      throw new ForbiddenError(`Branch "${branch.name}" is protected: changing its share of traffic requires the admin role.`);
    }
  }
}

function formatTotal(total: number): string {
  return String(Math.round(total * 1e9) / 1e9);
}

/** What a split would do if deployed now: buckets per branch before and after, and those that move. */
export interface DeploymentPreview {
  /** The deployment it would replace. */
  active: DeploymentRow;
  before: Map<string, number>;
  after: Map<string, number>;
  movements: BucketMovement[];
}

/** An item of an agent's deployment history, with who deployed it (`undefined`: a user that no longer exists). */
export interface DeploymentItem {
  deployment: DeploymentRow;
  author: UserSummary | undefined;
}

export function deploymentsService(context: AppContext) {
  const { db } = context;

  async function withAuthors(rows: DeploymentRow[]): Promise<DeploymentItem[]> {
    const users = await context.users.describe(rows.map((row) => row.author_user_id));
    return rows.map((row) => ({ deployment: row, author: users.get(row.author_user_id) }));
  }

  /**
   * Refuses a split a deployment would refuse (422 at `loc`, 403 for a protected branch);
   * `loc` prefixes point into the request body.
   */
  async function checkSplit(
    reader: Kysely<Database>,
    caller: Caller,
    agent: AgentRow,
    split: SplitItem[],
    locOf: (index: number) => (string | number)[],
  ): Promise<void> {
    const branches = await branchesStore(reader).list(agent.id, { includeArchived: true });
    const byId = new Map(branches.map((branch) => [branch.id, branch]));
    const issues: ValidationIssue[] = [];
    const seen = new Map<string, number>();
    split.forEach((item, index) => {
      const loc = [...locOf(index), 'branch_id'];
      const earlier = seen.get(item.branchId);
      const branch = byId.get(item.branchId);
      if (earlier !== undefined) {
        issues.push({ loc, msg: `branch ${item.branchId} is named twice (also at requests[${earlier}]); name each branch once`, type: 'value_error' });
      } else if (!branch) {
        issues.push({ loc, msg: `branch ${item.branchId} is not a branch of agent ${agent.id}`, type: 'value_error' });
      } else if (branch.is_archived) {
        issues.push({ loc, msg: `branch "${branch.name}" (${branch.id}) is archived; archived branches receive no traffic`, type: 'value_error' });
      }
      seen.set(item.branchId, earlier ?? index);
    });
    const total = split.reduce((sum, item) => sum + item.percentage, 0);
    if (Math.abs(total - 100) > TOTAL_TOLERANCE) {
      issues.push({
        loc: locOf(-1),
        msg: `percentages total ${formatTotal(total)}; a deployment declares the whole allocation and must total 100`,
        type: 'value_error',
      });
    }
    if (issues.length > 0) throw new RequestValidationError(issues);

    const before = await liveShares(reader, agent.id);
    const after = new Map(split.map((item) => [item.branchId, item.percentage]));
    assertMayChangeShares(caller, branches, before, after);
  }

  /** Validates and activates a split; `loc` prefixes point into the request body. */
  async function deploy(
    trx: Kysely<Database>,
    caller: Caller,
    agent: AgentRow,
    split: SplitItem[],
    locOf: (index: number) => (string | number)[],
    restoring?: DeploymentRow,
  ): Promise<DeploymentRow> {
    await checkSplit(trx, caller, agent, split, locOf);
    return activateDeployment(trx, {
      agentId: agent.id,
      split,
      source: 'manual',
      authorUserId: caller.userId,
      deployedAtMs: context.now(),
      restoring,
    });
  }

  /**
   * The split a rollback to `deploymentId` deploys: its split without archived branches at 0% (they
   * can receive no traffic anyway); 404 for no such deployment, 409 `branch_archived` when it gives
   * traffic to a branch archived since.
   */
  async function rollbackSplit(reader: Kysely<Database>, agent: AgentRow, deploymentId: string): Promise<{ earlier: DeploymentRow; live: SplitItem[] }> {
    const earlier = await deploymentsStore(reader).find(agent.id, deploymentId);
    if (!earlier) throw new NotFoundError('deployment', deploymentId);
    const split = Object.entries(splitOf(earlier)).map(([branchId, percentage]) => ({ branchId, percentage }));
    const live: SplitItem[] = [];
    for (const item of split) {
      const branch = await branchesStore(reader).find(agent.id, item.branchId);
      if (branch?.is_archived && item.percentage > 0) {
        throw new ConflictError(
          'branch_archived',
          `Deployment ${deploymentId} sends ${item.percentage}% to branch "${branch.name}", which is archived; unarchive it or deploy a new split.`,
        );
      }
      if (!branch?.is_archived) live.push(item);
    }
    return { earlier, live };
  }

  /** What deploying `split` over the active deployment would move (a rollback passes the deployment it restores). */
  async function previewOf(reader: Kysely<Database>, agent: AgentRow, split: SplitItem[], restoring?: DeploymentRow): Promise<DeploymentPreview> {
    const active = await deploymentsStore(reader).active(agent.id);
    if (!active) throw new Error(`agent ${agent.id} has no active deployment`);
    const before = bucketTableOf(active);
    const after = bucketTableAfter(active, split, restoring);
    return { active, before: bucketsPerBranch(before), after: bucketsPerBranch(after), movements: bucketMovements(before, after) };
  }

  return {
    async create(caller: Caller, agentId: string, requests: DeploymentRequestItem[]) {
      const split = requests.map((item) => ({ branchId: item.branch_id, percentage: item.deployment_strategy.traffic_percentage }));
      const row = await context.write(async ({ trx, publish, afterCommit }) => {
        const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        await lockAgent(trx, agent.id);
        await assertNoGuardedRollout(trx, agent.id);
        publish({ kind: 'agent', agentId: agent.id });
        afterCommit(() => context.metrics.deployments.inc({ source: 'manual' }));
        const deployed = await deploy(trx, caller, agent, split, (index) =>
          index < 0 ? ['body', 'deployment_request', 'requests'] : ['body', 'deployment_request', 'requests', index],
        );
        await recordUserAction(trx, caller, deployed.deployed_at_ms, {
          action: 'deployment.create',
          agentId: agent.id,
          resourceId: deployed.id,
          details: { traffic_percentage_branch_id_map: splitOf(deployed) },
        });
        return deployed;
      });
      return { traffic_percentage_branch_id_map: splitOf(row) };
    },

    /**
     * Extension: what deploying `requests` would do, writing nothing. The split is checked as a
     * deployment checks it and its bucket table computed by the same function
     * (`bucketTableAfter`), so the movements are exactly what routing does once it is deployed.
     */
    async preview(caller: Caller, agentId: string, requests: DeploymentRequestItem[]): Promise<DeploymentPreview> {
      const split = requests.map((item) => ({ branchId: item.branch_id, percentage: item.deployment_strategy.traffic_percentage }));
      const agent = await agentsStore(db).findOrThrow(caller.workspaceId, agentId);
      await assertNoGuardedRollout(db, agent.id);
      await checkSplit(db, caller, agent, split, (index) =>
        index < 0 ? ['body', 'deployment_request', 'requests'] : ['body', 'deployment_request', 'requests', index],
      );
      return previewOf(db, agent, split);
    },

    /** Extension: what a rollback to `deploymentId` would do, writing nothing (as `preview`, for `rollback`). */
    async previewRollback(caller: Caller, agentId: string, deploymentId: string): Promise<DeploymentPreview> {
      const agent = await agentsStore(db).findOrThrow(caller.workspaceId, agentId);
      await assertNoGuardedRollout(db, agent.id);
      const { earlier, live } = await rollbackSplit(db, agent, deploymentId);
      await checkSplit(db, caller, agent, live, () => ['path', 'deployment_id']);
      return previewOf(db, agent, live, earlier);
    },

    async list(caller: Caller, agentId: string, page: number, pageSize: number): Promise<{ total: number; deployments: DeploymentItem[] }> {
      const agent = await agentsStore(db).findOrThrow(caller.workspaceId, agentId);
      const store = deploymentsStore(db);
      const [rows, total] = await Promise.all([store.page(agent.id, (page - 1) * pageSize, pageSize), store.count(agent.id)]);
      return { total, deployments: await withAuthors(rows) };
    },

    /**
     * Extension: makes an earlier split live again, as a new history item that moves as few
     * conversations as possible from the current one (decisions.md D14).
     */
    async rollback(caller: Caller, agentId: string, deploymentId: string) {
      const row = await context.write(async ({ trx, publish, afterCommit }) => {
        const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        await lockAgent(trx, agent.id);
        await assertNoGuardedRollout(trx, agent.id);
        const { earlier, live } = await rollbackSplit(trx, agent, deploymentId);
        publish({ kind: 'agent', agentId: agent.id });
        const deployed = await deploy(trx, caller, agent, live, () => ['path', 'deployment_id'], earlier);
        await recordUserAction(trx, caller, deployed.deployed_at_ms, {
          action: 'deployment.rollback',
          agentId: agent.id,
          resourceId: deployed.id,
          details: { rolled_back_to_deployment_id: earlier.id, traffic_percentage_branch_id_map: splitOf(deployed) },
        });
        // The history item says "manual" (the contract's enum has no rollback; the SDK refuses other
        // values), and so does the deployments metric; rollbacks have a counter of their own.
        afterCommit(() => {
          context.metrics.deployments.inc({ source: deployed.source });
          context.metrics.rollbacks.inc();
        });
        return deployed;
      });
      const [item] = await withAuthors([row]);
      return item;
    },
  };
}
