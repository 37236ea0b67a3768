import type * as z from 'zod';

import type { JsonObject } from '../domain/canonical-json.js';
import { RequestValidationError } from '../http/errors.js';
import {
  zAgentPlatformSettingsRequestModel,
  zAgentWorkflowRequestModel,
  zConversationalConfigApiModelInput,
} from './generated/zod.gen.js';
import { fillSpecDefaults, normalizeAliases } from './spec-defaults.js';

/** The three versioned sections of an agent config, as upstream names them. */
export interface AgentConfigSections {
  conversation_config: JsonObject;
  platform_settings: JsonObject;
  workflow: JsonObject;
}

const SECTIONS = [
  { key: 'conversation_config', zod: zConversationalConfigApiModelInput, input: 'ConversationalConfigAPIModel-Input', output: 'ConversationalConfigAPIModel-Output' },
  { key: 'platform_settings', zod: zAgentPlatformSettingsRequestModel, input: 'AgentPlatformSettingsRequestModel', output: 'AgentPlatformSettingsResponseModel' },
  { key: 'workflow', zod: zAgentWorkflowRequestModel, input: 'AgentWorkflowRequestModel', output: 'AgentWorkflowResponseModel' },
] as const;

/**
 * Validates a whole config against upstream's request schemas and fills every declared
 * default, as upstream stores it. A problem is a 422 whose `loc` is `[...locPrefix, section,
 * ...path]`, e.g. `["body", "conversation_config", "agent", "prompt", "temperature"]`.
 */
export function validateAgentConfig(config: AgentConfigSections, locPrefix: (string | number)[]): AgentConfigSections {
  const issues: { loc: (string | number)[]; msg: string; type: string }[] = [];
  const result = {} as Record<keyof AgentConfigSections, JsonObject>;
  for (const section of SECTIONS) {
    const parsed = (section.zod as z.ZodType).safeParse(normalizeAliases(config[section.key], section.input));
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        issues.push({ loc: [...locPrefix, section.key, ...issue.path.map(pathSegment)], msg: issue.message, type: issue.code });
      }
      continue;
    }
    result[section.key] = fillSpecDefaults(parsed.data as JsonObject, section.input, 'input');
  }
  if (issues.length > 0) throw new RequestValidationError(issues);
  return result;
}

/**
 * A section of a commit or create body with camelCase aliases renamed to the real fields, so that
 * it can be merged into a stored config (see `normalizeAliases`). Nulls (removals) are kept.
 */
export function normalizeSection(section: keyof AgentConfigSections, value: JsonObject): JsonObject {
  const schema = SECTIONS.find((candidate) => candidate.key === section);
  if (!schema) throw new Error(`unknown section ${section}`);
  return normalizeAliases(value, schema.input);
}

/** Fills what the SDK's response schemas require, for configs stored before a default existed. */
export function renderSection(section: keyof AgentConfigSections, value: JsonObject): JsonObject {
  const schema = SECTIONS.find((candidate) => candidate.key === section);
  if (!schema) throw new Error(`unknown section ${section}`);
  return fillSpecDefaults(value, schema.output, 'output');
}

function pathSegment(segment: PropertyKey): string | number {
  return typeof segment === 'symbol' ? String(segment) : segment;
}
