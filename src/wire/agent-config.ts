import type * as z from 'zod';

import { type Json, type JsonObject, isJsonObject, setMember } from '../domain/canonical-json.js';
import { applyMergePatch } from '../domain/json-merge-patch.js';
import { CONFIG_SECTION_NAMES, type ConfigSectionName } from '../domain/sections.js';
import { RequestValidationError } from '../errors.js';
import {
  zAgentPlatformSettingsRequestModel,
  zAgentWorkflowRequestModel,
  zConversationalConfigApiModelInput,
} from './generated/zod.gen.js';
import {
  absentMember,
  fillMember,
  fillRootMember,
  fillSpecDefaults,
  normalizeAliases,
  normalizeMember,
  type SpecObject,
  specMember,
  specObjectMember,
  specRoot,
} from './spec-defaults.js';

/** The upstream config sections of an agent config (domain/sections.ts), as upstream names them. */
export type AgentConfigSections = Record<ConfigSectionName, JsonObject>;

/** Upstream's schemas of each config section: its request schema (zod and spec) and its response spec. */
const SECTION_SCHEMAS: Record<ConfigSectionName, { zod: z.ZodType; input: string; output: string }> = {
  conversation_config: { zod: zConversationalConfigApiModelInput, input: 'ConversationalConfigAPIModel-Input', output: 'ConversationalConfigAPIModel-Output' },
  platform_settings: { zod: zAgentPlatformSettingsRequestModel, input: 'AgentPlatformSettingsRequestModel', output: 'AgentPlatformSettingsResponseModel' },
  workflow: { zod: zAgentWorkflowRequestModel, input: 'AgentWorkflowRequestModel', output: 'AgentWorkflowResponseModel' },
};

type Issue = { loc: (string | number)[]; msg: string; type: string };

/**
 * Validates a whole config against upstream's request schemas and fills every declared
 * default, as upstream stores it. A problem is a 422 whose `loc` is `[...locPrefix, section,
 * ...path]`, e.g. `["body", "conversation_config", "agent", "prompt", "temperature"]`.
 */
export function validateAgentConfig(config: AgentConfigSections, locPrefix: (string | number)[]): AgentConfigSections {
  const issues: Issue[] = [];
  const result = {} as AgentConfigSections;
  for (const section of CONFIG_SECTION_NAMES) {
    const filled = checkSection(section, config[section], locPrefix, issues);
    if (filled) result[section] = filled;
  }
  if (issues.length > 0) throw new RequestValidationError(issues);
  return result;
}

/** One section of a config as `validateAgentConfig` checks and fills it (a workflow sent whole). */
export function validateSection(section: ConfigSectionName, value: JsonObject, locPrefix: (string | number)[]): JsonObject {
  const issues: Issue[] = [];
  const filled = checkSection(section, value, locPrefix, issues);
  if (issues.length > 0) throw new RequestValidationError(issues);
  return filled!;
}

function checkSection(section: ConfigSectionName, value: JsonObject, locPrefix: (string | number)[], issues: Issue[]): JsonObject | undefined {
  const schema = schemaOf(section);
  const parsed = schema.zod.safeParse(normalizeAliases(value, schema.input));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      issues.push({ loc: [...locPrefix, section, ...issue.path.map(pathSegment)], msg: issue.message, type: issue.code });
    }
    return undefined;
  }
  return fillSpecDefaults(parsed.data as JsonObject, schema.input, 'input');
}

function schemaOf(section: ConfigSectionName) {
  if (!Object.hasOwn(SECTION_SCHEMAS, section)) throw new Error(`unknown section ${section}`);
  return SECTION_SCHEMAS[section];
}

/**
 * A section of a commit or create body with camelCase aliases renamed to the real fields, so that
 * it can be merged into a stored config (see `normalizeAliases`). Nulls (removals) are kept.
 */
export function normalizeSection(section: ConfigSectionName, value: JsonObject): JsonObject {
  const schema = schemaOf(section);
  return normalizeAliases(value, schema.input);
}

/** Fills what the SDK's response schemas require, for configs stored before a default existed. */
export function renderSection(section: ConfigSectionName, value: JsonObject): JsonObject {
  const schema = schemaOf(section);
  return fillSpecDefaults(value, schema.output, 'output');
}

/** One member of a section as `renderSection` shows it (undefined: absent), the rest unfilled. */
export function renderSectionMember(section: ConfigSectionName, key: string, value: Json | undefined): Json | undefined {
  const schema = schemaOf(section);
  return fillRootMember(schema.output, key, value, 'output');
}

/**
 * Applies a merge patch (aliases already normalized) to a section that is valid and filled,
 * validating and filling only what the patch touches: a one-field commit to a 20 KB config does
 * not re-check the other 20 KB. The result equals validating the merged section whole with
 * `validateAgentConfig` (test/wire/patch-section.test.ts holds it to that). Untouched subtrees
 * are the current section's own objects, so encoding the result can reuse their hashes.
 */
export function patchSection(section: ConfigSectionName, current: JsonObject, patch: JsonObject, locPrefix: (string | number)[]): JsonObject {
  const schema = schemaOf(section);
  const issues: Issue[] = [];
  const result = patchObject(current, patch, plainObject(schema.zod)!, specRoot(schema.input), [...locPrefix, section], 0, issues);
  if (issues.length > 0) throw new RequestValidationError(issues);
  return result;
}

/** A zod object's members and whether it keeps undeclared keys. */
type ZodObjectLevel = { shape: Record<string, z.ZodType> };

/** The object schema under optional/nullable/default/lazy wrappers, if that is what it is. */
function plainObject(schema: z.ZodType | undefined): ZodObjectLevel | undefined {
  let current = schema as { _zod: { def: Record<string, any> } } | undefined;
  for (let hops = 0; current && hops < 8; hops++) {
    const def = current._zod.def;
    switch (def.type) {
      case 'object':
        // Only objects that pass undeclared keys through unchecked (the generated loose objects).
        return def.catchall?._zod.def.type === 'unknown' ? { shape: def.shape } : undefined;
      case 'optional':
      case 'nullable':
      case 'default':
        current = def.innerType;
        break;
      case 'lazy':
        current = def.getter();
        break;
      default:
        return undefined;
    }
  }
  return undefined;
}

function patchObject(
  current: JsonObject,
  patch: JsonObject,
  zodLevel: ZodObjectLevel,
  specLevel: SpecObject,
  loc: (string | number)[],
  depth: number,
  issues: Issue[],
): JsonObject {
  const result: JsonObject = { ...current };
  for (const key of Object.keys(patch)) {
    const change = patch[key];
    const memberZod = Object.hasOwn(zodLevel.shape, key) ? zodLevel.shape[key] : undefined;
    const memberSpec = specMember(specLevel, key);
    const present = Object.hasOwn(current, key) ? current[key] : undefined;
    if (isJsonObject(change) && isJsonObject(present)) {
      const zodChild = plainObject(memberZod);
      const specChild = memberZod ? specObjectMember(memberSpec) : undefined;
      if (zodChild && specChild) {
        setMember(result, key, patchObject(present, change, zodChild, specChild, [...loc, key], depth + 1, issues));
        continue;
      }
    }
    // Anything else (a scalar, an array, a union, a removal) is checked whole, as a member.
    const merged = change === null ? undefined : applyMergePatch(present, change);
    const value = validateMember(merged, memberZod, memberSpec, specLevel.required.has(key), [...loc, key], depth + 1, issues);
    if (value === undefined) delete result[key];
    else setMember(result, key, value);
  }
  return result;
}

/** One member of an object as the whole-section validation treats it: normalize, parse, fill. */
function validateMember(
  value: Json | undefined,
  memberZod: z.ZodType | undefined,
  memberSpec: Parameters<typeof fillMember>[1] | undefined,
  required: boolean,
  loc: (string | number)[],
  depth: number,
  issues: Issue[],
): Json | undefined {
  const normalized = value !== undefined && memberSpec ? normalizeMember(value, memberSpec, depth) : value;
  let parsed: Json | undefined = normalized;
  if (memberZod) {
    const result = memberZod.safeParse(normalized);
    if (!result.success) {
      for (const issue of result.error.issues) issues.push({ loc: [...loc, ...issue.path.map(pathSegment)], msg: issue.message, type: issue.code });
      return undefined;
    }
    parsed = result.data as Json | undefined;
  }
  if (!memberSpec) return parsed;
  return parsed === undefined ? absentMember(memberSpec, required, depth) : fillMember(parsed, memberSpec, depth);
}

function pathSegment(segment: PropertyKey): string | number {
  return typeof segment === 'symbol' ? String(segment) : segment;
}
