import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { canonicalJson, type Json, type JsonObject, isJsonObject } from '../../src/domain/canonical-json.js';
import { applyMergePatch } from '../../src/domain/json-merge-patch.js';
import { RequestValidationError } from '../../src/errors.js';
import { type AgentConfigSections, normalizeSection, patchSection, validateAgentConfig } from '../../src/wire/agent-config.js';
import { specMember, specObjectMember, specRoot } from '../../src/wire/spec-defaults.js';
import { largeConversationConfig } from '../support/builders.js';

/**
 * `patchSection` validates only what a commit touches; it must give exactly what validating the
 * whole merged section gives (the value, or the same 422 issues).
 */

type Outcome = { ok: string } | { issues: string[] };

function outcome(run: () => JsonObject): Outcome {
  try {
    return { ok: canonicalJson(run()) };
  } catch (error) {
    if (!(error instanceof RequestValidationError)) throw error;
    return { issues: error.issues.map((issue) => JSON.stringify(issue)).sort() };
  }
}

/** Freezes a value and everything in it: a test that changes a shared fixture then throws, whatever the seed. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

// Frozen: every run reads the same stored config, so nothing may change it (not the generated
// patches, which reuse its values, nor the code under test).
const stored: AgentConfigSections = deepFreeze(validateAgentConfig(
  {
    conversation_config: largeConversationConfig(20_000) as unknown as JsonObject,
    platform_settings: { widget: { variant: 'compact' }, evaluation: { criteria: [] } },
    workflow: {},
  },
  ['body'],
));

/** Every path to an object in a value (arrays are leaves: merge patch replaces them whole). */
function objectPaths(value: Json, prefix: string[] = []): string[][] {
  if (!isJsonObject(value)) return [];
  return [prefix, ...Object.entries(value).flatMap(([key, member]) => objectPaths(member, [...prefix, key]))];
}

const camel = (key: string) => key.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());

/** Values a member may be set to: right and wrong types, removals, objects, arrays, and the values of other members. */
function leafValue(section: JsonObject): fc.Arbitrary<Json> {
  const existing = objectPaths(section).flatMap((path) => {
    let node: Json = section;
    for (const key of path) node = (node as JsonObject)[key];
    return Object.values(node as JsonObject);
  });
  return fc.oneof(
    fc.constant(null),
    fc.constant({}),
    fc.boolean(),
    fc.integer({ min: -5, max: 5000 }),
    fc.double({ min: -2, max: 2, noNaN: true }),
    fc.constantFrom('', 'en', 'webhook', 'gpt-4o', 'turbo', 'eleven_turbo_v2', 'not a number', 'x'.repeat(300)),
    fc.constantFrom(...existing),
    fc.dictionary(fc.constantFrom('type', 'name', 'id', 'voice_id', 'value', 'enabled', 'unknown_field'), fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.constant(null)), { maxKeys: 3 }),
    fc.array(fc.oneof(fc.string({ maxLength: 5 }), fc.integer()), { maxLength: 3 }),
  );
}

/** The members the spec declares at a path of a section (most are absent until set). */
function declaredMembers(schemaName: string, path: string[]): string[] {
  let level = specRoot(schemaName);
  for (const key of path) {
    const next = specObjectMember(specMember(level, key));
    if (!next) return [];
    level = next;
  }
  return Object.keys(level.properties);
}

/** A merge patch: a few changes at random depths of the section, some keys spelled in camelCase. */
function patchFor(section: JsonObject, schemaName: string): fc.Arbitrary<JsonObject> {
  const paths = objectPaths(section);
  const change = fc.constantFrom(...paths).chain((path) =>
    fc.record({
      path: fc.constant(path),
      key: fc.oneof(
        fc.constantFrom(...new Set(['brand_new_key', ...declaredMembers(schemaName, path)])),
        fc.constantFrom(...new Set(paths.flatMap((other) => other))),
      ),
      camelCase: fc.boolean(),
      value: leafValue(section),
    }),
  );
  return fc.array(change, { minLength: 1, maxLength: 4 }).map((changes) => {
    const patch: JsonObject = {};
    for (const { path, key, camelCase, value } of changes) {
      let node = patch;
      for (const step of path) {
        if (!isJsonObject(node[step])) node[step] = {};
        node = node[step] as JsonObject;
      }
      // A copy: the value may be one of the stored config's objects (or a shared constant), and a
      // later change in this patch may descend into it and set members.
      node[camelCase ? camel(key) : key] = structuredClone(value);
    }
    return patch;
  });
}

describe('patchSection', () => {
  const schemaNames = { conversation_config: 'ConversationalConfigAPIModel-Input', platform_settings: 'AgentPlatformSettingsRequestModel' };
  for (const section of ['conversation_config', 'platform_settings'] as const) {
    it(`gives what validating the whole merged ${section} gives, for random patches`, () => {
      fc.assert(
        fc.property(patchFor(stored[section], schemaNames[section]), (patch) => {
          const normalized = normalizeSection(section, patch);
          const whole = outcome(() => validateAgentConfig({ ...stored, [section]: applyMergePatch(stored[section], normalized) as JsonObject }, ['body'])[section]);
          const patched = outcome(() => patchSection(section, stored[section], normalized, ['body']));
          expect(patched).toEqual(whole);
        }),
        { numRuns: 300 },
      );
    });
  }

  it('keeps the subtrees a patch does not touch (the same objects, so their encoding can be reused)', () => {
    const current = stored.conversation_config;
    const next = patchSection('conversation_config', current, { agent: { prompt: { temperature: 0.9 } } }, ['body']);
    expect(next.tts).toBe(current.tts);
    const prompt = (next.agent as JsonObject).prompt as JsonObject;
    expect(prompt.temperature).toBe(0.9);
    expect(prompt.tools).toBe(((current.agent as JsonObject).prompt as JsonObject).tools);
  });

  it('reports a wrong type at its loc', () => {
    expect(() => patchSection('conversation_config', stored.conversation_config, { agent: { prompt: { temperature: 'hot' } } }, ['body'])).toThrow(RequestValidationError);
    const result = outcome(() => patchSection('conversation_config', stored.conversation_config, { agent: { prompt: { temperature: 'hot' } } }, ['body']));
    expect('issues' in result && JSON.parse(result.issues[0]).loc).toEqual(['body', 'conversation_config', 'agent', 'prompt', 'temperature']);
  });
});
