import * as z from 'zod';

import type { AppContext } from '../../context.js';
import { queryInteger } from '../../http/query.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import type { RouteExample } from '../../http/route-example.js';
import {
  zAgentDeploymentHistoryItem,
  zAgentDeploymentRequestItem,
  zAgentDeploymentResponse,
  zListResponseAgentDeploymentHistoryItem,
} from '../../wire/generated/zod.gen.js';
import { accessInfo } from '../workspaces/user-directory.js';
import type { Caller } from '../../domain/caller.js';
import { splitOf } from './deployment-writer.js';
import { type DeploymentItem, type DeploymentPreview, deploymentsService } from './deployments.service.js';

/** Upstream's `AgentDeploymentHistoryItem`, as `caller` sees it. */
function deploymentWire({ deployment, author }: DeploymentItem, caller: Caller) {
  return {
    id: deployment.id,
    traffic_percentage_branch_id_map: splitOf(deployment),
    deployed_at_unix_secs: Math.floor(deployment.deployed_at_ms / 1000),
    is_active: deployment.is_active === 1,
    source: deployment.source,
    access_info: accessInfo(author, caller),
    // Extension fields, only on a guarded rollout's deployments (its steps and its rollback).
    ...(deployment.guarded_rollout_id ? { guarded_rollout_id: deployment.guarded_rollout_id, reason: deployment.reason } : {}),
  };
}

/** Upstream's history item, with why a guarded rollout made it (extension fields, present only then). */
const zDeploymentHistoryItem = zAgentDeploymentHistoryItem.extend({
  guarded_rollout_id: z.string().optional().describe('Extension: the guarded rollout that made this deployment (a step, or its rollback).'),
  reason: z.string().nullable().optional().describe("Extension: why the guarded rollout made it, with the numbers it decided on."),
});

/** Buckets are hundredths of a percent. */
const percentOf = (buckets: number) => buckets / 100;
const shares = (buckets: Map<string, number>) => Object.fromEntries([...buckets].map(([branchId, count]) => [branchId, percentOf(count)]));

const zShares = z.record(z.string(), z.number());
const zDeploymentPreview = z.object({
  active_deployment_id: z.string().describe('The deployment this split would replace; the preview is of a change from it.'),
  current_traffic_percentage_branch_id_map: zShares.describe('The share of conversations each branch serves now (branches with none left out).'),
  traffic_percentage_branch_id_map: zShares.describe('The share each branch would serve, as routing would then send conversations.'),
  moved_percentage: z.number().describe('The share of all conversations that would change branch: the least any table with these shares could move.'),
  movements: z
    .array(z.object({ from_branch_id: z.string(), to_branch_id: z.string(), percentage: z.number() }))
    .describe('The conversations that would change branch, per pair of branches, the largest first; they add up to `moved_percentage`.'),
});

/** A preview as `zDeploymentPreview` shows it. */
function previewWire(preview: DeploymentPreview) {
  const moved = preview.movements.reduce((sum, movement) => sum + movement.buckets, 0);
  return {
    active_deployment_id: preview.active.id,
    current_traffic_percentage_branch_id_map: shares(preview.before),
    traffic_percentage_branch_id_map: shares(preview.after),
    moved_percentage: percentOf(moved),
    movements: preview.movements.map((movement) => ({ from_branch_id: movement.from, to_branch_id: movement.to, percentage: percentOf(movement.buckets) })),
  };
}

const TAG = 'deployments';
const agentParams = z.object({ agent_id: z.string() });

/** A deployment's body: a deployment and its preview take the same. */
const zDeploymentBody = z.object({
  deployment_request: z.object({ requests: z.array(zAgentDeploymentRequestItem).max(500) }),
});
const DEPLOYMENT_EXAMPLE: RouteExample = {
  params: { agent_id: 'agentId' },
  body: (ids) => ({
    deployment_request: {
      requests: [
        { branch_id: ids.mainBranchId, deployment_strategy: { type: 'percentage', traffic_percentage: 90 } },
        { branch_id: ids.branchId, deployment_strategy: { type: 'percentage', traffic_percentage: 10 } },
      ],
    },
  }),
};

export function deploymentRoutes(context: AppContext): RouteDefinition[] {
  const deployments = deploymentsService(context);
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/deployments',
      operationId: 'create_agent_deployment_route',
      summary: 'Create Or Update Deployments',
      description:
        'Declares the whole traffic split: percentages 0–100 (fractions allowed) over non-archived branches of this ' +
        'agent, totalling 100; branches not named get 0%. Conversations keep their branch wherever the split allows: ' +
        'only the minimum share of conversations moves. Changing the share of an admin-protected branch needs admin.',
      tag: TAG,
      permission: 'write',
      params: agentParams,
      body: zDeploymentBody,
      example: DEPLOYMENT_EXAMPLE,
      responses: { 200: zAgentDeploymentResponse },
      handler: ({ caller, params, body }) => deployments.create(caller, params.agent_id, body.deployment_request.requests),
    }),

    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/deployments/preview',
      operationId: 'preview_agent_deployment_route',
      summary: 'Preview A Deployment (extension)',
      description:
        'Extension (not in the ElevenLabs API): what deploying this body (the same as `POST …/deployments`) would do now, ' +
        'writing nothing: the share of conversations that would move from which branch to which, and the resulting shares. ' +
        'It is computed from the active bucket table by the code a deployment runs, so a deployment made next moves exactly ' +
        'these conversations (to within changes made between the two). Refused as the deployment would be (422, 403).',
      tag: TAG,
      permission: 'write',
      extension: true,
      params: agentParams,
      body: zDeploymentBody,
      example: DEPLOYMENT_EXAMPLE,
      responses: { 200: zDeploymentPreview },
      handler: async ({ caller, params, body }) => previewWire(await deployments.preview(caller, params.agent_id, body.deployment_request.requests)),
    }),

    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/:agent_id/deployments',
      operationId: 'list_agent_deployments_route',
      summary: 'List Agent Deployments',
      description: 'List the traffic split history of an agent, newest first; exactly one item is active.',
      tag: TAG,
      permission: 'read',
      params: agentParams,
      query: z.object({
        page: queryInteger({ min: 1, max: 1_000_000, fallback: 1 }),
        page_size: queryInteger({ min: 1, max: 100, fallback: 30 }),
      }),
      example: { params: { agent_id: 'agentId' } },
      responses: { 200: zListResponseAgentDeploymentHistoryItem.extend({ results: z.array(zDeploymentHistoryItem) }) },
      handler: async ({ caller, params, query }) => {
        const { total, deployments: items } = await deployments.list(caller, params.agent_id, query.page, query.page_size);
        return { meta: { total, page: query.page, page_size: query.page_size }, results: items.map((item) => deploymentWire(item, caller)) };
      },
    }),

    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/deployments/:deployment_id/rollback',
      operationId: 'rollback_agent_deployment_route',
      summary: 'Roll Back To A Deployment (extension)',
      description:
        'Extension (not in the ElevenLabs API): makes the split of an earlier deployment live again, as a new history ' +
        'item (source "manual") that moves as few conversations as possible from the current split. 409 ' +
        '`branch_archived` if that split gives traffic to a branch archived since.',
      tag: TAG,
      permission: 'write',
      extension: true,
      params: z.object({ agent_id: z.string(), deployment_id: z.string() }),
      example: { params: { agent_id: 'agentId', deployment_id: 'deploymentId' } },
      responses: { 200: zDeploymentHistoryItem },
      handler: async ({ caller, params }) => deploymentWire(await deployments.rollback(caller, params.agent_id, params.deployment_id), caller),
    }),

    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/deployments/:deployment_id/rollback/preview',
      operationId: 'preview_agent_deployment_rollback_route',
      summary: 'Preview A Rollback (extension)',
      description:
        'Extension (not in the ElevenLabs API): what `POST …/deployments/{deployment_id}/rollback` would do now, writing ' +
        'nothing, in the shape of `POST …/deployments/preview`: the conversations that would move from which branch to ' +
        'which (back where they were under that deployment) and the resulting shares. Refused as the rollback would be ' +
        '(404, 409 `branch_archived`, 403).',
      tag: TAG,
      permission: 'write',
      extension: true,
      params: z.object({ agent_id: z.string(), deployment_id: z.string() }),
      example: { params: { agent_id: 'agentId', deployment_id: 'deploymentId' } },
      responses: { 200: zDeploymentPreview },
      handler: async ({ caller, params }) => previewWire(await deployments.previewRollback(caller, params.agent_id, params.deployment_id)),
    }),
  ];
}
