import { createRequire } from 'node:module';

import { describe, expect, it } from 'vitest';

import type { JsonObject } from '../../src/domain/canonical-json.js';
import { renderSection, validateAgentConfig } from '../../src/wire/agent-config.js';
import { fillSpecDefaults } from '../../src/wire/spec-defaults.js';

// The SDK's own deserializers, as it runs them on every response.
const require = createRequire(import.meta.url);
const serializers = require('@elevenlabs/elevenlabs-js/serialization/index.js') as Record<
  string,
  { parse(raw: unknown, options: object): { ok: boolean; errors?: { path: string[]; message: string }[] } }
>;
const STRICT = { unrecognizedObjectKeys: 'passthrough', allowUnrecognizedUnionMembers: true, allowUnrecognizedEnumValues: true };

function parseWithSdk(type: string, value: unknown) {
  const result = serializers[type].parse(value, STRICT);
  return result.ok ? [] : (result.errors ?? []).map((error) => `${error.path.join('.')}: ${error.message}`);
}

/** The smallest valid node of every workflow node type the spec knows. */
const MINIMAL_NODES: Record<string, JsonObject> = {
  start: { type: 'start' },
  end: { type: 'end' },
  phone_number: { type: 'phone_number', transfer_destination: { type: 'phone', phone_number: '+15550100' } },
  override_agent: { type: 'override_agent', label: 'Billing' },
  standalone_agent: { type: 'standalone_agent', agent_id: 'agent_other' },
  tool: { type: 'tool' },
};

function agentResponse(sections: { conversation_config: JsonObject; platform_settings: JsonObject; workflow: JsonObject }) {
  return {
    agent_id: 'agent_x',
    name: 'x',
    tags: [],
    metadata: { created_at_unix_secs: 1, updated_at_unix_secs: 1 },
    conversation_config: renderSection('conversation_config', sections.conversation_config),
    platform_settings: renderSection('platform_settings', sections.platform_settings),
    workflow: renderSection('workflow', sections.workflow),
  };
}

describe('stored configs parse through the official SDK', () => {
  it('an agent created from an empty config', () => {
    const sections = validateAgentConfig({ conversation_config: {}, platform_settings: {}, workflow: {} }, ['body']);
    expect(parseWithSdk('GetAgentResponseModel', agentResponse(sections))).toEqual([]);
  });

  it('a workflow with one node of every type and an edge', () => {
    const nodes: JsonObject = {};
    for (const [type, node] of Object.entries(MINIMAL_NODES)) nodes[`node_${type}`] = node;
    const workflow = {
      nodes,
      edges: { e1: { source: 'node_start', target: 'node_end' } },
    };
    const sections = validateAgentConfig({ conversation_config: {}, platform_settings: {}, workflow }, ['body']);
    expect(parseWithSdk('GetAgentResponseModel', agentResponse(sections))).toEqual([]);
  });

  it('a config whose optional sections were removed after it was stored', () => {
    // A merge patch with null removes a key; reads must still satisfy the SDK.
    const workflow = { nodes: { start: { type: 'start' }, end: { type: 'end' } }, edges: {} };
    expect(parseWithSdk('GetAgentResponseModel', agentResponse({ conversation_config: {}, platform_settings: {}, workflow }))).toEqual([]);
  });

  it('the response schemas where the SDK and the spec drift, filled from nothing', () => {
    for (const [spec, sdk, stored] of [
      ['WorkflowEndNodeModel-Output', 'WorkflowEndNodeModelOutput', {}],
      ['WorkflowPhoneNumberNodeModel-Output', 'WorkflowPhoneNumberNodeModelOutput', MINIMAL_NODES.phone_number],
      ['WorkflowStandaloneAgentNodeModel-Output', 'WorkflowStandaloneAgentNodeModelOutput', {}],
      ['ConversationalConfigAPIModel-Output', 'ConversationalConfig', {}],
      ['AgentPlatformSettingsResponseModel', 'AgentPlatformSettingsResponseModel', {}],
    ] as const) {
      expect(parseWithSdk(sdk, fillSpecDefaults({ ...stored }, spec, 'output')), spec).toEqual([]);
    }
  });
});

describe('camelCase aliases from the SDK\'s untyped fields', () => {
  it('become the snake_case fields the schema declares, at any depth, without touching unknown keys', async () => {
    const { normalizeAliases } = await import('../../src/wire/spec-defaults.js');
    const normalized = normalizeAliases(
      { agent: { firstMessage: 'hi', prompt: { maxTokens: 10, customThing: 1 } }, tts: { voiceId: 'v' }, futureSection: { camelKey: 1 } },
      'ConversationalConfigAPIModel-Input',
    );
    expect(normalized).toEqual({
      agent: { first_message: 'hi', prompt: { max_tokens: 10, customThing: 1 } },
      tts: { voice_id: 'v' },
      futureSection: { camelKey: 1 },
    });
    // The real field wins over its alias.
    expect(normalizeAliases({ agent: { first_message: 'real', firstMessage: 'alias' } }, 'ConversationalConfigAPIModel-Input')).toEqual({
      agent: { first_message: 'real' },
    });
  });
});
