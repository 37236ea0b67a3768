import { request as httpRequest } from 'node:http';

import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';

import { MAX_JSON_DEPTH } from '../src/http/json-body.js';
import type { RouteDefinition } from '../src/http/route.js';
import type { IdKind } from '../src/http/route-example.js';
import { jsonValue } from './domain/json-arbitraries.js';
import { largeConversationConfig } from './support/builders.js';
import { snapshotDatabase } from './support/db-snapshot.js';
import {
  describeResponse,
  expectApiError,
  expectValidationError,
  type Fixture,
  idKindsOf,
  INTERNALS,
  optionalReferences,
  pathIdKind,
  pathParams,
  pathValues,
  percentEncode,
  queryIds,
  referencingRequest,
  requiredQuery,
  routeName,
  routeRequests,
  sampleBody,
  snapshotDiff,
  unknownIdLike,
} from './support/route-requests.js';
import { listen, startTestApp, type TestApp } from './support/test-app.js';

// Property-based bad input against every route of the route table (issue 9, item 3): malformed,
// truncated and corrupted JSON, wrong types at random paths, huge strings, deep nesting, many keys,
// out-of-range numbers, NaN-like strings, unicode edge cases, invalid UTF-8 bytes, unknown query
// parameters, odd path ids, and ids of other agents and other workspaces in path, query and body.
// Whatever comes in: never a 5xx, never internals on the wire, every error in its documented shape
// (decisions.md D2), and after every 4xx the database is exactly as before.
//
// FUZZ_RUNS (default 100) is the number of property runs per route, shared among the kinds of
// input that fit it; FUZZ_SEED replays a failure (fast-check prints the seed and the
// counterexample when a property fails).

const RUNS_PER_ROUTE = Number(process.env.FUZZ_RUNS ?? 100);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

/** The other workspace's agent is named this; no response to one of our keys may ever contain it. */
const FOREIGN_AGENT_NAME = 'Foreign agent 7f3a9c';
/** Internals on the wire: stack frames, source paths (issue 9: "never a stack trace"). */
const LEAK = new RegExp(`${INTERNALS.source}|    at |/src/|\\.ts:`);

// ---------------------------------------------------------------------------------------------
// Ids: ours, another agent's of ours, another workspace's, unknown ones
// ---------------------------------------------------------------------------------------------

type IdSource = 'another agent of ours' | 'another workspace' | 'unknown' | 'another kind';
const ID_SOURCES: IdSource[] = ['another agent of ours', 'another workspace', 'unknown', 'another kind'];

type IdsByKind = Record<IdKind, string>;

function idsOf(fixture: Fixture, userId: string): IdsByKind {
  return {
    agent: fixture.agentId,
    branch: fixture.mainBranchId,
    version: fixture.mainVersionId,
    deployment: fixture.deploymentId,
    proposal: fixture.proposalId,
    user: userId,
    procedure: fixture.procedureId,
    procedure_version: fixture.procedureVersionId,
    guarded_rollout: fixture.guardedRolloutId,
    webhook: fixture.webhookId,
    metric: fixture.metricKey,
  };
}

interface WorldIds {
  ours: IdsByKind;
  otherAgent: IdsByKind;
  otherWorkspace: IdsByKind;
}

function idFrom(ids: WorldIds, source: IdSource, kind: IdKind): string {
  switch (source) {
    case 'another agent of ours':
      return ids.otherAgent[kind];
    case 'another workspace':
      return ids.otherWorkspace[kind];
    case 'unknown':
      return unknownIdLike(ids.ours[kind]);
    case 'another kind':
      // One of our own ids, but of a kind that never fits here.
      return ids.ours[kind === 'branch' ? 'version' : 'branch'];
  }
}

// What an id in a query parameter does (`selects` a resource: 404, `expects` a head: 409,
// `filters` a list: 200) is in the route's example (`queryIds`, src/http/route-example.ts): an id
// that is not ours then has one right answer. A query parameter named `*_id`/`*_ids` that is not
// classified there fails the table test below.

/** Query parameters named like ids that hold free text. */
const NOT_IDS = new Set(['conversation_id']);

function queryKeys(route: RouteDefinition): string[] {
  return route.query instanceof z.ZodObject ? Object.keys(route.query.shape) : [];
}

function queryIdParams(route: RouteDefinition): string[] {
  return queryKeys(route).filter((key) => /_ids?$/.test(key) && !NOT_IDS.has(key));
}

// ---------------------------------------------------------------------------------------------
// Fields that name other objects, sent with real values (issue 14: a proposal naming a real
// reviewer deadlocked the server; only absent or foreign reviewers had ever been sent)
// ---------------------------------------------------------------------------------------------

/** Sections of an agent's config: what they name (tools, voices, procedures) lives at ElevenLabs, not here. */
const OPAQUE_SECTIONS = new Set(['conversation_config', 'platform_settings', 'workflow', 'procedures']);
/** Fields named like ids that name nothing of ours. */
const NOT_REFERENCES = new Set([...NOT_IDS, 'triage_ticket_id']);

/** The paths of every field named `*_id`/`*_ids` in a body or query schema (`[]`: each array item). */
function referencePaths(schema: unknown, at: string[] = [], depth = 0): string[][] {
  const def = (schema as { _zod?: { def: Record<string, any> } } | undefined)?._zod?.def;
  if (!def || depth > 40) return [];
  switch (def.type) {
    case 'object':
      return Object.entries(def.shape as Record<string, unknown>).flatMap(([name, member]) => [
        ...(/_ids?$/.test(name) && !NOT_REFERENCES.has(name) ? [[...at, name]] : []),
        ...(OPAQUE_SECTIONS.has(name) ? [] : referencePaths(member, [...at, name], depth + 1)),
      ]);
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      return referencePaths(def.innerType, at, depth + 1);
    case 'array':
      return referencePaths(def.element, [...at, '[]'], depth + 1);
    case 'pipe':
      return [...referencePaths(def.in, at, depth + 1), ...referencePaths(def.out, at, depth + 1)];
    case 'union':
      return (def.options as unknown[]).flatMap((option) => referencePaths(option, at, depth + 1));
    default:
      return [];
  }
}

/** Every field a route's body and query have that names another object, as `body.a.[].b` / `query.x`. */
function referenceFields(route: RouteDefinition): string[] {
  const paths = [...referencePaths(route.body, ['body']), ...referencePaths(route.query, ['query']), ...queryIdParams(route).map((name) => ['query', name])];
  return [...new Set(paths.map((path) => path.join('.')))];
}

/** The values at a path (`[]` fans out over an array's items); an empty array is no value. */
function valuesAtPath(root: unknown, path: string[]): unknown[] {
  if (path.length === 0) return [root];
  const [head, ...rest] = path;
  if (head === '[]') return Array.isArray(root) ? root.flatMap((item) => valuesAtPath(item, rest)) : [];
  if (typeof root !== 'object' || root === null) return [];
  const value = (root as Record<string, unknown>)[head];
  return value === undefined ? [] : valuesAtPath(value, rest);
}

/** The request with every reference, as the fields the route sees: `{ body, query }`. */
function referencingFields(route: RouteDefinition, fixture: Fixture): { body: unknown; query: Record<string, string> } {
  const { url, payload } = referencingRequest(route, fixture);
  return { body: payload, query: Object.fromEntries(new URL(url, 'http://x').searchParams) };
}

// ---------------------------------------------------------------------------------------------
// Building requests from small recipes (fast-check prints the recipe, not a megabyte of body)
// ---------------------------------------------------------------------------------------------

type JsonPath = (string | number)[];

interface FuzzRequest {
  route: RouteDefinition;
  method: RouteDefinition['method'];
  url: string;
  payload?: string | Buffer;
}

function describeRequest(request: FuzzRequest): string {
  const payload = request.payload === undefined ? '' : ` body(${request.payload.length}): ${request.payload.toString().slice(0, 300)}`;
  return `${request.method} ${request.url.slice(0, 300)}${payload}`;
}

/** A field no schema declares, added beside every object's own fields. */
const NEW_FIELD = 'fuzz_extra_field';
const PLACEHOLDER = 'FUZZ_PLACEHOLDER_5e0c';

/** Every node of a JSON value (the root too), and a new field in every object. */
function nodePaths(value: unknown, at: JsonPath = []): JsonPath[] {
  const paths: JsonPath[] = [at];
  if (Array.isArray(value)) value.forEach((item, i) => paths.push(...nodePaths(item, [...at, i])));
  else if (typeof value === 'object' && value !== null) {
    for (const [key, member] of Object.entries(value)) paths.push(...nodePaths(member, [...at, key]));
    paths.push([...at, NEW_FIELD]);
  }
  return paths;
}

function valueAt(root: unknown, path: JsonPath): unknown {
  return path.reduce<unknown>((node, segment) => (node as Record<string | number, unknown> | undefined)?.[segment], root);
}

function withValueAt(root: unknown, path: JsonPath, value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  const parent = valueAt(copy, path.slice(0, -1)) as Record<string | number, unknown>;
  parent[path[path.length - 1]] = value;
  return copy;
}

/** The body as JSON text with `rawJson` (any JSON text, valid or not) at `path`. */
function bodyWithRawAt(body: unknown, path: JsonPath, rawJson: string): string {
  return JSON.stringify(withValueAt(body, path, PLACEHOLDER)).replace(`"${PLACEHOLDER}"`, () => rawJson);
}

/** Like `bodyWithRawAt`, with raw bytes (not valid UTF-8) inside a JSON string at `path`. */
function bodyWithBytesAt(body: unknown, path: JsonPath, bytes: number[]): Buffer {
  const [before, after] = JSON.stringify(withValueAt(body, path, PLACEHOLDER)).split(PLACEHOLDER);
  return Buffer.concat([Buffer.from(before), Buffer.from(bytes), Buffer.from(after)]);
}

/** Every string leaf of `value` replaced by `text`. */
function everyStringAs(value: unknown, text: string): unknown {
  if (typeof value === 'string') return text;
  if (Array.isArray(value)) return value.map((item) => everyStringAs(item, text));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, member]) => [key, everyStringAs(member, text)]));
  return value;
}

/** `value` as JSON text with a key `key` (written as is, `__proto__` too) added to every object. */
function everyObjectWithKey(value: unknown, key: string, member: string): string {
  if (Array.isArray(value)) return `[${value.map((item) => everyObjectWithKey(item, key, member)).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const fields = Object.entries(value).map(([name, inner]) => `${JSON.stringify(name)}:${everyObjectWithKey(inner, key, member)}`);
    return `{${[...fields, `${JSON.stringify(key)}:${member}`].join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * A path segment of dots (`.`, `..`, `%2e`) is removed by URL parsing (RFC 3986 §5.2.4, WHATWG
 * URL), in every HTTP client and in `inject` too: such an id cannot reach a route in process. The
 * socket tests at the end send them raw.
 */
const DOT_SEGMENT = /^(\.|%2e)+$/i;

function pick<T>(items: T[], index: number): T {
  return items[index % items.length];
}

function jsonType(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/** The deepest bracket nesting of a JSON text, outside strings. */
function maxJsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') deepest = Math.max(deepest, ++depth);
    else if (c === '}' || c === ']') depth--;
  }
  return deepest;
}

/** The route's URL: path placeholders from the fixture unless overridden (already encoded), its sample query, changes. */
function urlFor(
  route: RouteDefinition,
  fixture: Fixture,
  change: { path?: Record<string, string>; query?: Record<string, string>; extraQuery?: string } = {},
): string {
  const values = pathValues(route, fixture);
  const path = route.url.replace(/:([a-z_]+)/g, (_, name: string) => change.path?.[name] ?? encodeURIComponent(values[name]));
  const query = { ...requiredQuery(route, fixture), ...change.query };
  const parts = Object.entries(query).map(([name, value]) => `${percentEncode(name)}=${percentEncode(value)}`);
  if (change.extraQuery !== undefined) parts.push(change.extraQuery);
  return parts.length > 0 ? `${path}?${parts.join('&')}` : path;
}

/**
 * The body fuzzing starts from: the route's sample body, with a realistic typed config where the
 * route takes one (so that "a random path" often lands on a typed field: temperature, a tool's
 * URL...). Routes without a body get `{}`: the body parser still reads what is sent.
 */
function fuzzBaseBody(route: RouteDefinition, fixture: Fixture): Record<string, unknown> {
  const body = sampleBody(route, fixture) ?? {};
  const takesConfig = route.body instanceof z.ZodObject && 'conversation_config' in route.body.shape;
  return takesConfig ? { ...body, conversation_config: largeConversationConfig(2_500) } : body;
}

// ---------------------------------------------------------------------------------------------
// Recipes
// ---------------------------------------------------------------------------------------------

/** Text that must not look like internals by itself, or a leak check could not tell an echo from a leak. */
const plainText = (text: string) => !LEAK.test(text) && !text.includes(FOREIGN_AGENT_NAME);

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit));
/** Any code point, lone surrogates included. */
const anyUnit = fc.oneof({ arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), weight: 4 }, { arbitrary: loneSurrogate, weight: 1 });
/**
 * Names every JavaScript object inherits: a lookup of one in a plain object finds a function of
 * `Object` instead of nothing (a tool `type` of "toString" once made a draft save a 500).
 */
const PROTOTYPE_NAMES = ['toString', 'constructor', '__proto__', 'prototype', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', 'toLocaleString', '__defineGetter__', '__lookupSetter__'];
const oddString = fc.oneof(
  { arbitrary: fc.string({ unit: anyUnit, maxLength: 40 }).filter(plainText), weight: 9 },
  { arbitrary: fc.constantFrom(...PROTOTYPE_NAMES), weight: 1 },
);

/** JSON string literals with unicode edge cases, written with escapes so they arrive as written. */
const UNICODE_EDGE_CASES = [
  '"\\ud800"', // lone high surrogate
  '"tail \\udfff"', // lone low surrogate
  '"\\udc00\\ud800"', // a pair in the wrong order
  '"nul \\u0000 inside"',
  '"\\u0000"',
  '"\\u202eevil.exe"', // right-to-left override
  '"\\u200f\\u05e9\\u05dc\\u05d5\\u05dd"', // right-to-left mark, Hebrew
  '"\\u0648\\u0643\\u064a\\u0644"', // Arabic
  '"🤖👩🏽‍💻🇺🇦"', // emoji, a ZWJ sequence, a flag (raw UTF-8)
  '"\\ud83e\\udd16"', // an emoji as a surrogate pair of escapes
  '"\\uffff"',
  '"\\ufffe\\ufeff"', // noncharacter, byte-order mark
  '"\\u2028\\u2029"', // JavaScript line terminators
  '"e\\u0301\\u0301\\u0301"', // combining marks
  '"\\u0001\\u001f\\u007f\\u0085"', // control characters
  '"\\\\\\"\\/"', // escaped backslash, quote, slash
];
const NAN_LIKE = ['"NaN"', '"nan"', '"Infinity"', '"-Infinity"', '"inf"', '"1e99999"', '"-0"', '"0x1F"', '"null"', '"undefined"', '"true"', '""', '" "'];
/** Number literals at and past the edges of a double, and odd spellings (1e99999 parses as Infinity). */
const ODD_NUMBERS = [
  '1e308',
  '-1e308',
  '1.7976931348623157e309',
  '1e99999',
  '-1e99999',
  '1E400',
  '1e-99999',
  '-0',
  '-0.0',
  '18446744073709551616', // 2^64
  '9007199254740993', // 2^53 + 1
  '-9223372036854775809',
  '123456789012345678901234567890',
  '0.1e1',
  '5e-324',
];
/** Bytes that are not UTF-8: overlong encodings, surrogates encoded, truncated sequences, stray bytes. */
const INVALID_UTF8: number[][] = [
  [0xc0, 0xaf], // overlong "/"
  [0xc0, 0x80], // overlong NUL
  [0xe0, 0x80, 0xaf], // overlong "/" in three bytes
  [0xf0, 0x80, 0x80, 0xaf], // overlong "/" in four bytes
  [0xed, 0xa0, 0x80], // a UTF-16 surrogate encoded as UTF-8
  [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
  [0xff, 0xfe],
  [0x80],
  [0xe2, 0x82], // truncated sequence
  [0xef, 0xbb, 0xbf], // a byte-order mark inside a string
  [0x22], // a bare quote: the string ends early
];
const HUGE_LENGTHS = [10_000, 100_000, 1_000_000];
/** Ids no resource has: odd text, things a path or a parser might treat specially. */
const ODD_IDS = [...PROTOTYPE_NAMES, ' ', '\u0000', 'null', 'undefined', '0', '-1', "agent_' or '1'='1", '${jndi:x}', '%', '🤖', 'a/b', 'x'.repeat(501), 'ü'.repeat(300)];
/** Ids written into the path raw, not encoded: malformed percent-encodings and encoded bytes. */
const RAW_ODD_IDS = ['%', '%zz', '%E0%A4%A', '%C0%AF', '%ED%A0%80', '%FF', '%00', '%2F', 'a%3Bb', '%25'];
/** Query names a parser might treat specially. */
const ODD_QUERY_NAMES = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'a[b]', 'a[]', '', ' ', '%FF', 'x'.repeat(2_000)];

type RefusalRecipe =
  | { kind: 'truncated JSON'; keep: number }
  | { kind: 'deep nesting'; at: number; depth: number; brackets: 'objects' | 'arrays' }
  | { kind: 'odd path id'; param: number; id: string; raw: boolean }
  | { kind: 'foreign id in path'; param: number; source: IdSource }
  | { kind: 'foreign id in query'; param: number; source: IdSource }
  | { kind: 'foreign id in body'; at: number; source: IdSource };

type AnyRecipe =
  | { kind: 'corrupted JSON'; at: number; text: string }
  | { kind: 'wrong type'; at: number; value: unknown }
  | { kind: 'huge string'; at: number; length: number; char: string }
  | { kind: 'nesting near the limit'; at: number; depth: number }
  | { kind: 'many keys'; at: number; count: number }
  | { kind: 'odd number'; at: number; literal: string; quoted: boolean }
  | { kind: 'NaN-like string'; at: number; literal: string }
  | { kind: 'unicode edge case'; at: number; literal: string }
  | { kind: 'random unicode string'; at: number; text: string }
  | { kind: 'invalid UTF-8 bytes'; at: number; bytes: number[] }
  | { kind: 'unknown query parameter'; name: string; value: string; rawName: boolean }
  | { kind: 'foreign id in a filter'; param: number; source: IdSource };

type Kind = RefusalRecipe['kind'] | AnyRecipe['kind'];

const position = fc.nat({ max: 1_000_000 });
const idSource = fc.constantFrom(...ID_SOURCES);

const REFUSAL_ARBITRARIES: { [K in RefusalRecipe['kind']]: fc.Arbitrary<Extract<RefusalRecipe, { kind: K }>> } = {
  'truncated JSON': fc.record({ kind: fc.constant('truncated JSON'), keep: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }) }),
  'deep nesting': fc.record({
    kind: fc.constant('deep nesting'),
    at: position,
    depth: fc.oneof(fc.constant(10_000), fc.integer({ min: MAX_JSON_DEPTH + 1, max: 10_000 })),
    brackets: fc.constantFrom('objects', 'arrays'),
  }),
  'odd path id': fc.oneof(
    fc.record({ kind: fc.constant('odd path id'), param: position, id: fc.constantFrom(...ODD_IDS), raw: fc.constant(false) }),
    fc.record({ kind: fc.constant('odd path id'), param: position, id: fc.constantFrom(...RAW_ODD_IDS), raw: fc.constant(true) }),
    fc.record({ kind: fc.constant('odd path id'), param: position, id: oddString.filter((id) => id !== '' && !DOT_SEGMENT.test(id)), raw: fc.constant(false) }),
  ),
  'foreign id in path': fc.record({ kind: fc.constant('foreign id in path'), param: position, source: idSource }),
  'foreign id in query': fc.record({ kind: fc.constant('foreign id in query'), param: position, source: idSource }),
  'foreign id in body': fc.record({ kind: fc.constant('foreign id in body'), at: position, source: idSource }),
};

const wrongValue = jsonValue.filter((value) => plainText(JSON.stringify(value)));

const ANY_ARBITRARIES: { [K in AnyRecipe['kind']]: fc.Arbitrary<Extract<AnyRecipe, { kind: K }>> } = {
  'corrupted JSON': fc.record({
    kind: fc.constant('corrupted JSON'),
    at: position,
    text: fc.constantFrom('{', '}', '[', ']', ':', ',', '"', '\\', '\u0000', '\n', 'x', '0', '-', 'e', '\ud800', '', '}}}', '"\\u'),
  }),
  'wrong type': fc.record({ kind: fc.constant('wrong type'), at: position, value: wrongValue }),
  'huge string': fc.record({
    kind: fc.constant('huge string'),
    at: position,
    length: fc.constantFrom(...HUGE_LENGTHS),
    // Few distinct strings: the database stores a long string once, so accepted ones stay cheap to snapshot.
    char: fc.constantFrom('x', 'é', '🤖', '"'),
  }),
  'nesting near the limit': fc.record({ kind: fc.constant('nesting near the limit'), at: position, depth: fc.integer({ min: MAX_JSON_DEPTH - 8, max: MAX_JSON_DEPTH + 2 }) }),
  'many keys': fc.record({ kind: fc.constant('many keys'), at: position, count: fc.constantFrom(1_000, 50_000) }),
  'odd number': fc.record({ kind: fc.constant('odd number'), at: position, literal: fc.constantFrom(...ODD_NUMBERS), quoted: fc.boolean() }),
  'NaN-like string': fc.record({ kind: fc.constant('NaN-like string'), at: position, literal: fc.constantFrom(...NAN_LIKE) }),
  'unicode edge case': fc.record({ kind: fc.constant('unicode edge case'), at: position, literal: fc.constantFrom(...UNICODE_EDGE_CASES) }),
  'random unicode string': fc.record({ kind: fc.constant('random unicode string'), at: position, text: oddString }),
  'invalid UTF-8 bytes': fc.record({ kind: fc.constant('invalid UTF-8 bytes'), at: position, bytes: fc.constantFrom(...INVALID_UTF8) }),
  'unknown query parameter': fc.oneof(
    fc.record({ kind: fc.constant('unknown query parameter'), name: fc.string({ minLength: 1, maxLength: 20 }).filter(plainText), value: oddString, rawName: fc.constant(false) }),
    fc.record({ kind: fc.constant('unknown query parameter'), name: fc.constantFrom(...ODD_QUERY_NAMES), value: oddString, rawName: fc.constant(true) }),
  ),
  'foreign id in a filter': fc.record({ kind: fc.constant('foreign id in a filter'), param: position, source: idSource }),
};

// ---------------------------------------------------------------------------------------------
// Which recipes fit which route, and what each must get
// ---------------------------------------------------------------------------------------------

const BODY_KINDS: Kind[] = [
  'truncated JSON',
  'deep nesting',
  'corrupted JSON',
  'wrong type',
  'huge string',
  'nesting near the limit',
  'many keys',
  'odd number',
  'NaN-like string',
  'unicode edge case',
  'random unicode string',
  'invalid UTF-8 bytes',
];

/** The string leaves of a body that hold one of the fixture's ids, with the id's kind. */
function bodyIdPaths(body: unknown, fixtureIds: Map<string, IdKind>): { path: JsonPath; kind: IdKind }[] {
  return nodePaths(body)
    .map((path) => ({ path, value: valueAt(body, path) }))
    .filter((node): node is { path: JsonPath; value: string } => typeof node.value === 'string' && fixtureIds.has(node.value))
    .map(({ path, value }) => ({ path, kind: fixtureIds.get(value)! }));
}

function selectingQueryIds(route: RouteDefinition) {
  return queryIdParams(route).filter((name) => queryIds(route)[name]?.role !== 'filters');
}

function filteringQueryIds(route: RouteDefinition) {
  return queryIdParams(route).filter((name) => queryIds(route)[name]?.role === 'filters');
}

/** Path parameters an id of `source` may replace without naming a resource the caller may use. */
function replaceablePathParams(route: RouteDefinition, source: IdSource): string[] {
  const params = pathParams(route);
  // Another agent of ours in `:agent_id` alone is a valid request about that agent.
  return source === 'another agent of ours' && params.length === 1 ? [] : params;
}

function kindsFor(route: RouteDefinition, fixture: Fixture): Kind[] {
  const kinds: Kind[] = [];
  if (route.method !== 'GET') kinds.push(...BODY_KINDS);
  if (pathParams(route).length > 0) kinds.push('odd path id', 'foreign id in path');
  if (selectingQueryIds(route).length > 0) kinds.push('foreign id in query');
  if (route.body && bodyIdPaths(fuzzBaseBody(route, fixture), idKindsOf(fixture)).length > 0) kinds.push('foreign id in body');
  kinds.push('unknown query parameter');
  if (filteringQueryIds(route).length > 0) kinds.push('foreign id in a filter');
  return kinds;
}

/** What one request of a must-refuse recipe must get, beyond a clean refusal in the documented shape. */
type Expectation = (response: LightMyRequestResponse) => void;

function buildRefusal(route: RouteDefinition, { fixture, ids }: RouteBench, recipe: RefusalRecipe): { request: FuzzRequest; expectation: Expectation } | undefined {
  const base = fuzzBaseBody(route, fixture);
  const sample = route.method === 'GET' ? undefined : JSON.stringify(base);
  const request = (url: string, payload = sample): FuzzRequest => ({ route, method: route.method, url, payload });
  switch (recipe.kind) {
    case 'truncated JSON': {
      const text = JSON.stringify(base);
      // Any proper, non-empty prefix of an object's JSON text is invalid JSON (an empty body is no body).
      const cut = 1 + Math.floor(recipe.keep * (text.length - 1));
      return {
        request: request(urlFor(route, fixture), text.slice(0, cut)),
        expectation: (response) => expect(expectValidationError(response)).toEqual([expect.objectContaining({ loc: ['body', 0], type: 'json_invalid' })]),
      };
    }
    case 'deep nesting': {
      const nested = recipe.brackets === 'objects' ? `${'{"a":'.repeat(recipe.depth)}1${'}'.repeat(recipe.depth)}` : `${'['.repeat(recipe.depth)}${']'.repeat(recipe.depth)}`;
      const text = bodyWithRawAt(base, pick(nodePaths(base), recipe.at), nested);
      expect(maxJsonDepth(text)).toBeGreaterThan(MAX_JSON_DEPTH);
      return {
        request: request(urlFor(route, fixture), text),
        expectation: (response) => expect(expectValidationError(response)).toEqual([expect.objectContaining({ loc: ['body'], type: 'json_too_deep' })]),
      };
    }
    case 'odd path id': {
      const param = pick(pathParams(route), recipe.param);
      const segment = recipe.raw ? recipe.id : percentEncode(recipe.id);
      return {
        request: request(urlFor(route, fixture, { path: { [param]: segment } })),
        // No id holds such text: not found; a URL that does not decode is malformed.
        expectation: (response) => {
          expect([400, 404], describeResponse(response)).toContain(response.statusCode);
          expectApiError(response, response.statusCode, response.statusCode === 404 ? 'not_found' : 'invalid_request');
        },
      };
    }
    case 'foreign id in path': {
      const params = replaceablePathParams(route, recipe.source);
      if (params.length === 0) return undefined;
      const param = pick(params, recipe.param);
      const id = idFrom(ids, recipe.source, pathIdKind(route, param));
      return {
        request: request(urlFor(route, fixture, { path: { [param]: encodeURIComponent(id) } })),
        expectation: (response) => expectApiError(response, 404, 'not_found'),
      };
    }
    case 'foreign id in query': {
      const param = pick(selectingQueryIds(route), recipe.param);
      const { kind, role } = queryIds(route)[param];
      return {
        request: request(urlFor(route, fixture, { query: { [param]: idFrom(ids, recipe.source, kind) } })),
        expectation: (response) =>
          role === 'expects' ? expectApiError(response, 409, 'conflict', 'concurrent_modification') : expectApiError(response, 404, 'not_found'),
      };
    }
    case 'foreign id in body': {
      const target = pick(bodyIdPaths(base, idKindsOf(fixture)), recipe.at);
      // Users belong to the workspace, not to an agent: another agent of ours has the same ones.
      if (target.kind === 'user' && recipe.source === 'another agent of ours') return undefined;
      const body = withValueAt(base, target.path, idFrom(ids, recipe.source, target.kind));
      return {
        request: request(urlFor(route, fixture), JSON.stringify(body)),
        // decisions.md D2: an id inside a body that does not resolve is a 422 at that item.
        expectation: (response) => expect(expectValidationError(response).map((issue) => issue.loc)).toContainEqual(['body', ...target.path]),
      };
    }
  }
}

function buildAny(route: RouteDefinition, { fixture, ids }: RouteBench, recipe: AnyRecipe): FuzzRequest | undefined {
  const base = fuzzBaseBody(route, fixture);
  const paths = nodePaths(base);
  const request = (payload: string | Buffer | undefined, url = urlFor(route, fixture)): FuzzRequest => ({ route, method: route.method, url, payload });
  const sample = route.method === 'GET' ? undefined : JSON.stringify(base);
  switch (recipe.kind) {
    case 'corrupted JSON': {
      const text = JSON.stringify(base);
      const at = recipe.at % text.length;
      return request(`${text.slice(0, at)}${recipe.text}${text.slice(at + 1)}`);
    }
    case 'wrong type': {
      const path = pick(paths, recipe.at);
      const current = valueAt(base, path);
      // Of a different JSON type than what the sample has there.
      const value = jsonType(recipe.value) === jsonType(current) ? (jsonType(current) === 'array' ? { value: recipe.value } : [recipe.value]) : recipe.value;
      return request(JSON.stringify(withValueAt(base, path, value)));
    }
    case 'huge string':
      return request(JSON.stringify(withValueAt(base, pick(paths, recipe.at), recipe.char.repeat(recipe.length))));
    case 'nesting near the limit': {
      const path = pick(paths, recipe.at);
      const depth = Math.max(0, recipe.depth - path.length - 1);
      return request(bodyWithRawAt(base, path, `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`));
    }
    case 'many keys': {
      const many = Object.fromEntries(Array.from({ length: recipe.count }, (_, i) => [`k${i}`, i]));
      return request(JSON.stringify(withValueAt(base, pick(paths, recipe.at), many)));
    }
    case 'odd number':
      return request(bodyWithRawAt(base, pick(paths, recipe.at), recipe.quoted ? `"${recipe.literal}"` : recipe.literal));
    case 'NaN-like string':
    case 'unicode edge case':
      return request(bodyWithRawAt(base, pick(paths, recipe.at), recipe.literal));
    case 'random unicode string':
      return request(JSON.stringify(withValueAt(base, pick(paths, recipe.at), recipe.text)));
    case 'invalid UTF-8 bytes':
      return request(bodyWithBytesAt(base, pick(paths, recipe.at), recipe.bytes));
    case 'unknown query parameter': {
      const known = new Set(queryKeys(route));
      if (known.has(recipe.name)) return undefined;
      const name = recipe.rawName ? recipe.name : percentEncode(recipe.name);
      return request(sample, urlFor(route, fixture, { extraQuery: `${name}=${percentEncode(recipe.value)}` }));
    }
    case 'foreign id in a filter': {
      const param = pick(filteringQueryIds(route), recipe.param);
      return request(sample, urlFor(route, fixture, { query: { [param]: idFrom(ids, recipe.source, queryIds(route)[param].kind) } }));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Checks every response must pass
// ---------------------------------------------------------------------------------------------

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request',
  401: 'authentication_error',
  403: 'authorization_error',
  404: 'not_found',
  409: 'conflict',
  413: 'invalid_request',
  429: 'rate_limit_error',
};

/** `byForeignCaller`: the other workspace's own key asked, so its agent may show. */
function expectWellFormed(response: LightMyRequestResponse, request: string, byForeignCaller = false): void {
  const what = `${request}\n→ ${describeResponse(response)}`;
  expect(response.statusCode, what).toBeLessThan(500);
  expect(response.body, `internals on the wire: ${what}`).not.toMatch(LEAK);
  if (!byForeignCaller) expect(response.body, `another workspace's agent shows: ${what}`).not.toContain(FOREIGN_AGENT_NAME);
  if (response.statusCode === 422) expectValidationError(response);
  else if (response.statusCode >= 400) {
    expect(Object.keys(ERROR_TYPES), `an undocumented status: ${what}`).toContain(String(response.statusCode));
    expectApiError(response, response.statusCode, ERROR_TYPES[response.statusCode]);
  } else if (response.body !== '') {
    expect(() => JSON.parse(response.body), what).not.toThrow();
  }
}

/** The database as last seen: consecutive refusals share one snapshot instead of taking two each. */
function databaseWatch(db: TestApp['store']['db']) {
  let known: string | undefined;
  return {
    async current(): Promise<string> {
      known ??= await snapshotDatabase(db);
      return known;
    },
    /** Something may have been written. */
    forget(): void {
      known = undefined;
    },
    async expectUnchangedSince(before: string, what: () => string): Promise<void> {
      const after = await snapshotDatabase(db);
      known = after;
      if (after !== before) expect(snapshotDiff(before, after), `a refused request changed the database:\n${what()}`).toEqual([]);
      expect(after).toBe(before);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A database per route: our fixture, another agent of ours, another workspace's agent
// ---------------------------------------------------------------------------------------------

/** One route's world. Its own database keeps snapshots small: what other routes accepted is not in it. */
interface RouteBench {
  testApp: TestApp;
  requests: ReturnType<typeof routeRequests>;
  fixture: Fixture;
  ids: WorldIds;
  watch: ReturnType<typeof databaseWatch>;
}

async function createBench(): Promise<RouteBench> {
  const testApp = await startTestApp();
  const requests = routeRequests(testApp);
  const fixture = await requests.createFixture();
  const other = await requests.createFixture();
  const foreign = await requests.createFixture(testApp.foreignKey, FOREIGN_AGENT_NAME);
  const users = await testApp.store.db.selectFrom('users').select(['id', 'workspace_id', 'name']).execute();
  const ourUser = users.find((user) => user.name === 'editor-user')!;
  const foreignUser = users.find((user) => user.workspace_id !== ourUser.workspace_id)!;
  return {
    testApp,
    requests,
    fixture,
    ids: { ours: idsOf(fixture, ourUser.id), otherAgent: idsOf(other, ourUser.id), otherWorkspace: idsOf(foreign, foreignUser.id) },
    watch: databaseWatch(testApp.store.db),
  };
}

/** Stand-in ids for deciding, when tests are declared, which kinds of input fit a route. */
const SHAPE_FIXTURE: Fixture = {
  agentId: 'agent_shape',
  mainBranchId: 'agtbrch_shape_main',
  mainVersionId: 'agtvrsn_shape_main',
  branchId: 'agtbrch_shape_branch',
  branchVersionId: 'agtvrsn_shape_branch',
  deploymentId: 'agtdpl_shape',
  proposalId: 'agtmprop_shape',
  reviewerUserId: 'user_shape',
  procedureId: 'agtprc_shape',
  procedureVersionId: 'agtprcv_shape',
  guardedRolloutId: 'agtgrol_shape',
  webhookId: 'owh_shape',
  metricKey: 'csat_shape',
};

/** How many requests each route got, by kind: the last test checks that every route was fuzzed. */
const fuzzed = new Map<string, Map<Kind, number>>();

async function sendFuzz(bench: RouteBench, request: FuzzRequest, kind: Kind): Promise<LightMyRequestResponse> {
  const counts = fuzzed.get(routeName(request.route)) ?? new Map<Kind, number>();
  counts.set(kind, (counts.get(kind) ?? 0) + 1);
  fuzzed.set(routeName(request.route), counts);
  return bench.requests.send({ method: request.method, url: request.url, key: bench.testApp.keys.admin, payload: request.payload });
}

function assertOptions<T>(numRuns: number): fc.Parameters<T> {
  return { numRuns, ...(SEED === undefined ? {} : { seed: SEED }) };
}

// ---------------------------------------------------------------------------------------------
// The properties, per route
// ---------------------------------------------------------------------------------------------

// Top-level await: the route table must exist before the per-route tests are declared.
const tableApp = await startTestApp();
afterAll(() => tableApp.close());
// Routes that take no key authenticate every request themselves before reading its body (the signed
// post-call webhook): unsigned, every input here is the same 401. test/experiments-webhooks.test.ts
// fuzzes its signed bodies.
const routes = tableApp.app.routes.filter((route) => route.permission !== 'public');

describe('the route table under fuzz', () => {
  it('has routes, and every query parameter named like an id is classified', () => {
    expect(routes.length).toBeGreaterThanOrEqual(20);
    for (const route of routes) {
      for (const param of queryIdParams(route)) {
        expect(queryIds(route)[param], `classify ${param} of ${routeName(route)} in its example's queryIds`).toBeDefined();
      }
    }
  });

  it('every field that names another object (`*_id`, `*_ids`, in body or query) is sent with a real value', () => {
    const fixtureIds = new Set<unknown>(Object.values(SHAPE_FIXTURE));
    const missing: string[] = [];
    let fields = 0;
    for (const route of routes) {
      const sent = referencingFields(route, SHAPE_FIXTURE);
      for (const field of referenceFields(route)) {
        fields++;
        const [where, ...path] = field.split('.');
        const values = valuesAtPath(where === 'body' ? sent.body : sent.query, path).flatMap((value) => (Array.isArray(value) ? value : [value]));
        // A fixture id, or a comma-separated list of them (`agent_ids`).
        const real = values.length > 0 && values.every((value) => typeof value === 'string' && value.split(',').every((id) => fixtureIds.has(id)));
        if (!real) missing.push(`${routeName(route)} ${field}: add it to its example's references or body`);
      }
    }
    expect(fields, 'the schema walk finds fields').toBeGreaterThanOrEqual(20);
    expect(missing).toEqual([]);
  });

  it.each(routes.filter((route) => route.body).map((route) => [routeName(route), route] as const))('the fuzz body of %s passes its schema', (_, route) => {
    const result = (route.body as z.ZodType).safeParse(fuzzBaseBody(route, SHAPE_FIXTURE));
    expect(result.success, JSON.stringify(result.error?.issues)).toBe(true);
  });
});

/** Reads write nothing, so they share one database; a route that writes gets its own. */
let readBench: Promise<RouteBench> | undefined;
afterAll(async () => (await readBench)?.testApp.close());

/** Kinds whose every request is large: a few runs show the limits, more would only take time. */
const BULKY_KINDS = new Set<Kind>(['many keys', 'huge string']);

function runsFor(kind: Kind, kinds: Kind[]): number {
  const runs = Math.max(3, Math.ceil(RUNS_PER_ROUTE / kinds.length));
  return BULKY_KINDS.has(kind) ? Math.max(2, Math.ceil(runs / 3)) : runs;
}

for (const route of routes) {
  describe(routeName(route), () => {
    let bench: RouteBench;
    beforeAll(async () => {
      bench = route.method === 'GET' ? await (readBench ??= createBench()) : await createBench();
    });
    afterAll(async () => {
      if (route.method !== 'GET') await bench.testApp.close();
    });

    const kinds = kindsFor(route, SHAPE_FIXTURE);

    // Refusals first, while the fixture is as created: each run is a batch of requests that must
    // all be refused, with one snapshot before and one after; fast-check shrinks a failing batch
    // to the request that wrote.
    for (const kind of kinds.filter((kind): kind is RefusalRecipe['kind'] => kind in REFUSAL_ARBITRARIES)) {
      it(`${kind}: refused in the documented shape, nothing written`, async () => {
        bench.watch.forget();
        const batch = fc.array(REFUSAL_ARBITRARIES[kind] as fc.Arbitrary<RefusalRecipe>, { minLength: 1, maxLength: 4 });
        await fc.assert(
          fc.asyncProperty(batch, async (recipes) => {
            const sent: string[] = [];
            const before = await bench.watch.current();
            for (const recipe of recipes) {
              const built = buildRefusal(route, bench, recipe);
              if (!built) continue;
              const what = describeRequest(built.request);
              sent.push(what);
              const response = await sendFuzz(bench, built.request, kind);
              expectWellFormed(response, what);
              expect(response.statusCode, `${what}\n→ ${describeResponse(response)}`).toBeGreaterThanOrEqual(400);
              built.expectation(response);
            }
            await bench.watch.expectUnchangedSince(before, () => sent.join('\n'));
          }),
          assertOptions(Math.ceil(runsFor(kind, kinds) / 2)),
        );
      });
    }

    // Real values in every optional field that names another object, in any combination, by an
    // admin or an editor on a fresh fixture: accepted (the admin: always), never a 5xx, never a hang.
    const references = referenceFields(route);
    if (references.length > 0) {
      it('real references in any combination: accepted or refused cleanly, never a 5xx', async () => {
        const optional = Object.entries(optionalReferences(route, SHAPE_FIXTURE)).flatMap(([, fields]) => Object.keys(fields ?? {}));
        await fc.assert(
          fc.asyncProperty(fc.subarray([...new Set(optional)]), fc.constantFrom('admin' as const, 'editor' as const), async (chosen, role) => {
            const fixture = route.method === 'GET' ? bench.fixture : await bench.requests.createFixture();
            const request = referencingRequest(route, fixture, (name) => chosen.includes(name));
            const what = `${route.method} ${request.url} ${JSON.stringify(request.payload) ?? ''} as ${role}`;
            const response = await bench.requests.send({ method: route.method, url: request.url, key: bench.testApp.keys[role], payload: request.payload });
            bench.watch.forget();
            expectWellFormed(response, what);
            if (role === 'admin') expect([200, 204], `${what}\n→ ${describeResponse(response)}`).toContain(response.statusCode);
          }),
          assertOptions(Math.max(3, Math.ceil(RUNS_PER_ROUTE / 25))),
        );
      });
    }

    // Names every object inherits, wherever a client's text becomes a lookup key: every string of
    // the body at once, an extra key in every object (holding a string, then an object), every
    // query value, every path id. Never a 5xx; a refusal writes nothing.
    it('names Object.prototype has, everywhere at once: accepted or refused cleanly, nothing written when refused', async () => {
      bench.watch.forget();
      const { fixture } = bench;
      for (const name of PROTOTYPE_NAMES) {
        const urls = [
          urlFor(route, fixture),
          ...queryKeys(route).map((key) => urlFor(route, fixture, { query: { [key]: name } })),
          ...pathParams(route).map((param) => urlFor(route, fixture, { path: { [param]: encodeURIComponent(name) } })),
        ];
        const base = route.method === 'GET' ? undefined : fuzzBaseBody(route, fixture);
        const payloads = base === undefined ? [undefined] : [JSON.stringify(everyStringAs(base, name)), everyObjectWithKey(base, name, '"x"'), everyObjectWithKey(base, name, '{"type":"x"}')];
        const requests: FuzzRequest[] = [
          ...payloads.map((payload) => ({ route, method: route.method, url: urls[0], payload })),
          ...urls.slice(1).map((url) => ({ route, method: route.method, url, payload: base === undefined ? undefined : JSON.stringify(base) })),
        ];
        for (const request of requests) {
          const what = describeRequest(request);
          const before = await bench.watch.current();
          const response = await bench.requests.send({ method: request.method, url: request.url, key: bench.testApp.keys.admin, payload: request.payload });
          expectWellFormed(response, what);
          if (response.statusCode >= 400) await bench.watch.expectUnchangedSince(before, () => what);
          else bench.watch.forget();
        }
      }
    });

    // Anything else may be accepted: then only its shape is checked. A refusal must still have
    // written nothing (the snapshot after one request is the one before the next).
    for (const kind of kinds.filter((kind): kind is AnyRecipe['kind'] => kind in ANY_ARBITRARIES)) {
      it(`${kind}: accepted or refused cleanly, nothing written when refused`, async () => {
        bench.watch.forget();
        await fc.assert(
          fc.asyncProperty(ANY_ARBITRARIES[kind] as fc.Arbitrary<AnyRecipe>, async (recipe) => {
            const request = buildAny(route, bench, recipe);
            if (!request) return;
            const what = describeRequest(request);
            const before = await bench.watch.current();
            const response = await sendFuzz(bench, request, kind);
            expectWellFormed(response, what);
            if (response.statusCode >= 400) await bench.watch.expectUnchangedSince(before, () => what);
            else bench.watch.forget();
            // A read is not changed by a parameter it does not know, or a filter that matches nothing.
            if (route.method === 'GET' && (kind === 'unknown query parameter' || kind === 'foreign id in a filter')) {
              expect(response.statusCode, `${what}\n→ ${describeResponse(response)}`).toBe(200);
            }
          }),
          assertOptions(runsFor(kind, kinds)),
        );
      });
    }
  });
}

describe('numbers out of range in a stored config', () => {
  const { send } = routeRequests(tableApp);
  const agentUrl = (response: LightMyRequestResponse) => `/v1/convai/agents/${(response.json() as { agent_id: string }).agent_id}`;

  // JSON.parse reads an overflowing literal as ±Infinity, which no JSON text can hold: stored, it
  // would silently come back as null. Such a number must be refused (decisions.md D2: bad input gets a 4xx).
  it.each(ODD_NUMBERS)('%s: refused, or read back as it was sent', async (literal) => {
    const payload = `{"name":"Numbers","conversation_config":{"agent":{"first_message":"hi"},"${NEW_FIELD}":${literal}}}`;
    const request = { method: 'POST' as const, url: '/v1/convai/agents/create', key: tableApp.keys.admin, payload };
    const response = await send(request);
    expectWellFormed(response, `POST ${request.url} ${payload}`);
    const sent = JSON.parse(literal) as number;
    if (!Number.isFinite(sent)) {
      expect(response.statusCode, `${literal} was accepted: ${describeResponse(response)}`).toBeGreaterThanOrEqual(400);
      return;
    }
    if (response.statusCode >= 400) return;
    const agent = await send({ method: 'GET', url: agentUrl(response), key: tableApp.keys.admin });
    const stored = (agent.json() as { conversation_config: Record<string, unknown> }).conversation_config[NEW_FIELD];
    expect(JSON.stringify(stored)).toBe(JSON.stringify(sent));
  });
});

describe('coverage', () => {
  it('every route in the route table was fuzzed with every kind of input that fits it', () => {
    expect(routes.length).toBeGreaterThan(0);
    const missing = routes.flatMap((route) =>
      kindsFor(route, SHAPE_FIXTURE)
        .filter((kind) => !fuzzed.get(routeName(route))?.get(kind))
        .map((kind) => `${routeName(route)}: ${kind}`),
    );
    expect(missing).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// GET agent over a socket, where the raw node:http fast path answers before Fastify
// ---------------------------------------------------------------------------------------------

interface SocketResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A GET with the path sent exactly as given: no URL parsing, so no dot-segment removal. */
function rawGet(baseUrl: string, path: string, key: string | null): Promise<SocketResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    // A connection of its own: after a malformed request the server closes it.
    const options = { host: hostname, port, path, method: 'GET', agent: false, headers: key === null ? {} : { 'xi-api-key': key } };
    const request = httpRequest(options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ statusCode: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

/** The checks of `inject` responses apply to socket responses as they are: same fields. */
function asInjected(response: SocketResponse): LightMyRequestResponse {
  return { ...response, json: () => JSON.parse(response.body) } as unknown as LightMyRequestResponse;
}

/** A response with its request id blanked: two answers to one request differ only there. */
function comparable(response: SocketResponse | LightMyRequestResponse) {
  let body: unknown = response.body;
  try {
    body = JSON.parse(response.body);
    const detail = (body as { detail?: { request_id?: string } }).detail;
    if (detail && typeof detail === 'object' && 'request_id' in detail) detail.request_id = '<request id>';
  } catch {
    // Not JSON: compared as text.
  }
  // The media type only: the fast path adds `; charset=utf-8`, which changes nothing for a JSON reader.
  const mediaType = String(response.headers['content-type']).split(';')[0];
  return { status: response.statusCode, mediaType, body };
}

type Caller = 'admin' | 'viewer' | 'another workspace admin' | 'unknown key' | 'no key';
type ValueRef = { ref: 'ours' | IdSource | 'empty' } | { text: string };

const agentGetRecipe = fc.record({
  agent: fc.constantFrom<'ours' | IdSource>('ours', 'ours', ...ID_SOURCES),
  query: fc.uniqueArray(
    fc.record({
      name: fc.constantFrom('branch_id', 'version_id', 'conversation_id', 'routing_key', 'not_a_parameter'),
      value: fc.oneof(
        { arbitrary: fc.constantFrom<ValueRef>(...(['ours', ...ID_SOURCES, 'empty'] as const).map((ref) => ({ ref }))), weight: 4 },
        // Few conversations, so that routed reads repeat and the routing cache answers some.
        { arbitrary: fc.constantFrom<ValueRef>({ text: 'conv-1' }, { text: 'conv-2' }, { text: 'café ☕' }), weight: 2 },
        { arbitrary: oddString.map<ValueRef>((text) => ({ text })), weight: 1 },
      ),
    }),
    { selector: (item) => item.name, maxLength: 3 },
  ),
  caller: fc.constantFrom<Caller>('admin', 'admin', 'viewer', 'another workspace admin', 'unknown key', 'no key'),
});

type AgentGetRecipe = typeof agentGetRecipe extends fc.Arbitrary<infer R> ? R : never;

function agentGetUrl({ fixture, ids }: RouteBench, recipe: AgentGetRecipe): string {
  const agentId = recipe.agent === 'ours' ? fixture.agentId : idFrom(ids, recipe.agent, 'agent');
  const valueOf = (name: string, value: ValueRef): string => {
    if ('text' in value) return value.text;
    if (value.ref === 'empty') return '';
    const kind: IdKind | undefined = name === 'branch_id' ? 'branch' : name === 'version_id' ? 'version' : undefined;
    if (!kind) return value.ref === 'ours' ? 'conv-1' : idFrom(ids, value.ref, 'agent');
    if (value.ref === 'ours') return kind === 'branch' ? fixture.branchId : fixture.branchVersionId;
    return idFrom(ids, value.ref, kind);
  };
  const query = recipe.query.map(({ name, value }) => `${name}=${percentEncode(valueOf(name, value))}`).join('&');
  return `/v1/convai/agents/${encodeURIComponent(agentId)}${query ? `?${query}` : ''}`;
}

function keyOf({ testApp }: RouteBench, caller: Caller): string | null {
  switch (caller) {
    case 'admin':
    case 'viewer':
      return testApp.keys[caller];
    case 'another workspace admin':
      return testApp.foreignKey;
    case 'unknown key':
      return 'sk_000000000000000000000000000000000000000000000000';
    case 'no key':
      return null;
  }
}

describe('GET agent over a socket, where the fast path answers (decisions.md D17: same auth, same errors)', () => {
  let bench: RouteBench;
  let baseUrl: string;
  beforeAll(async () => {
    bench = await createBench();
    baseUrl = await listen(bench.testApp);
  });
  afterAll(() => bench.testApp.close());

  it('answers every request exactly as the full route does', async () => {
    const before = await snapshotDatabase(bench.testApp.store.db);
    const servedBefore = bench.testApp.app.fastPath.served;
    await fc.assert(
      fc.asyncProperty(agentGetRecipe, async (recipe) => {
        const url = agentGetUrl(bench, recipe);
        const key = keyOf(bench, recipe.caller);
        const what = `GET ${url} as ${recipe.caller}`;
        // The full route first: it fills the key and routing caches the fast path answers from.
        const viaRoute = await bench.requests.send({ method: 'GET', url, key });
        const viaSocket = await rawGet(baseUrl, url, key);
        const byForeignCaller = recipe.caller === 'another workspace admin';
        expectWellFormed(viaRoute, what, byForeignCaller);
        expectWellFormed(asInjected(viaSocket), `${what} (over a socket)`, byForeignCaller);
        expect(comparable(viaSocket), what).toEqual(comparable(viaRoute));
      }),
      assertOptions(RUNS_PER_ROUTE),
    );
    // The comparison is not vacuous: the fast path answered some of these.
    expect(bench.testApp.app.fastPath.served).toBeGreaterThan(servedBefore);
    expect(snapshotDiff(before, await snapshotDatabase(bench.testApp.store.db))).toEqual([]);
  });

  /** Sends each path with our admin key and the other workspace's; returns what was not well formed. */
  async function problemsWith(paths: string[]): Promise<string[]> {
    const problems: string[] = [];
    for (const path of paths) {
      for (const key of [bench.testApp.keys.admin, bench.testApp.foreignKey]) {
        const response = await rawGet(baseUrl, path, key);
        try {
          expectWellFormed(asInjected(response), `GET ${path}`, key === bench.testApp.foreignKey);
        } catch (error) {
          const shown = path.replace(/[\x80-\xff]/g, (byte) => `\\x${byte.charCodeAt(0).toString(16)}`);
          problems.push(`GET ${shown} → ${response.statusCode} ${response.body.slice(0, 200)}: ${(error as Error).message.split('\n')[0]}`);
        }
      }
    }
    return problems;
  }

  it('dot segments in the path: never a 5xx, errors in the documented shape, nothing written', async () => {
    const before = await snapshotDatabase(bench.testApp.store.db);
    const agent = `/v1/convai/agents/${bench.fixture.agentId}`;
    const paths = [
      '/v1/convai/agents/.',
      '/v1/convai/agents/..',
      '/v1/convai/agents/%2e',
      '/v1/convai/agents/%2E%2e',
      '/v1/convai/agents/./',
      `${agent}/branches/..`,
      `${agent}/branches/%2e%2e`,
      `${agent}/versions/.`,
      `${agent}/../../agents/${bench.fixture.agentId}`,
    ];
    expect(await problemsWith(paths)).toEqual([]);
    expect(snapshotDiff(before, await snapshotDatabase(bench.testApp.store.db))).toEqual([]);
  });

  // Bytes outside ASCII in the request line fail Node's HTTP parser before any route runs; the
  // answer must still be the documented error shape (decisions.md D2), not Fastify's own.
  it('bytes that are not ASCII in the request line (overlong UTF-8, raw): 400 in the documented shape', async () => {
    const agent = `/v1/convai/agents/${bench.fixture.agentId}`;
    const paths = [
      '/v1/convai/agents/\xc0\xaf', // overlong "/"
      '/v1/convai/agents/\xed\xa0\x80', // a UTF-16 surrogate as UTF-8
      '/v1/convai/agents/\xff\xfe',
      `${agent}?branch_id=\xc0\x80`, // overlong NUL
    ];
    expect(await problemsWith(paths)).toEqual([]);
  });
});
