import type { Kysely } from 'kysely';

import type { AppContext } from '../../context.js';
import { lockAgent } from '../../db/locks.js';
import type { WriteScope } from '../../db/write.js';
import type { Database, GuardedRolloutEventTable } from '../../db/schema.js';
import type { Caller } from '../../domain/caller.js';
import { newId } from '../../domain/ids.js';
import type { SplitItem } from '../../domain/traffic-split.js';
import { ConflictError, NotFoundError, RequestValidationError, type ValidationIssue } from '../../errors.js';
import { type AgentRow, agentsStore } from '../agents/agents.store.js';
import { type AuditRecord, recordOperatorAction, recordUserAction } from '../audit/audit.events.js';
import { type BranchRow, branchesStore } from '../branches/branches.store.js';
import { activateDeployment, splitOf } from '../deployments/deployment-writer.js';
import { assertMayChangeShares } from '../deployments/deployments.service.js';
import { type DeploymentRow, deploymentsStore } from '../deployments/deployments.store.js';
import { decideRollout, type DecisionNumbers, type GuardMetric, type RolloutAction, type RolloutStep, type RolloutUnderEvaluation } from './guarded-rollouts.decision.js';
import type { GuardedRolloutSources } from './guarded-rollouts.sources.js';
import { assertNoGuardedRollout, type GuardedRolloutEventRow, type GuardedRolloutRow, guardedRolloutsStore } from './guarded-rollouts.store.js';

/** A rollout as the request asks for it (wire names mapped at the route). */
export interface NewGuardedRollout {
  branchId: string;
  baselineBranchId?: string;
  steps: RolloutStep[];
  guardMetrics: GuardMetric[];
  alpha: number;
}

/** A rollout with its events, oldest first. */
export interface GuardedRollout {
  rollout: GuardedRolloutRow;
  steps: RolloutStep[];
  guardMetrics: GuardMetric[];
  beforeSplit: Record<string, number>;
  events: GuardedRolloutEventRow[];
}

/** What one evaluation of a running rollout did. */
export interface EvaluationOutcome {
  rolloutId: string;
  /** `skipped`: the rollout changed (paused, rolled back, acted on elsewhere) between the read and the write. */
  action: RolloutAction['type'] | 'skipped';
  deploymentId?: string;
}

/** Shares are rounded to this many decimals: a step's arithmetic must not leave 1e-15 residues. */
const roundShare = (value: number) => Math.round(value * 1e9) / 1e9;

/**
 * The split of a step: the candidate gets `percentage`, taken from (or given back to) the
 * baseline; every other branch keeps its share of `before`.
 */
export function stepSplit(before: Record<string, number>, branchId: string, baselineBranchId: string, percentage: number): SplitItem[] {
  const candidate = before[branchId] ?? 0;
  const baseline = roundShare((before[baselineBranchId] ?? 0) + candidate - percentage);
  const split = Object.entries(before).map(([id, share]) => ({
    branchId: id,
    percentage: id === branchId ? percentage : id === baselineBranchId ? baseline : share,
  }));
  for (const id of [baselineBranchId, branchId]) {
    if (!(id in before)) split.push({ branchId: id, percentage: id === branchId ? percentage : baseline });
  }
  return split;
}

function toGuardedRollout(rollout: GuardedRolloutRow, events: GuardedRolloutEventRow[]): GuardedRollout {
  const steps = (JSON.parse(rollout.steps) as { traffic_percentage: number; min_duration_secs: number; min_outcomes_per_branch: number }[]).map((step) => ({
    trafficPercentage: step.traffic_percentage,
    minDurationSecs: step.min_duration_secs,
    minOutcomesPerBranch: step.min_outcomes_per_branch,
  }));
  const guardMetrics = (JSON.parse(rollout.guard_metrics) as { metric_key: string; max_regression: number }[]).map((guard) => ({
    metricKey: guard.metric_key,
    maxRegression: guard.max_regression,
  }));
  return { rollout, steps, guardMetrics, beforeSplit: JSON.parse(rollout.before_split) as Record<string, number>, events };
}

function underEvaluation(rollout: GuardedRollout): RolloutUnderEvaluation {
  return {
    branchId: rollout.rollout.branch_id,
    baselineBranchId: rollout.rollout.baseline_branch_id,
    steps: rollout.steps,
    guardMetrics: rollout.guardMetrics,
    currentStep: rollout.rollout.current_step,
    stepStartedAtMs: rollout.rollout.step_started_at_ms,
    stepExtended: rollout.rollout.step_extended === 1,
  };
}

/** Who acted: a user (by a route) or the evaluator (the system). */
type Actor = { kind: 'user'; caller: Caller } | { kind: 'system' };

export function guardedRolloutsService(context: AppContext, sources: GuardedRolloutSources) {
  const { db } = context;

  async function withEvents(rows: GuardedRolloutRow[], reader: Kysely<Database> = db): Promise<GuardedRollout[]> {
    const events = await guardedRolloutsStore(reader).events(rows.map((row) => row.id));
    return rows.map((row) =>
      toGuardedRollout(
        row,
        events.filter((event) => event.rollout_id === row.id),
      ),
    );
  }

  async function findOrThrow(reader: Kysely<Database>, agentId: string, rolloutId: string): Promise<GuardedRolloutRow> {
    const row = await guardedRolloutsStore(reader).find(agentId, rolloutId);
    if (!row) throw new NotFoundError('guarded_rollout', rolloutId);
    return row;
  }

  async function audit(trx: Kysely<Database>, actor: Actor, agent: AgentRow, atMs: number, record: AuditRecord): Promise<void> {
    if (actor.kind === 'user') await recordUserAction(trx, actor.caller, atMs, record);
    else await recordOperatorAction(trx, 'system', agent.workspace_id, atMs, record);
  }

  /** Appends an event and moves the rollout's event count: each event is one row, numbered per rollout. */
  async function addEvent(
    trx: Kysely<Database>,
    rollout: GuardedRolloutRow,
    actor: Actor,
    event: Pick<GuardedRolloutEventTable, 'type' | 'at_ms' | 'step' | 'reason'> & { deploymentId?: string; numbers?: DecisionNumbers },
  ): Promise<number> {
    const seqNo = rollout.event_count;
    await guardedRolloutsStore(trx).insertEvent({
      rollout_id: rollout.id,
      seq_no: seqNo,
      agent_id: rollout.agent_id,
      type: event.type,
      at_ms: event.at_ms,
      step: event.step,
      deployment_id: event.deploymentId ?? null,
      reason: event.reason,
      numbers: event.numbers ? JSON.stringify(event.numbers) : null,
      actor_kind: actor.kind,
      actor_user_id: actor.kind === 'user' ? actor.caller.userId : null,
    });
    return seqNo + 1;
  }

  /** Makes `split` the agent's active deployment on the rollout's behalf, with why. */
  async function deployForRollout(
    scope: WriteScope,
    agent: AgentRow,
    rollout: GuardedRolloutRow,
    split: SplitItem[],
    reason: string,
    authorUserId: string,
    restoring?: DeploymentRow,
  ): Promise<DeploymentRow> {
    scope.publish({ kind: 'agent', agentId: agent.id });
    const deployed = await activateDeployment(scope.trx, {
      agentId: agent.id,
      split,
      source: 'manual',
      authorUserId,
      deployedAtMs: context.now(),
      restoring,
      guardedRollout: { id: rollout.id, reason: `Guarded rollout ${rollout.id}: ${reason}` },
    });
    scope.afterCommit(() => {
      context.metrics.deployments.inc({ source: deployed.source });
      if (restoring) context.metrics.rollbacks.inc();
    });
    return deployed;
  }

  /**
   * The split from before the rollout, as a rollback deploys it. A branch archived since (only the
   * baseline can be: it may have reached 0%) gives its share to the baseline, else the candidate.
   */
  async function beforeSplitLive(trx: Kysely<Database>, rollout: GuardedRolloutRow): Promise<SplitItem[]> {
    const before = JSON.parse(rollout.before_split) as Record<string, number>;
    const branches = new Map((await branchesStore(trx).list(rollout.agent_id, { includeArchived: true })).map((branch) => [branch.id, branch]));
    const live = (id: string) => branches.get(id) !== undefined && !branches.get(id)!.is_archived;
    const heir = [rollout.baseline_branch_id, rollout.branch_id].find(live);
    const split = new Map<string, number>();
    for (const [id, share] of Object.entries(before)) {
      const to = live(id) ? id : heir;
      if (to) split.set(to, roundShare((split.get(to) ?? 0) + share));
    }
    return [...split].map(([branchId, percentage]) => ({ branchId, percentage }));
  }

  /** Rolls the rollout back to the split from before it (in the caller's transaction, under the agent lock). */
  async function rollBack(scope: WriteScope, agent: AgentRow, rollout: GuardedRolloutRow, actor: Actor, reason: string, numbers?: DecisionNumbers) {
    const { trx } = scope;
    const now = context.now();
    const split = await beforeSplitLive(trx, rollout);
    const restoring = await deploymentsStore(trx).find(agent.id, rollout.before_deployment_id);
    const author = actor.kind === 'user' ? actor.caller.userId : rollout.created_by_user_id;
    const deployed = await deployForRollout(scope, agent, rollout, split, `rolled back: ${reason}`, author, restoring);
    const eventCount = await addEvent(trx, rollout, actor, { type: 'rolled_back', at_ms: now, step: rollout.current_step, reason, deploymentId: deployed.id, numbers });
    await guardedRolloutsStore(trx).update(rollout.id, { status: 'rolled_back', ended_at_ms: now, event_count: eventCount });
    await audit(trx, actor, agent, now, {
      action: 'guarded_rollout.rollback',
      agentId: agent.id,
      resourceId: rollout.id,
      details: { deployment_id: deployed.id, reason, traffic_percentage_branch_id_map: splitOf(deployed) },
    });
    return deployed;
  }

  /** Validates a new rollout against the agent (422 at the body's field, 403 for a protected branch's share). */
  async function checkNewRollout(trx: Kysely<Database>, caller: Caller, agent: AgentRow, input: NewGuardedRollout, before: Record<string, number>) {
    const branches = await branchesStore(trx).list(agent.id, { includeArchived: true });
    const byId = new Map(branches.map((branch) => [branch.id, branch]));
    const issues: ValidationIssue[] = [];
    const baselineId = input.baselineBranchId ?? agent.main_branch_id;
    const checkBranch = (id: string, field: string): BranchRow | undefined => {
      const branch = byId.get(id);
      if (!branch) issues.push({ loc: ['body', field], msg: `branch ${id} is not a branch of agent ${agent.id}`, type: 'value_error' });
      else if (branch.is_archived) issues.push({ loc: ['body', field], msg: `branch "${branch.name}" (${id}) is archived; archived branches receive no traffic`, type: 'value_error' });
      return branch;
    };
    const candidate = checkBranch(input.branchId, 'branch_id');
    const baseline = checkBranch(baselineId, 'baseline_branch_id');
    if (candidate && baseline && candidate.id === baseline.id) {
      issues.push({ loc: ['body', 'baseline_branch_id'], msg: 'the baseline must be another branch than the one rolled out', type: 'value_error' });
    }
    input.steps.forEach((step, index) => {
      const previous = input.steps[index - 1];
      if (previous && step.trafficPercentage <= previous.trafficPercentage) {
        issues.push({
          loc: ['body', 'steps', index, 'traffic_percentage'],
          msg: `steps must increase: ${step.trafficPercentage} follows ${previous.trafficPercentage}`,
          type: 'value_error',
        });
      }
    });
    const available = roundShare((before[baselineId] ?? 0) + (before[input.branchId] ?? 0));
    const last = input.steps.length - 1;
    if (baseline && input.steps[last].trafficPercentage > available + 1e-9) {
      issues.push({
        loc: ['body', 'steps', last, 'traffic_percentage'],
        msg: `the baseline has ${before[baselineId] ?? 0}% and the branch ${before[input.branchId] ?? 0}%: a step can give the branch at most ${available}%`,
        type: 'value_error',
      });
    }
    const metrics = new Set((await sources.metrics(trx, agent)).map((metric) => metric.metric_key));
    const seen = new Set<string>();
    input.guardMetrics.forEach((guard, index) => {
      const loc = ['body', 'guard_metrics', index, 'metric_key'];
      if (!metrics.has(guard.metricKey)) issues.push({ loc, msg: `metric "${guard.metricKey}" is not defined for agent ${agent.id}`, type: 'value_error' });
      else if (seen.has(guard.metricKey)) issues.push({ loc, msg: `metric "${guard.metricKey}" is named twice`, type: 'value_error' });
      seen.add(guard.metricKey);
    });
    if (issues.length > 0) throw new RequestValidationError(issues);
    // Every step moves the same two shares: checking the last is checking them all.
    const after = new Map(stepSplit(before, input.branchId, baselineId, input.steps[last].trafficPercentage).map((item) => [item.branchId, item.percentage]));
    assertMayChangeShares(caller, branches, new Map(Object.entries(before)), after);
    return baselineId;
  }

  /** The rollout for a user's action, under the agent lock, or 404. */
  async function lockedRollout(scope: WriteScope, caller: Caller, agentId: string, rolloutId: string) {
    const agent = await agentsStore(scope.trx).findOrThrow(caller.workspaceId, agentId);
    await lockAgent(scope.trx, agent.id);
    return { agent, rollout: await findOrThrow(scope.trx, agent.id, rolloutId) };
  }

  return {
    async create(caller: Caller, agentId: string, input: NewGuardedRollout) {
      return context.write(async (scope) => {
        const { trx } = scope;
        const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        await lockAgent(trx, agent.id);
        await assertNoGuardedRollout(trx, agent.id);
        const active = await deploymentsStore(trx).active(agent.id);
        if (!active) throw new Error(`agent ${agent.id} has no active deployment`);
        const before = splitOf(active);
        const baselineId = await checkNewRollout(trx, caller, agent, input, before);
        const now = context.now();
        const row: GuardedRolloutRow = {
          id: newId('agtgrol_', now),
          agent_id: agent.id,
          branch_id: input.branchId,
          baseline_branch_id: baselineId,
          steps: JSON.stringify(
            input.steps.map((step) => ({
              traffic_percentage: step.trafficPercentage,
              min_duration_secs: step.minDurationSecs,
              min_outcomes_per_branch: step.minOutcomesPerBranch,
            })),
          ),
          guard_metrics: JSON.stringify(input.guardMetrics.map((guard) => ({ metric_key: guard.metricKey, max_regression: guard.maxRegression }))),
          alpha: input.alpha,
          status: 'running',
          current_step: 0,
          step_extended: 0,
          before_split: active.split,
          before_deployment_id: active.id,
          created_by_user_id: caller.userId,
          started_at_ms: now,
          step_started_at_ms: now,
          ended_at_ms: null,
          event_count: 0,
        };
        await guardedRolloutsStore(trx).insert(row);
        const first = input.steps[0];
        const reason = `started by user ${caller.userId}: step 1 of ${input.steps.length} sends ${first.trafficPercentage}% to the branch`;
        const deployed = await deployForRollout(scope, agent, row, stepSplit(before, input.branchId, baselineId, first.trafficPercentage), reason, caller.userId);
        const eventCount = await addEvent(trx, row, { kind: 'user', caller }, { type: 'started', at_ms: now, step: 0, reason, deploymentId: deployed.id });
        await guardedRolloutsStore(trx).update(row.id, { event_count: eventCount });
        await recordUserAction(trx, caller, now, {
          action: 'guarded_rollout.create',
          agentId: agent.id,
          resourceId: row.id,
          details: { branch_id: row.branch_id, baseline_branch_id: baselineId, deployment_id: deployed.id, traffic_percentage_branch_id_map: splitOf(deployed) },
        });
        return { rolloutId: row.id, status: row.status, currentStep: 0, deploymentId: deployed.id };
      });
    },

    async list(caller: Caller, agentId: string): Promise<GuardedRollout[]> {
      const agent = await agentsStore(db).findOrThrow(caller.workspaceId, agentId);
      return withEvents(await guardedRolloutsStore(db).list(agent.id));
    },

    async get(caller: Caller, agentId: string, rolloutId: string): Promise<GuardedRollout> {
      const agent = await agentsStore(db).findOrThrow(caller.workspaceId, agentId);
      const [rollout] = await withEvents([await findOrThrow(db, agent.id, rolloutId)]);
      return rollout;
    },

    /** Stops evaluation; the split stays as it is (and manual deployments stay refused). */
    async pause(caller: Caller, agentId: string, rolloutId: string): Promise<GuardedRollout> {
      return context.write(async (scope) => {
        const { agent, rollout } = await lockedRollout(scope, caller, agentId, rolloutId);
        if (rollout.status !== 'running') {
          throw new ConflictError('guarded_rollout_not_running', `Guarded rollout ${rollout.id} is ${rollout.status}: only a running rollout can be paused.`);
        }
        const now = context.now();
        const eventCount = await addEvent(scope.trx, rollout, { kind: 'user', caller }, { type: 'paused', at_ms: now, step: rollout.current_step, reason: `paused by user ${caller.userId}` });
        await guardedRolloutsStore(scope.trx).update(rollout.id, { status: 'paused', event_count: eventCount });
        await recordUserAction(scope.trx, caller, now, { action: 'guarded_rollout.pause', agentId: agent.id, resourceId: rollout.id });
        const [updated] = await withEvents([await findOrThrow(scope.trx, agent.id, rollout.id)], scope.trx);
        return updated;
      });
    },

    /** Evaluation goes on; the step's clock keeps the time it had run (a paused step is not restarted). */
    async resume(caller: Caller, agentId: string, rolloutId: string): Promise<GuardedRollout> {
      return context.write(async (scope) => {
        const { agent, rollout } = await lockedRollout(scope, caller, agentId, rolloutId);
        if (rollout.status !== 'paused') {
          throw new ConflictError('guarded_rollout_not_paused', `Guarded rollout ${rollout.id} is ${rollout.status}: only a paused rollout can be resumed.`);
        }
        const now = context.now();
        const eventCount = await addEvent(scope.trx, rollout, { kind: 'user', caller }, { type: 'resumed', at_ms: now, step: rollout.current_step, reason: `resumed by user ${caller.userId}` });
        await guardedRolloutsStore(scope.trx).update(rollout.id, { status: 'running', event_count: eventCount });
        await recordUserAction(scope.trx, caller, now, { action: 'guarded_rollout.resume', agentId: agent.id, resourceId: rollout.id });
        const [updated] = await withEvents([await findOrThrow(scope.trx, agent.id, rollout.id)], scope.trx);
        return updated;
      });
    },

    /** Back to the split from before the rollout, at once, as a deployment. */
    async rollback(caller: Caller, agentId: string, rolloutId: string): Promise<GuardedRollout> {
      return context.write(async (scope) => {
        const { agent, rollout } = await lockedRollout(scope, caller, agentId, rolloutId);
        if (rollout.status !== 'running' && rollout.status !== 'paused') {
          throw new ConflictError('guarded_rollout_finished', `Guarded rollout ${rollout.id} is ${rollout.status}: there is nothing to roll back.`);
        }
        const active = await deploymentsStore(scope.trx).active(agent.id);
        const split = await beforeSplitLive(scope.trx, rollout);
        const branches = await branchesStore(scope.trx).list(agent.id, { includeArchived: true });
        assertMayChangeShares(caller, branches, new Map(Object.entries(active ? splitOf(active) : {})), new Map(split.map((item) => [item.branchId, item.percentage])));
        await rollBack(scope, agent, rollout, { kind: 'user', caller }, `rolled back by user ${caller.userId}`);
        const [updated] = await withEvents([await findOrThrow(scope.trx, agent.id, rollout.id)], scope.trx);
        return updated;
      });
    },

    /**
     * One evaluation of a running rollout, as the lease holder runs it: reads the results, decides,
     * and writes what it decided in one transaction, which first checks that the rollout is still
     * as it was read (another evaluation, a pause or a rollback may have come in between).
     */
    async evaluate(row: GuardedRolloutRow): Promise<EvaluationOutcome> {
      const agent = await agentsStore(db).findById(row.agent_id);
      if (!agent) return { rolloutId: row.id, action: 'skipped' };
      const [rollout] = await withEvents([row]);
      const results = await sources.results(context, agent, { baselineBranchId: row.baseline_branch_id, alpha: row.alpha });
      const action = decideRollout(results, underEvaluation(rollout), context.now());
      if (action.type === 'wait') return { rolloutId: row.id, action: 'wait' };
      return context.write(async (scope): Promise<EvaluationOutcome> => {
        const { trx } = scope;
        await lockAgent(trx, agent.id);
        const current = await guardedRolloutsStore(trx).find(agent.id, row.id);
        if (!current || current.status !== 'running' || current.event_count !== row.event_count) return { rolloutId: row.id, action: 'skipped' };
        const system: Actor = { kind: 'system' };
        const now = context.now();
        const store = guardedRolloutsStore(trx);
        switch (action.type) {
          case 'rolled_back': {
            const deployed = await rollBack(scope, agent, current, system, action.reason, action.numbers);
            return { rolloutId: row.id, action: action.type, deploymentId: deployed.id };
          }
          case 'advanced': {
            const step = rollout.steps[action.toStep];
            const split = stepSplit(rollout.beforeSplit, current.branch_id, current.baseline_branch_id, step.trafficPercentage);
            const deployed = await deployForRollout(scope, agent, current, split, action.reason, current.created_by_user_id);
            const eventCount = await addEvent(trx, current, system, { type: 'advanced', at_ms: now, step: action.toStep, reason: action.reason, deploymentId: deployed.id, numbers: action.numbers });
            await store.update(current.id, { current_step: action.toStep, step_started_at_ms: now, step_extended: 0, event_count: eventCount });
            await audit(trx, system, agent, now, {
              action: 'guarded_rollout.advance',
              agentId: agent.id,
              resourceId: current.id,
              details: { step: action.toStep, deployment_id: deployed.id, traffic_percentage_branch_id_map: splitOf(deployed) },
            });
            return { rolloutId: row.id, action: action.type, deploymentId: deployed.id };
          }
          case 'completed': {
            const eventCount = await addEvent(trx, current, system, { type: 'completed', at_ms: now, step: current.current_step, reason: action.reason, numbers: action.numbers });
            await store.update(current.id, { status: 'completed', ended_at_ms: now, event_count: eventCount });
            await audit(trx, system, agent, now, { action: 'guarded_rollout.complete', agentId: agent.id, resourceId: current.id, details: { step: current.current_step } });
            return { rolloutId: row.id, action: action.type };
          }
          case 'extended': {
            const eventCount = await addEvent(trx, current, system, { type: 'extended', at_ms: now, step: current.current_step, reason: action.reason, numbers: action.numbers });
            await store.update(current.id, { step_extended: 1, event_count: eventCount });
            await audit(trx, system, agent, now, { action: 'guarded_rollout.extend', agentId: agent.id, resourceId: current.id, details: { step: current.current_step } });
            return { rolloutId: row.id, action: action.type };
          }
        }
      });
    },
  };
}

export type GuardedRolloutsService = ReturnType<typeof guardedRolloutsService>;
