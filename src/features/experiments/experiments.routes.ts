import type { FastifyRequest } from 'fastify';
import * as z from 'zod';

import type { AppContext } from '../../context.js';
import { rawJsonBody } from '../../http/json-body.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import {
  CreatedWebhookResponseModel,
  CreateMetricRequestModel,
  CreateWebhookRequestModel,
  DeletedMetricResponseModel,
  DeletedWebhookResponseModel,
  ExperimentResultsResponseModel,
  ListMetricsResponseModel,
  ListWebhooksResponseModel,
  MetricModel,
  PostCallWebhookModel,
  RecordOutcomesRequestModel,
  RecordOutcomesResponseModel,
  ReportExposuresRequestModel,
  ReportExposuresResponseModel,
  WebhookReceivedResponseModel,
} from './experiments.schemas.js';
import { experimentRuntimeOf } from './experiments.runtime.js';
import { experimentsService } from './experiments.service.js';
import { DEFAULT_ALPHA, resultsService } from './results.service.js';
import type { WebhookRow } from './experiments.store.js';
import type { MetricDefinition } from './metric-definitions.js';
import { SIGNATURE_HEADER } from './webhook-signature.js';
import { webhooksService } from './webhooks.service.js';

const TAG = 'experiments';
const AGENT = '/v1/convai/agents/:agent_id';
const WEBHOOKS = '/v1/convai/outcome-webhooks';
const agentParams = z.object({ agent_id: z.string() });
const metricParams = agentParams.extend({ metric_key: z.string() });
const webhookParams = z.object({ webhook_id: z.string() });
const resultsQuery = z.object({
  baseline_branch_id: z.string().optional(),
  alpha: z
    .string()
    .regex(/^(0|[1-9]\d*)?(\.\d+)?(e-?\d+)?$/i, 'Input should be a number')
    .transform(Number)
    .pipe(z.number().gt(0).lte(0.5))
    .optional(),
});

function metricWire(metric: MetricDefinition) {
  return {
    metric_key: metric.key,
    name: metric.name,
    kind: metric.kind,
    higher_is_better: metric.higherIsBetter,
    source: metric.source.id === undefined ? { type: metric.source.type } : { type: metric.source.type, id: metric.source.id },
    built_in: metric.builtIn,
  };
}

const secs = (ms: number) => Math.floor(ms / 1000);

export function experimentRoutes(context: AppContext): RouteDefinition[] {
  const runtime = experimentRuntimeOf(context);
  const experiments = experimentsService(context);
  const results = resultsService(context);
  const webhooks = webhooksService(context, runtime.counters);
  /** The webhook a signed delivery authenticated as, from `beforeValidation` to the handler. */
  const signedBy = new WeakMap<FastifyRequest, WebhookRow>();

  const webhookUrl = (request: FastifyRequest, webhookId: string) =>
    `${runtime.publicUrl ?? `${request.protocol}://${request.host}`}${WEBHOOKS}/${encodeURIComponent(webhookId)}`;
  const webhookWire = (request: FastifyRequest, webhook: WebhookRow) => ({
    webhook_id: webhook.id,
    name: webhook.name,
    url: webhookUrl(request, webhook.id),
    created_at_unix_secs: secs(webhook.created_at_ms),
  });

  return [
    defineRoute({
      method: 'GET',
      url: `${AGENT}/metrics`,
      operationId: 'list_experiment_metrics_route',
      summary: 'List Experiment Metrics',
      description:
        'The built-in metrics (`call_successful`: success 1, failure 0, unknown no value, higher is better; ' +
        '`call_duration_secs`: handling time, lower is better) and those defined for the agent.',
      tag: TAG,
      permission: 'read',
      extension: true,
      params: agentParams,
      example: { params: { agent_id: 'agentId' } },
      responses: { 200: ListMetricsResponseModel },
      handler: async ({ caller, params }) => ({ metrics: (await experiments.listMetrics(caller, params.agent_id)).map(metricWire) }),
    }),

    defineRoute({
      method: 'POST',
      url: `${AGENT}/metrics`,
      operationId: 'create_experiment_metric_route',
      summary: 'Create Experiment Metric',
      description:
        'Defines a metric from an evaluation criterion, a data collection field or a numeric metadata field of the ' +
        "post-call webhook, or from plain events (`POST …/outcomes`). It is filled at once from the deliveries already " +
        'received. 409 `metric_exists` when the key is taken.',
      tag: TAG,
      permission: 'write',
      extension: true,
      params: agentParams,
      body: CreateMetricRequestModel,
      example: {
        params: { agent_id: 'agentId' },
        body: () => ({ metric_key: 'resolved', name: 'Resolved', kind: 'binary', higher_is_better: true, source: { type: 'evaluation_criterion', id: 'resolved' } }),
      },
      responses: { 200: MetricModel },
      handler: async ({ caller, params, body }) =>
        metricWire(
          await experiments.createMetric(caller, params.agent_id, {
            metricKey: body.metric_key,
            name: body.name ?? body.metric_key,
            kind: body.kind,
            higherIsBetter: body.higher_is_better,
            source: body.source,
          }),
        ),
    }),

    defineRoute({
      method: 'DELETE',
      url: `${AGENT}/metrics/:metric_key`,
      operationId: 'delete_experiment_metric_route',
      summary: 'Delete Experiment Metric',
      description: 'Deletes a defined metric and its values. Built-in metrics cannot be deleted (422).',
      tag: TAG,
      permission: 'write',
      extension: true,
      params: metricParams,
      example: { params: { agent_id: 'agentId', metric_key: 'metricKey' } },
      responses: { 200: DeletedMetricResponseModel },
      handler: async ({ caller, params }) => {
        await experiments.deleteMetric(caller, params.agent_id, params.metric_key);
        return { metric_key: params.metric_key };
      },
    }),

    defineRoute({
      method: 'POST',
      url: `${AGENT}/exposures`,
      operationId: 'report_exposures_route',
      summary: 'Report Exposures',
      description:
        'For runtimes that pin a branch themselves: the first exposure of each conversation is kept (later ones ' +
        "count as `already_recorded`). `version_id` defaults to the branch head; the probability is the branch's share " +
        'under the active deployment (none: kept, left out of weighted results). Written at once.',
      tag: TAG,
      permission: 'write',
      extension: true,
      params: agentParams,
      body: ReportExposuresRequestModel,
      example: {
        params: { agent_id: 'agentId' },
        body: (ids) => ({ exposures: [{ conversation_id: 'conv_example', branch_id: ids.branchId, version_id: ids.branchVersionId }] }),
      },
      responses: { 200: ReportExposuresResponseModel },
      handler: ({ caller, params, body }) => experiments.reportExposures(caller, params.agent_id, body.exposures),
    }),

    defineRoute({
      method: 'POST',
      url: `${AGENT}/outcomes`,
      operationId: 'record_outcomes_route',
      summary: 'Record Outcome Events',
      description:
        'Values of metrics with an `event` source, per conversation: one value per conversation and metric, the latest ' +
        'by `occurred_at_unix_secs` (default: now). An event repeating the idempotency key of the stored value is a duplicate.',
      tag: TAG,
      permission: 'write',
      extension: true,
      params: agentParams,
      body: RecordOutcomesRequestModel,
      example: {
        params: { agent_id: 'agentId' },
        body: (ids) => ({ events: [{ conversation_id: 'conv_example', metric_key: ids.metricKey, value: 4, idempotency_key: 'evt_1' }] }),
      },
      responses: { 200: RecordOutcomesResponseModel },
      handler: ({ caller, params, body }) => experiments.recordOutcomes(caller, params.agent_id, body.events),
    }),

    defineRoute({
      method: 'GET',
      url: `${AGENT}/experiment-results`,
      operationId: 'get_experiment_results_route',
      summary: 'Get Experiment Results',
      description:
        'Per branch: exposures, expected and observed share, outcome coverage; a sequential sample-ratio-mismatch ' +
        'check (alpha 0.001); per metric: n, the rate or mean with an always-valid interval, and the difference to the ' +
        'baseline (default: main) with an always-valid interval and a decision. Weighted by the probabilities routing ' +
        `had, so valid across changing splits (docs/experiments-statistics.md). \`alpha\` in (0, 0.5], default ${DEFAULT_ALPHA}.`,
      tag: TAG,
      permission: 'read',
      extension: true,
      params: agentParams,
      query: resultsQuery,
      example: {
        params: { agent_id: 'agentId' },
        references: (ids) => ({ query: { baseline_branch_id: ids.mainBranchId } }),
        queryIds: { baseline_branch_id: { kind: 'branch', role: 'selects' } },
      },
      responses: { 200: ExperimentResultsResponseModel },
      handler: ({ caller, params, query }) => results.experimentResults(caller, params.agent_id, { baselineBranchId: query.baseline_branch_id, alpha: query.alpha }),
    }),

    defineRoute({
      method: 'POST',
      url: WEBHOOKS,
      operationId: 'create_outcome_webhook_route',
      summary: 'Create Outcome Webhook',
      description:
        "An endpoint for upstream's post-call webhook, and its signing secret: shown here only, once. Set `url` and " +
        '`secret` as the workspace\'s post-call webhook at ElevenLabs.',
      tag: TAG,
      permission: 'admin',
      extension: true,
      body: CreateWebhookRequestModel,
      example: { body: () => ({ name: 'Production calls' }) },
      responses: { 200: CreatedWebhookResponseModel },
      handler: async ({ caller, body, request }) => {
        const { webhook } = await webhooks.create(caller, body.name);
        return { ...webhookWire(request, webhook), secret: webhook.secret };
      },
    }),

    defineRoute({
      method: 'GET',
      url: WEBHOOKS,
      operationId: 'list_outcome_webhooks_route',
      summary: 'List Outcome Webhooks',
      description: "The workspace's outcome webhooks, without their secrets.",
      tag: TAG,
      permission: 'admin',
      extension: true,
      example: {},
      responses: { 200: ListWebhooksResponseModel },
      handler: async ({ caller, request }) => ({
        webhooks: (await webhooks.list(caller)).map((webhook) => ({
          ...webhookWire(request, webhook),
          last_received_at_unix_secs: webhook.last_received_at_ms === null ? null : secs(webhook.last_received_at_ms),
        })),
      }),
    }),

    defineRoute({
      method: 'DELETE',
      url: `${WEBHOOKS}/:webhook_id`,
      operationId: 'delete_outcome_webhook_route',
      summary: 'Delete Outcome Webhook',
      description: 'Its URL refuses deliveries from then on (401). Outcomes already recorded stay.',
      tag: TAG,
      permission: 'admin',
      extension: true,
      params: webhookParams,
      example: { params: { webhook_id: 'webhookId' } },
      responses: { 200: DeletedWebhookResponseModel },
      handler: async ({ caller, params }) => {
        await webhooks.delete(caller, params.webhook_id);
        return { webhook_id: params.webhook_id };
      },
    }),

    defineRoute({
      method: 'POST',
      url: `${WEBHOOKS}/:webhook_id`,
      operationId: 'receive_outcome_webhook_route',
      summary: 'Receive Post-Call Webhook',
      description:
        "Upstream's post-call webhook body, unchanged, signed with the webhook's secret (`ElevenLabs-Signature: " +
        't=<unix>,v0=<hex HMAC-SHA256(secret, "<t>.<body>")>`, 30 minutes either way). No API key. 401 for an unknown ' +
        'webhook or a missing, stale or wrong signature, storing nothing. Idempotent per conversation and type; another ' +
        'type, or an agent not of the webhook\'s workspace, is answered 200 `ignored`.',
      tag: TAG,
      permission: 'public',
      extension: true,
      keepRawBody: true,
      params: webhookParams,
      body: PostCallWebhookModel,
      beforeValidation: async (request) => {
        const { webhook_id: webhookId } = request.params as { webhook_id: string };
        const header = request.headers[SIGNATURE_HEADER];
        const signature = Array.isArray(header) ? header.join(',') : header;
        signedBy.set(request, await webhooks.authenticate(webhookId, signature, Buffer.from(rawJsonBody(request), 'utf8')));
      },
      example: {
        params: { webhook_id: 'webhookId' },
        body: (ids) => ({
          type: 'post_call_transcription',
          event_timestamp: 1_767_225_600,
          data: { agent_id: ids.agentId, conversation_id: 'conv_example', analysis: { call_successful: 'success' }, metadata: { call_duration_secs: 42 } },
        }),
      },
      responses: { 200: WebhookReceivedResponseModel },
      handler: async ({ body, request }) => {
        const webhook = signedBy.get(request);
        if (!webhook) throw new Error('the webhook route ran without a verified signature');
        return { status: await webhooks.receive(webhook, body) };
      },
    }),
  ];
}
