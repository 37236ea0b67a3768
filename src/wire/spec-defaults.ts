import { readFileSync } from 'node:fs';

import { type Json, type JsonObject, isJsonObject } from '../domain/canonical-json.js';
import { spend } from '../domain/work-budget.js';

/**
 * Fills a config with the defaults the upstream OpenAPI declares, walking the spec itself.
 *
 * Upstream (pydantic) builds absent sub-objects with `default_factory`, which the OpenAPI
 * cannot express: a create body without `asr` still comes back with a full `asr` object.
 * The generated zod schemas fill defaults only inside objects that were sent, so this walk
 * constructs the absent ones. In `output` mode it also fills the fields that a response
 * schema requires but gives no default for (workflow node `position`, `edge_order`, …), so
 * the official SDK's strict parser accepts every stored config (decisions.md D1).
 */

export type Schema = {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  discriminator?: { propertyName: string; mapping?: Record<string, string> };
  default?: Json;
  const?: Json;
};

type Mode = 'input' | 'output';

const specUrl = new URL('../../spec/openapi-agents.json', import.meta.url);
/**
 * The spec is walked with names a client chose (keys, discriminator tags): every object of it has
 * no prototype, so `toString` or `constructor` is a name it lacks, never a function of `Object`.
 */
const withoutPrototypes = (_key: string, value: unknown) =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.assign(Object.create(null), value) : value;
const schemas: Record<string, Schema> = JSON.parse(readFileSync(specUrl, 'utf8'), withoutPrototypes).components.schemas;

/**
 * Fields the official SDK (2.73) requires in responses that the spec does not declare
 * (`x-sdk-drift` in the spec; found by parsing through the SDK's own serializers, see
 * test/wire/sdk-parse.test.ts). They are added to the response schemas with these values.
 */
const SDK_REQUIRED_IN_RESPONSES: Record<string, Record<string, Json>> = {
  'WorkflowEndNodeModel-Output': { outcome: 'success' },
  'WorkflowPhoneNumberNodeModel-Output': { sip_refer_play_dialtone: false },
  'WorkflowStandaloneAgentNodeModel-Output': { preserve_voice_settings: false },
};
/**
 * Fields upstream returns that the spec does not declare: `ban`, a per-agent platform setting
 * (upstream's versioning docs), returned as null when unset.
 */
const UNDECLARED_IN_RESPONSES: Record<string, Record<string, Schema>> = {
  AgentPlatformSettingsResponseModel: { ban: { anyOf: [{ type: 'object' }, { type: 'null' }] } },
};
for (const [name, fields] of Object.entries(UNDECLARED_IN_RESPONSES)) {
  const schema = schemas[name];
  schema.properties = Object.assign(Object.create(null), schema.properties, JSON.parse(JSON.stringify(fields), withoutPrototypes));
}
for (const [name, fields] of Object.entries(SDK_REQUIRED_IN_RESPONSES)) {
  const schema = schemas[name];
  schema.properties ??= Object.create(null) as Record<string, Schema>;
  for (const [key, value] of Object.entries(fields)) {
    schema.properties[key] = Object.assign(Object.create(null), schema.properties[key], { default: value });
  }
  schema.required = [...new Set([...(schema.required ?? []), ...Object.keys(fields)])];
}

const MAX_CONSTRUCT_DEPTH = 24;

export function fillSpecDefaults(value: JsonObject, schemaName: string, mode: Mode): JsonObject {
  const schema = schemas[schemaName];
  if (!schema) throw new Error(`unknown schema ${schemaName}`);
  return fill(value, schema, mode, 0) as JsonObject;
}

const resolved = new WeakMap<Schema, Schema>();

/** A schema with `$ref`s and single-member `allOf`s followed (memoized: the spec never changes). */
function resolve(schema: Schema): Schema {
  let found = resolved.get(schema);
  if (found === undefined) {
    found = resolveUncached(schema);
    resolved.set(schema, found);
  }
  return found;
}

function resolveUncached(schema: Schema): Schema {
  let current = schema;
  for (let hops = 0; hops < 16; hops++) {
    if (current.$ref) current = schemas[current.$ref.slice('#/components/schemas/'.length)] ?? {};
    else if (current.allOf?.length === 1) current = current.allOf[0];
    else break;
  }
  return current;
}

function nonNullBranches(schema: Schema): Schema[] | undefined {
  const branches = schema.anyOf ?? schema.oneOf;
  return branches?.filter((branch) => branch.type !== 'null');
}

function isNullable(schema: Schema): boolean {
  const branches = schema.anyOf ?? schema.oneOf;
  return !!branches?.some((branch) => branch.type === 'null');
}

/** The branch of a union that a present value belongs to, when that can be told. */
function chooseBranch(schema: Schema, value: Json): Schema | undefined {
  const branches = nonNullBranches(schema);
  if (!branches) return schema;
  if (branches.length === 1) return resolve(branches[0]);
  if (!isJsonObject(value)) return undefined;
  const discriminator = schema.discriminator;
  if (discriminator) {
    const tag = value[discriminator.propertyName];
    const ref = typeof tag === 'string' ? discriminator.mapping?.[tag] : undefined;
    if (ref) return resolve({ $ref: ref });
  }
  // No declared discriminator: pick the object branch whose `type` const or default matches.
  for (const branch of branches) {
    const resolved = resolve(branch);
    const typeProperty = resolved.properties?.type;
    if (!typeProperty) continue;
    const declared = typeProperty.const ?? typeProperty.default;
    if (declared !== undefined && declared === value.type) return resolved;
  }
  return undefined;
}

/**
 * Filled responses of stored subtrees, by the subtree object. Versions share the subtrees a commit
 * did not touch (the same objects), so rendering a new version fills only the changed path.
 */
const renderedSubtrees = new WeakMap<object, { schema: Schema; depth: number; result: Json }>();

function fill(value: Json, schema: Schema, mode: Mode, depth: number): Json {
  if (value === null) return value;
  if (mode === 'output' && typeof value === 'object') {
    const known = renderedSubtrees.get(value);
    if (known && known.schema === schema && known.depth === depth) return known.result;
    spend(1 + (Array.isArray(value) ? value.length : Object.keys(value).length));
    const result = fillUncached(value, schema, mode, depth);
    renderedSubtrees.set(value, { schema, depth, result });
    return result;
  }
  return fillUncached(value, schema, mode, depth);
}

function fillUncached(value: Json, schema: Schema, mode: Mode, depth: number): Json {
  if (value === null) return value;
  const resolved = chooseBranch(resolve(schema), value);
  if (!resolved) return value;
  if (Array.isArray(value)) {
    const items = resolved.items;
    return items ? value.map((item) => fill(item, items, mode, depth + 1)) : value;
  }
  if (!isJsonObject(value)) return value;
  if (!resolved.properties && typeof resolved.additionalProperties !== 'object') return value;

  const result: JsonObject = { ...value };
  const required = new Set(resolved.required ?? []);
  for (const [key, propertySchema] of Object.entries(resolved.properties ?? {})) {
    if (key in result) {
      result[key] = fill(result[key], propertySchema, mode, depth + 1);
      continue;
    }
    const absent = valueForAbsent(propertySchema, mode, required.has(key), depth + 1);
    if (absent !== undefined) result[key] = absent;
  }
  const extra = resolved.additionalProperties;
  if (typeof extra === 'object') {
    for (const key of Object.keys(result)) {
      if (resolved.properties && key in resolved.properties) continue;
      result[key] = fill(result[key], extra, mode, depth + 1);
    }
  }
  return result;
}

function valueForAbsent(schema: Schema, mode: Mode, required: boolean, depth: number): Json | undefined {
  const declaredDefault = schema.default ?? resolve(schema).default;
  if (declaredDefault !== undefined) return fill(structuredClone(declaredDefault), schema, mode, depth);
  if (depth > MAX_CONSTRUCT_DEPTH) return undefined;
  // Upstream (pydantic) returns every optional field, absent ones as null.
  if (isNullable(schema)) return mode === 'output' ? null : undefined;
  const resolved = resolve(schema);
  if (nonNullBranches(resolved)) return undefined; // a real union: nothing sensible to invent
  const type = Array.isArray(resolved.type) ? resolved.type[0] : resolved.type;
  if (resolved.properties) {
    const needsInput = (resolved.required ?? []).some((key) => {
      const property = resolved.properties?.[key];
      return !property || (property.default === undefined && resolve(property).default === undefined);
    });
    // Input: only what pydantic's default_factory would build. Output: whatever the SDK requires.
    if (needsInput && !(mode === 'output' && required)) return undefined;
    return fill({}, resolved, mode, depth);
  }
  if (!required || mode !== 'output') return undefined;
  if (resolved.const !== undefined) return resolved.const;
  switch (type) {
    case 'string':
      return '';
    case 'integer':
    case 'number':
      return 0;
    case 'boolean':
      return false;
    case 'array':
      return [];
    case 'object':
      return {};
    default:
      return undefined;
  }
}

const camelToSnake = (key: string) => key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);

/**
 * Renames camelCase keys to the snake_case properties the schema declares. The official SDK
 * sends some config fields untyped (`branches.create`'s and `drafts.create`'s
 * `conversationConfig` are `Record<string, unknown>`), so their keys reach the wire as written
 * in JavaScript: `firstMessage` would otherwise be kept as an unknown key beside `first_message`.
 * Where both are present, the snake_case one stands and the alias is dropped.
 */
export function normalizeAliases(value: JsonObject, schemaName: string): JsonObject {
  const schema = schemas[schemaName];
  if (!schema) throw new Error(`unknown schema ${schemaName}`);
  return normalize(value, schema, 0) as JsonObject;
}

function normalize(value: Json, schema: Schema, depth: number): Json {
  if (value === null || depth > MAX_CONSTRUCT_DEPTH * 2) return value;
  const resolved = chooseBranch(resolve(schema), value);
  if (!resolved) return value;
  if (Array.isArray(value)) {
    const items = resolved.items;
    return items ? value.map((item) => normalize(item, items, depth + 1)) : value;
  }
  if (!isJsonObject(value)) return value;
  const properties = resolved.properties ?? {};
  const result: JsonObject = {};
  for (const [key, member] of Object.entries(value)) {
    const snake = Object.hasOwn(properties, key) ? key : camelToSnake(key);
    if (snake !== key && Object.hasOwn(properties, snake)) {
      if (Object.hasOwn(value, snake)) continue;
      result[snake] = normalize(member, properties[snake], depth + 1);
    } else if (Object.hasOwn(properties, key)) {
      result[key] = normalize(member, properties[key], depth + 1);
    } else if (typeof resolved.additionalProperties === 'object') {
      result[key] = normalize(member, resolved.additionalProperties, depth + 1);
    } else {
      result[key] = member;
    }
  }
  return result;
}

/** One object level of a section's spec, for walking a patch down it (see `patchSection`). */
export interface SpecObject {
  properties: Record<string, Schema>;
  required: Set<string>;
  /** The schema of undeclared keys, when the spec gives one. */
  extra?: Schema;
}

const specObjects = new WeakMap<Schema, SpecObject>();

function specObjectOf(resolved: Schema): SpecObject {
  let found = specObjects.get(resolved);
  if (!found) {
    const extra = resolved.additionalProperties;
    found = { properties: resolved.properties ?? {}, required: new Set(resolved.required ?? []), extra: typeof extra === 'object' ? extra : undefined };
    specObjects.set(resolved, found);
  }
  return found;
}

/** A named schema as an object level. */
export function specRoot(schemaName: string): SpecObject {
  const schema = schemas[schemaName];
  if (!schema) throw new Error(`unknown schema ${schemaName}`);
  return specObjectOf(resolve(schema));
}

/** The schema of a member of an object level: its property, else the undeclared keys' schema. */
export function specMember(level: SpecObject, key: string): Schema | undefined {
  return Object.hasOwn(level.properties, key) ? level.properties[key] : level.extra;
}

/**
 * The object level a member's value is walked with, when its schema is a plain object (no union
 * but null), so that one key of it can be filled on its own.
 */
export function specObjectMember(schema: Schema | undefined): SpecObject | undefined {
  if (!schema) return undefined;
  const resolved = resolve(schema);
  const branches = nonNullBranches(resolved);
  if (branches && branches.length !== 1) return undefined;
  const object = branches ? resolve(branches[0]) : resolved;
  if (!object.properties || nonNullBranches(object)) return undefined;
  return specObjectOf(object);
}

/** What `normalizeAliases` does to a member at `depth` (the section root is depth 0). */
export function normalizeMember(value: Json, schema: Schema, depth: number): Json {
  return normalize(value, schema, depth);
}

/** What `fillSpecDefaults` (input mode) does to a present member at `depth`. */
export function fillMember(value: Json, schema: Schema, depth: number): Json {
  return fill(value, schema, 'input', depth);
}

/** What `fillSpecDefaults` (input mode) puts in place of an absent member at `depth`; undefined: nothing. */
export function absentMember(schema: Schema, required: boolean, depth: number): Json | undefined {
  return valueForAbsent(schema, 'input', required, depth);
}

/**
 * One member of a named object schema as `fillSpecDefaults` fills it there (undefined: left
 * absent), without filling the rest of the object.
 */
export function fillRootMember(schemaName: string, key: string, value: Json | undefined, mode: Mode): Json | undefined {
  const level = specRoot(schemaName);
  const schema = specMember(level, key);
  if (!schema) return value;
  return value === undefined ? valueForAbsent(schema, mode, level.required.has(key), 1) : fill(value, schema, mode, 1);
}
