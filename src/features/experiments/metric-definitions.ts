import type { Json } from '../../domain/canonical-json.js';

// What a metric is and where its values come from. Pure: no I/O.

export type MetricKind = 'binary' | 'mean';
export const METRIC_KINDS = ['binary', 'mean'] as const;
export const METRIC_SOURCE_TYPES = ['built_in', 'evaluation_criterion', 'data_collection', 'metadata', 'event'] as const;
export type MetricSourceType = (typeof METRIC_SOURCE_TYPES)[number];

export interface MetricSource {
  type: MetricSourceType;
  /** The criterion, data collection field or metadata field; none for `built_in` and `event`. */
  id?: string;
}

export interface MetricDefinition {
  key: string;
  name: string;
  kind: MetricKind;
  higherIsBetter: boolean;
  source: MetricSource;
  builtIn: boolean;
}

/**
 * Every agent has these. `call_duration_secs` is handling time: shorter is better (a longer call
 * that succeeds more shows in `call_successful`).
 */
export const BUILT_IN_METRICS: readonly MetricDefinition[] = [
  { key: 'call_successful', name: 'Call successful', kind: 'binary', higherIsBetter: true, source: { type: 'built_in' }, builtIn: true },
  { key: 'call_duration_secs', name: 'Call duration (seconds)', kind: 'mean', higherIsBetter: false, source: { type: 'built_in' }, builtIn: true },
];

export function builtInMetric(key: string): MetricDefinition | undefined {
  return BUILT_IN_METRICS.find((metric) => metric.key === key);
}

/**
 * What one post-call webhook said, kept per delivery (compact), so that a metric defined later is
 * filled from deliveries already received. Maps hold numbers only; anything else was not a value.
 */
export interface WebhookFacts {
  call_successful?: number;
  call_duration_secs?: number;
  criteria: Record<string, number>;
  data: Record<string, number>;
  metadata: Record<string, number>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `success` 1, `failure` 0; `unknown` (or anything else) is no value. */
function successOf(value: unknown): number | undefined {
  if (value === 'success') return 1;
  if (value === 'failure') return 0;
  return undefined;
}

/** A data collection value as a number: numbers, booleans, and text that spells one of them. */
function numberOf(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string') {
    const text = value.trim().toLowerCase();
    if (text === 'true') return 1;
    if (text === 'false') return 0;
    if (text === '') return undefined;
    const parsed = Number(text);
    return Number.isFinite(parsed) ? parsed : undefined;
  }
  return undefined;
}

/** Members of a plain object, own keys only (a criterion may be called `constructor`). */
function entriesOf(value: unknown): [string, unknown][] {
  return isObject(value) ? Object.entries(value) : [];
}

function numbersOf(entries: [string, unknown][], read: (value: unknown) => number | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [id, value] of entries) {
    const number = read(value);
    // defineProperty: `__proto__` as a plain key, never the prototype.
    if (number !== undefined) Object.defineProperty(out, id, { value: number, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * What upstream's post-call webhook `data` (the GET-conversation shape) says about the call:
 * `analysis.call_successful`, `analysis.evaluation_criteria_results[id].result`,
 * `analysis.data_collection_results[id].value`, `metadata.call_duration_secs` and every numeric
 * top-level `metadata` field.
 */
export function extractWebhookFacts(data: Record<string, unknown>): WebhookFacts {
  const analysis = isObject(data.analysis) ? data.analysis : {};
  const metadata = isObject(data.metadata) ? data.metadata : {};
  const facts: WebhookFacts = {
    criteria: numbersOf(entriesOf(analysis.evaluation_criteria_results), (result) => (isObject(result) ? successOf(result.result) : undefined)),
    data: numbersOf(entriesOf(analysis.data_collection_results), (result) => (isObject(result) ? numberOf(result.value) : undefined)),
    metadata: numbersOf(entriesOf(metadata), (value) => (typeof value === 'number' && Number.isFinite(value) ? value : undefined)),
  };
  const successful = successOf(analysis.call_successful);
  if (successful !== undefined) facts.call_successful = successful;
  if (facts.metadata.call_duration_secs !== undefined && Object.hasOwn(facts.metadata, 'call_duration_secs')) facts.call_duration_secs = facts.metadata.call_duration_secs;
  return facts;
}

function own(map: Record<string, number>, id: string | undefined): number | undefined {
  return id !== undefined && Object.hasOwn(map, id) ? map[id] : undefined;
}

/** The metric's value in a delivery, or undefined when it has none (binary metrics take only 0 and 1). */
export function valueFromFacts(metric: MetricDefinition, facts: WebhookFacts): number | undefined {
  let value: number | undefined;
  switch (metric.source.type) {
    case 'built_in':
      value = metric.key === 'call_successful' ? facts.call_successful : metric.key === 'call_duration_secs' ? facts.call_duration_secs : undefined;
      break;
    case 'evaluation_criterion':
      value = own(facts.criteria, metric.source.id);
      break;
    case 'data_collection':
      value = own(facts.data, metric.source.id);
      break;
    case 'metadata':
      value = own(facts.metadata, metric.source.id);
      break;
    case 'event':
      value = undefined;
  }
  return value !== undefined && acceptsValue(metric.kind, value) ? value : undefined;
}

/** Binary metrics are rates: 0 or 1 only. */
export function acceptsValue(kind: MetricKind, value: number): boolean {
  return Number.isFinite(value) && (kind === 'mean' || value === 0 || value === 1);
}

/** Facts as stored, and read back (a stored row that is not an object reads as no facts). */
export function parseFacts(text: string): WebhookFacts {
  const parsed = JSON.parse(text) as Json;
  const map = (value: unknown) => (isObject(value) ? (value as Record<string, number>) : {});
  if (!isObject(parsed)) return { criteria: {}, data: {}, metadata: {} };
  const facts: WebhookFacts = { criteria: map(parsed.criteria), data: map(parsed.data), metadata: map(parsed.metadata) };
  if (typeof parsed.call_successful === 'number') facts.call_successful = parsed.call_successful;
  if (typeof parsed.call_duration_secs === 'number') facts.call_duration_secs = parsed.call_duration_secs;
  return facts;
}
