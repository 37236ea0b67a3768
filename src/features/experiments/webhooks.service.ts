import type { AppContext } from '../../context.js';
import type { Caller } from '../../domain/caller.js';
import { newId } from '../../domain/ids.js';
import { ApiError, NotFoundError } from '../../errors.js';
import { agentsStore } from '../agents/agents.store.js';
import { recordUserAction } from '../audit/audit.events.js';
import { recordValues, type ValueEvent } from './cells.js';
import { experimentScope } from './experiments.runtime.js';
import type { ExperimentCounters } from './experiment-counters.js';
import { metricsOf } from './experiments.service.js';
import { experimentsStore, type WebhookRow } from './experiments.store.js';
import { extractWebhookFacts, valueFromFacts } from './metric-definitions.js';
import { checkSignature, newWebhookSecret } from './webhook-signature.js';

/** The delivery type that carries a call's analysis; others are answered 200 and not stored. */
export const TRANSCRIPTION_TYPE = 'post_call_transcription';
/** 9999-12-31T23:59:59Z. */
const MAX_UNIX_SECS = 253_402_300_799;

/** 401 for an unknown webhook or a bad signature: the same answer, so neither is revealed. */
export class WebhookSignatureError extends ApiError {
  constructor() {
    super(401, 'authentication_error', 'invalid_signature', 'The ElevenLabs-Signature header is missing, malformed, stale or does not sign this body for this webhook.');
  }
}

export type DeliveryResult = 'recorded' | 'duplicate' | 'ignored';

export function webhooksService(context: AppContext, counters: ExperimentCounters) {
  const { db } = context;
  return {
    async create(caller: Caller, name: string | undefined): Promise<{ webhook: WebhookRow }> {
      const nowMs = context.now();
      const webhook: WebhookRow = {
        id: newId('owh_', nowMs),
        workspace_id: caller.workspaceId,
        name: name ?? 'Post-call webhook',
        secret: newWebhookSecret(),
        created_by_user_id: caller.userId,
        created_at_ms: nowMs,
        last_received_at_ms: null,
      };
      await context.write(async ({ trx }) => {
        await experimentsStore(trx).insertWebhook(webhook);
        // Never the secret.
        await recordUserAction(trx, caller, nowMs, { action: 'outcome_webhook.create', resourceId: webhook.id, details: { name: webhook.name } });
      });
      return { webhook };
    },

    list(caller: Caller): Promise<WebhookRow[]> {
      return experimentsStore(db).listWebhooks(caller.workspaceId);
    },

    async delete(caller: Caller, webhookId: string): Promise<void> {
      const nowMs = context.now();
      await context.write(async ({ trx }) => {
        if (!(await experimentsStore(trx).deleteWebhook(caller.workspaceId, webhookId))) throw new NotFoundError('outcome_webhook', webhookId);
        await recordUserAction(trx, caller, nowMs, { action: 'outcome_webhook.delete', resourceId: webhookId });
      });
    },

    /** The webhook, when `signature` signs `rawBody` with its secret now; else 401. */
    async authenticate(webhookId: string, signature: string | undefined, rawBody: Buffer): Promise<WebhookRow> {
      const webhook = await experimentsStore(db).findWebhook(webhookId);
      const problem = checkSignature(signature, webhook?.secret ?? '', rawBody, Math.floor(context.now() / 1000));
      if (!webhook || problem !== undefined) {
        counters.webhookRefused++;
        throw new WebhookSignatureError();
      }
      return webhook;
    },

    /**
     * A signed delivery: values for the built-in metrics and every metric defined from what it
     * says, once per (agent, conversation, type). Another type, or an agent not of the webhook's
     * workspace, is answered alike and stores nothing.
     */
    async receive(webhook: WebhookRow, body: { type: string; event_timestamp?: number; data?: Record<string, unknown> }): Promise<DeliveryResult> {
      const nowMs = context.now();
      const data = body.data ?? {};
      const agentId = typeof data.agent_id === 'string' ? data.agent_id : undefined;
      const conversationId = typeof data.conversation_id === 'string' ? data.conversation_id : undefined;
      if (body.type !== TRANSCRIPTION_TYPE || agentId === undefined || conversationId === undefined) {
        counters.webhookIgnored++;
        return 'ignored';
      }
      const facts = extractWebhookFacts(data);
      // Upstream's unix seconds; anything else (or outside years 1970–9999) is "now".
      const stamp = body.event_timestamp;
      const occurredAtMs = typeof stamp === 'number' && stamp >= 0 && stamp <= MAX_UNIX_SECS ? Math.round(stamp * 1000) : nowMs;
      const result = await context.write(async (scope) => {
        const { trx } = scope;
        // In the write: an agent deleted meanwhile gets no rows.
        if (!(await agentsStore(trx).find(webhook.workspace_id, agentId))) return 'unknown_agent' as const;
        const store = experimentsStore(trx);
        const fresh = await store.insertDelivery({ agent_id: agentId, conversation_id: conversationId, type: body.type, received_at_ms: occurredAtMs, extracted: JSON.stringify(facts) });
        if (!fresh) {
          await store.touchWebhook(webhook.id, nowMs);
          return 'duplicate' as const;
        }
        const events: ValueEvent[] = [];
        for (const metric of await metricsOf(trx, agentId)) {
          const value = valueFromFacts(metric, facts);
          if (value !== undefined) events.push({ unitId: conversationId, metricKey: metric.key, value, occurredAtMs, idempotencyKey: null });
        }
        await recordValues(experimentScope(context, scope), agentId, events, nowMs);
        await store.touchWebhook(webhook.id, nowMs);
        return 'recorded' as const;
      });
      if (result === 'unknown_agent') {
        counters.webhookUnknownAgent++;
        return 'ignored';
      }
      if (result === 'duplicate') counters.webhookDuplicates++;
      else counters.webhookRecorded++;
      return result;
    },
  };
}
