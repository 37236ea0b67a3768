import { expect } from 'vitest';

import type { Store } from '../../src/db/connect.js';
import { experimentsStore } from '../../src/features/experiments/experiments.store.js';
import { signPayload } from '../../src/features/experiments/webhook-signature.js';
import type { TestApp } from './test-app.js';

// Shared by the experiment tests: cells recounted from the raw rows, signed webhook deliveries, and
// the calls of the end-to-end tests over a listening server.

export interface CellsSnapshot {
  outcome: { metric_key: string; deployment_id: string; branch_id: string; day: number; n: number; sum: number; sum_squares: number }[];
  exposure: { deployment_id: string; branch_id: string; day: number; exposures: number; units_with_outcomes: number }[];
}

/** What a cell is counted by: the rest of its fields are its key (the day included: a unit exposed again after its exposure expired has cells of two days). */
const MEASURES = new Set(['n', 'sum', 'sum_squares', 'exposures', 'units_with_outcomes']);
const sortKey = (row: Record<string, unknown>) => JSON.stringify(Object.entries(row).filter(([name]) => !MEASURES.has(name)));
const sorted = <T extends Record<string, unknown>>(rows: T[]) => rows.sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
/** Sums of squares may differ in their last bits by the order they were added in. */
const rounded = (value: number) => Math.round(Number(value) * 1e6) / 1e6;

/** The cells the store keeps for an agent (zero cells left out). */
export async function storedCells(store: Store, agentId: string): Promise<CellsSnapshot> {
  const outcome = await store.db.selectFrom('outcome_cells').selectAll().where('agent_id', '=', agentId).execute();
  const exposure = await store.db.selectFrom('exposure_cells').selectAll().where('agent_id', '=', agentId).execute();
  return {
    outcome: sorted(
      outcome
        .filter((row) => Number(row.n) !== 0)
        .map((row) => ({ metric_key: row.metric_key, deployment_id: row.deployment_id, branch_id: row.branch_id, day: Number(row.day), n: Number(row.n), sum: rounded(row.sum), sum_squares: rounded(row.sum_squares) })),
    ),
    exposure: sorted(
      exposure.map((row) => ({ deployment_id: row.deployment_id, branch_id: row.branch_id, day: Number(row.day), exposures: Number(row.exposures), units_with_outcomes: Number(row.units_with_outcomes) })),
    ),
  };
}

/** The cells as they should be: counted again from the exposures (segments read back) and values. */
export async function recountedCells(store: Store, agentId: string): Promise<CellsSnapshot> {
  const exposures = await experimentsStore(store.db).exposureRows(agentId);
  const values = await store.db.selectFrom('outcome_values').selectAll().where('agent_id', '=', agentId).execute();
  const valuesOf = new Map<string, typeof values>();
  for (const value of values) valuesOf.set(value.unit_id, [...(valuesOf.get(value.unit_id) ?? []), value]);
  const outcome = new Map<string, CellsSnapshot['outcome'][number]>();
  const exposure = new Map<string, CellsSnapshot['exposure'][number]>();
  for (const row of exposures) {
    const day = Math.floor(row.exposed_at_ms / 86_400_000);
    const cellKey = `${row.deployment_id}|${row.branch_id}|${day}`;
    const unitValues = valuesOf.get(row.unit_id) ?? [];
    const cell = exposure.get(cellKey) ?? { deployment_id: row.deployment_id, branch_id: row.branch_id, day, exposures: 0, units_with_outcomes: 0 };
    cell.exposures++;
    if (unitValues.length > 0) cell.units_with_outcomes++;
    exposure.set(cellKey, cell);
    for (const value of unitValues) {
      const key = `${value.metric_key}|${cellKey}`;
      const sums = outcome.get(key) ?? { metric_key: value.metric_key, deployment_id: row.deployment_id, branch_id: row.branch_id, day, n: 0, sum: 0, sum_squares: 0 };
      sums.n++;
      sums.sum += value.value;
      sums.sum_squares += value.value * value.value;
      outcome.set(key, sums);
    }
  }
  return {
    outcome: sorted([...outcome.values()].map((row) => ({ ...row, sum: rounded(row.sum), sum_squares: rounded(row.sum_squares) }))),
    exposure: sorted([...exposure.values()]),
  };
}

/** Upstream's post-call webhook body for one conversation. */
export function postCallBody(agentId: string, conversationId: string, options: { successful?: 'success' | 'failure' | 'unknown'; durationSecs?: number; criteria?: Record<string, string>; data?: Record<string, unknown>; eventTimestamp?: number } = {}) {
  return {
    type: 'post_call_transcription',
    event_timestamp: options.eventTimestamp ?? Math.floor(Date.now() / 1000),
    data: {
      agent_id: agentId,
      conversation_id: conversationId,
      status: 'done',
      transcript: [{ role: 'agent', message: 'Hello', time_in_call_secs: 0 }],
      metadata: { start_time_unix_secs: Math.floor(Date.now() / 1000) - 60, call_duration_secs: options.durationSecs ?? 60, cost: 120 },
      analysis: {
        call_successful: options.successful ?? 'success',
        transcript_summary: 'A call.',
        evaluation_criteria_results: Object.fromEntries(
          Object.entries(options.criteria ?? {}).map(([id, result]) => [id, { criteria_id: id, result, rationale: 'because' }]),
        ),
        data_collection_results: Object.fromEntries(
          Object.entries(options.data ?? {}).map(([id, value]) => [id, { data_collection_id: id, value, rationale: 'said so' }]),
        ),
      },
      conversation_initiation_client_data: {},
    },
  };
}

/** Posts a body to a webhook, signed with `secret` at `timestampSecs` (now unless told). */
export function deliver(testApp: TestApp, webhookId: string, secret: string, body: unknown, options: { timestampSecs?: number; signature?: string | null } = {}) {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const signature = options.signature === undefined ? signPayload(secret, options.timestampSecs ?? Math.floor(Date.now() / 1000), raw) : options.signature;
  return testApp.app.server.inject({
    method: 'POST',
    url: `/v1/convai/outcome-webhooks/${webhookId}`,
    headers: { 'content-type': 'application/json', ...(signature === null ? {} : { 'elevenlabs-signature': signature }) },
    payload: raw,
  });
}

/** Posts a body over the network to a webhook URL, signed now with `secret`, as ElevenLabs signs it. */
export function deliverOverHttp(url: string, secret: string, body: unknown): Promise<Response> {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'ElevenLabs-Signature': signPayload(secret, Math.floor(Date.now() / 1000), raw) },
    body: raw,
  });
}

/** A JSON call of an extension route (the SDKs have no methods for them) that must answer 200. */
export async function apiCall<T>(baseUrl: string, method: string, path: string, key: string, body?: unknown): Promise<T> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { 'xi-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  expect(response.status, text.slice(0, 300)).toBe(200);
  return JSON.parse(text) as T;
}

/** Runs `work` over `items`, `width` at a time. */
export async function inBatches<T, R>(items: T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let start = 0; start < items.length; start += width) out.push(...(await Promise.all(items.slice(start, start + width).map(work))));
  return out;
}
