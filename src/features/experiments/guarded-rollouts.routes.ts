import * as z from 'zod';

import type { AppContext } from '../../context.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import { type GuardedRollout, guardedRolloutsService } from './guarded-rollouts.service.js';
import { DEFAULT_SOURCES, type GuardedRolloutSources } from './guarded-rollouts.sources.js';

const TAG = 'experiments';
const BASE = '/v1/convai/agents/:agent_id/guarded-rollouts';
const agentParams = z.object({ agent_id: z.string() });
const rolloutParams = z.object({ agent_id: z.string(), guarded_rollout_id: z.string() });
const onRollout = { agent_id: 'agentId', guarded_rollout_id: 'guardedRolloutId' } as const;

const zStep = z.object({
  traffic_percentage: z.number().gt(0).lte(100).describe("The candidate's share of traffic during the step (0 < p ≤ 100); steps increase."),
  min_duration_secs: z.int().min(0).max(31_536_000).describe('The least time the step runs before it may advance.'),
  min_outcomes_per_branch: z.int().min(0).max(1_000_000_000).describe('Values of every guard metric needed on both branches before the step may advance.'),
});
const zGuardMetric = z.object({
  metric_key: z.string().min(1).max(200).describe('A defined metric of the agent (built in: `call_successful`, `call_duration_secs`).'),
  max_regression: z.number().min(0).max(1e12).describe("How much worse than the baseline the branch may be, in the metric's units: beyond it (with the interval's evidence), the rollout is rolled back."),
});
const zInterval = z.object({ lower: z.number(), upper: z.number() });

const zNewRollout = z.object({
  branch_id: z.string().max(500).describe('The branch rolled out.'),
  baseline_branch_id: z.string().max(500).optional().describe('The branch it is compared with and takes its share from (default: main).'),
  steps: z.array(zStep).min(1).max(10),
  guard_metrics: z.array(zGuardMetric).min(1).max(10),
  alpha: z.number().gt(0).lte(0.5).optional().describe('The error rate of the always-valid intervals the guards read (default 0.05).'),
});

const zNumbers = z
  .object({
    sample_ratio_mismatch: z.object({ mismatch: z.boolean(), e_value: z.number(), alpha: z.number() }),
    guard_metrics: z.array(
      z.object({
        metric_key: z.string(),
        higher_is_better: z.boolean().nullable(),
        max_regression: z.number(),
        n: z.record(z.string(), z.number()).describe('Values per branch: the candidate and the baseline.'),
        difference: z.number().nullable(),
        interval: zInterval.nullable(),
        decision: z.enum(['better', 'worse', 'inconclusive']).nullable(),
        regressed: z.boolean(),
      }),
    ),
  })
  .nullable()
  .describe("What the evaluator decided on (null for a user's action).");

const zEvent = z.object({
  type: z.enum(['started', 'advanced', 'extended', 'rolled_back', 'completed', 'paused', 'resumed']),
  at_unix_secs: z.int(),
  step: z.int().describe('The step (from 0) the rollout is at after the event.'),
  deployment_id: z.string().optional().describe('The deployment the event made (a step, or the rollback).'),
  reason: z.string(),
  actor_kind: z.enum(['user', 'system']),
  actor_user_id: z.string().nullable(),
  numbers: zNumbers,
});

const zRollout = z.object({
  guarded_rollout_id: z.string(),
  agent_id: z.string(),
  branch_id: z.string(),
  baseline_branch_id: z.string(),
  steps: z.array(zStep),
  guard_metrics: z.array(zGuardMetric),
  alpha: z.number(),
  status: z.enum(['running', 'paused', 'completed', 'rolled_back']),
  current_step: z.int(),
  started_at_unix_secs: z.int(),
  step_started_at_unix_secs: z.int(),
  ended_at_unix_secs: z.int().nullable(),
  before_split: z.record(z.string(), z.number()).describe('The split before the rollout: what a rollback restores.'),
  before_deployment_id: z.string(),
  created_by_user_id: z.string(),
  events: z.array(zEvent),
});

const seconds = (ms: number) => Math.floor(ms / 1000);

/** A rollout as `zRollout` shows it. */
function rolloutWire({ rollout, steps, guardMetrics, beforeSplit, events }: GuardedRollout) {
  return {
    guarded_rollout_id: rollout.id,
    agent_id: rollout.agent_id,
    branch_id: rollout.branch_id,
    baseline_branch_id: rollout.baseline_branch_id,
    steps: steps.map((step) => ({
      traffic_percentage: step.trafficPercentage,
      min_duration_secs: step.minDurationSecs,
      min_outcomes_per_branch: step.minOutcomesPerBranch,
    })),
    guard_metrics: guardMetrics.map((guard) => ({ metric_key: guard.metricKey, max_regression: guard.maxRegression })),
    alpha: rollout.alpha,
    status: rollout.status,
    current_step: rollout.current_step,
    started_at_unix_secs: seconds(rollout.started_at_ms),
    step_started_at_unix_secs: seconds(rollout.step_started_at_ms),
    ended_at_unix_secs: rollout.ended_at_ms === null ? null : seconds(rollout.ended_at_ms),
    before_split: beforeSplit,
    before_deployment_id: rollout.before_deployment_id,
    created_by_user_id: rollout.created_by_user_id,
    events: events.map((event) => ({
      type: event.type,
      at_unix_secs: seconds(event.at_ms),
      step: event.step,
      ...(event.deployment_id ? { deployment_id: event.deployment_id } : {}),
      reason: event.reason,
      actor_kind: event.actor_kind,
      actor_user_id: event.actor_user_id,
      numbers: event.numbers === null ? null : (JSON.parse(event.numbers) as unknown),
    })),
  };
}

const EXTENSION = 'Extension (not in the ElevenLabs API): ';

export function guardedRolloutRoutes(context: AppContext, sources: GuardedRolloutSources = DEFAULT_SOURCES): RouteDefinition[] {
  const rollouts = guardedRolloutsService(context, sources);
  return [
    defineRoute({
      method: 'POST',
      url: BASE,
      operationId: 'create_guarded_rollout_route',
      summary: 'Start A Guarded Rollout (extension)',
      description:
        `${EXTENSION}rolls \`branch_id\` out by steps while guard metrics are watched. Step 0 is deployed at once: the ` +
        'branch gets its share, taken from the baseline (other branches keep theirs; 422 if the baseline cannot give it). ' +
        'A sample-ratio mismatch or a guard metric regressing beyond `max_regression` rolls back to the split from before, ' +
        'at once; a step advances once its `min_duration_secs` has passed and every guard metric has ' +
        '`min_outcomes_per_branch` values on both branches. Each step and rollback is a deployment. 409 ' +
        '`guarded_rollout_in_progress` while another runs or is paused; changing a protected branch\'s share needs admin.',
      tag: TAG,
      permission: 'write',
      extension: true,
      params: agentParams,
      body: zNewRollout,
      example: {
        params: { agent_id: 'agentId' },
        body: (ids) => ({
          branch_id: ids.branchId,
          steps: [
            { traffic_percentage: 10, min_duration_secs: 3600, min_outcomes_per_branch: 200 },
            { traffic_percentage: 50, min_duration_secs: 3600, min_outcomes_per_branch: 500 },
          ],
          guard_metrics: [{ metric_key: 'call_successful', max_regression: 0.02 }],
          alpha: 0.05,
        }),
        references: (ids) => ({ body: { baseline_branch_id: ids.mainBranchId } }),
      },
      responses: {
        200: z.object({ guarded_rollout_id: z.string(), status: z.literal('running'), current_step: z.int(), deployment_id: z.string() }),
      },
      handler: async ({ caller, params, body }) => {
        const created = await rollouts.create(caller, params.agent_id, {
          branchId: body.branch_id,
          baselineBranchId: body.baseline_branch_id,
          steps: body.steps.map((step) => ({
            trafficPercentage: step.traffic_percentage,
            minDurationSecs: step.min_duration_secs,
            minOutcomesPerBranch: step.min_outcomes_per_branch,
          })),
          guardMetrics: body.guard_metrics.map((guard) => ({ metricKey: guard.metric_key, maxRegression: guard.max_regression })),
          alpha: body.alpha ?? 0.05,
        });
        return { guarded_rollout_id: created.rolloutId, status: created.status, current_step: created.currentStep, deployment_id: created.deploymentId };
      },
    }),

    defineRoute({
      method: 'GET',
      url: BASE,
      operationId: 'list_guarded_rollouts_route',
      summary: 'List Guarded Rollouts (extension)',
      description: `${EXTENSION}the agent's guarded rollouts, newest first, each with its events.`,
      tag: TAG,
      permission: 'read',
      extension: true,
      params: agentParams,
      example: { params: { agent_id: 'agentId' } },
      responses: { 200: z.object({ guarded_rollouts: z.array(zRollout) }) },
      handler: async ({ caller, params }) => ({ guarded_rollouts: (await rollouts.list(caller, params.agent_id)).map(rolloutWire) }),
    }),

    defineRoute({
      method: 'GET',
      url: `${BASE}/:guarded_rollout_id`,
      operationId: 'get_guarded_rollout_route',
      summary: 'Get A Guarded Rollout (extension)',
      description: `${EXTENSION}a guarded rollout: its config, status, step, the split from before it, and its events with the numbers behind each decision.`,
      tag: TAG,
      permission: 'read',
      extension: true,
      params: rolloutParams,
      example: { params: onRollout },
      responses: { 200: zRollout },
      handler: async ({ caller, params }) => rolloutWire(await rollouts.get(caller, params.agent_id, params.guarded_rollout_id)),
    }),

    defineRoute({
      method: 'POST',
      url: `${BASE}/:guarded_rollout_id/pause`,
      operationId: 'pause_guarded_rollout_route',
      summary: 'Pause A Guarded Rollout (extension)',
      description: `${EXTENSION}stops evaluating the rollout; the split stays (and manual deployments stay refused) until it is resumed or rolled back. 409 \`guarded_rollout_not_running\`.`,
      tag: TAG,
      permission: 'write',
      extension: true,
      params: rolloutParams,
      example: { params: onRollout, conflictsWith: 'guarded_rollout_not_running' },
      responses: { 200: zRollout },
      handler: async ({ caller, params }) => rolloutWire(await rollouts.pause(caller, params.agent_id, params.guarded_rollout_id)),
    }),

    defineRoute({
      method: 'POST',
      url: `${BASE}/:guarded_rollout_id/resume`,
      operationId: 'resume_guarded_rollout_route',
      summary: 'Resume A Guarded Rollout (extension)',
      description: `${EXTENSION}evaluates a paused rollout again; the step keeps the time it had run. 409 \`guarded_rollout_not_paused\`.`,
      tag: TAG,
      permission: 'write',
      extension: true,
      params: rolloutParams,
      example: { params: onRollout, conflictsWith: 'guarded_rollout_not_paused' },
      responses: { 200: zRollout },
      handler: async ({ caller, params }) => rolloutWire(await rollouts.resume(caller, params.agent_id, params.guarded_rollout_id)),
    }),

    defineRoute({
      method: 'POST',
      url: `${BASE}/:guarded_rollout_id/rollback`,
      operationId: 'rollback_guarded_rollout_route',
      summary: 'Roll Back A Guarded Rollout (extension)',
      description:
        `${EXTENSION}deploys the split from before the rollout at once (conversations go back where they were) and ends it ` +
        "as `rolled_back`. 409 `guarded_rollout_finished` once it has ended; changing a protected branch's share needs admin.",
      tag: TAG,
      permission: 'write',
      extension: true,
      params: rolloutParams,
      example: { params: onRollout, conflictsWith: 'guarded_rollout_finished' },
      responses: { 200: zRollout },
      handler: async ({ caller, params }) => rolloutWire(await rollouts.rollback(caller, params.agent_id, params.guarded_rollout_id)),
    }),
  ];
}
