import * as z from 'zod';

import { METRIC_KINDS } from './metric-definitions.js';

// The wire of the experiment routes (extensions: upstream has none of them). snake_case.

/** Up to this many exposures or events a request. */
export const MAX_ITEMS = 1_000;

const unitId = z.string().min(1).max(1_000);
export const MetricKey = z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'letters, digits, `_`, `.` and `-`, 1 to 100 of them');

export const MetricSourceModel = z
  .object({
    type: z.enum(['evaluation_criterion', 'data_collection', 'metadata', 'event']),
    id: z.string().min(1).max(200).optional(),
  })
  .refine((source) => (source.type === 'event') === (source.id === undefined), {
    message: 'an `id` names the criterion, data collection field or metadata field; an `event` source has none',
    path: ['id'],
  });

export const CreateMetricRequestModel = z.object({
  metric_key: MetricKey,
  name: z.string().min(1).max(200).optional(),
  kind: z.enum(METRIC_KINDS),
  higher_is_better: z.boolean(),
  source: MetricSourceModel,
});

export const MetricModel = z.object({
  metric_key: z.string(),
  name: z.string(),
  kind: z.enum(METRIC_KINDS),
  higher_is_better: z.boolean(),
  source: z.object({ type: z.string(), id: z.string().optional() }),
  built_in: z.boolean(),
});
export const ListMetricsResponseModel = z.object({ metrics: z.array(MetricModel) });
export const DeletedMetricResponseModel = z.object({ metric_key: z.string() });

export const ReportExposuresRequestModel = z.object({
  exposures: z
    .array(z.object({ conversation_id: unitId, branch_id: z.string().min(1).max(500), version_id: z.string().min(1).max(500).optional() }))
    .min(1)
    .max(MAX_ITEMS),
});
export const ReportExposuresResponseModel = z.object({ recorded: z.number().int(), already_recorded: z.number().int() });

export const RecordOutcomesRequestModel = z.object({
  events: z
    .array(
      z.object({
        conversation_id: unitId,
        metric_key: MetricKey,
        value: z.number(),
        occurred_at_unix_secs: z.number().int().min(0).max(253_402_300_799).optional(),
        idempotency_key: z.string().min(1).max(200).optional(),
      }),
    )
    .min(1)
    .max(MAX_ITEMS),
});
export const RecordOutcomesResponseModel = z.object({ accepted: z.number().int(), duplicates: z.number().int() });

export const CreateWebhookRequestModel = z.object({ name: z.string().min(1).max(200).optional() });
const WebhookFields = {
  webhook_id: z.string(),
  name: z.string(),
  url: z.string(),
  created_at_unix_secs: z.number().int(),
};
export const CreatedWebhookResponseModel = z.object({ ...WebhookFields, secret: z.string() });
export const WebhookModel = z.object({ ...WebhookFields, last_received_at_unix_secs: z.number().int().nullable() });
export const ListWebhooksResponseModel = z.object({ webhooks: z.array(WebhookModel) });
export const DeletedWebhookResponseModel = z.object({ webhook_id: z.string() });

/** Upstream's post-call webhook envelope; `data` is the GET-conversation shape, read tolerantly. */
export const PostCallWebhookModel = z.looseObject({
  type: z.string(),
  event_timestamp: z.number().optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});
export const WebhookReceivedResponseModel = z.object({ status: z.enum(['recorded', 'duplicate', 'ignored']) });

const IntervalModel = z.object({ lower: z.number(), upper: z.number() }).nullable();
export const ExperimentResultsResponseModel = z.object({
  agent_id: z.string(),
  baseline_branch_id: z.string(),
  alpha: z.number(),
  computed_at_unix_secs: z.number().int(),
  sample_ratio_mismatch: z.object({
    mismatch: z.boolean(),
    e_value: z.number(),
    alpha: z.number(),
    observed: z.record(z.string(), z.number()),
    expected: z.record(z.string(), z.number()),
  }),
  branches: z.array(
    z.object({
      branch_id: z.string(),
      exposures: z.number().int(),
      expected_share: z.number().nullable(),
      observed_share: z.number().nullable(),
      outcome_coverage: z.number().nullable(),
    }),
  ),
  metrics: z.array(
    z.object({
      metric_key: z.string(),
      name: z.string(),
      kind: z.enum(METRIC_KINDS),
      higher_is_better: z.boolean(),
      branches: z.array(z.object({ branch_id: z.string(), n: z.number().int(), estimate: z.number().nullable(), interval: IntervalModel })),
      comparisons: z.array(z.object({ branch_id: z.string(), difference: z.number().nullable(), interval: IntervalModel, decision: z.enum(['better', 'worse', 'inconclusive']) })),
    }),
  ),
});
