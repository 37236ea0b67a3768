import type { Json, JsonObject } from '../../domain/canonical-json.js';
import { applyMergePatch } from '../../domain/json-merge-patch.js';
import { normalizeSection, validateAgentConfig } from '../../wire/agent-config.js';
import { type AgentDocument, splitPlatformSettings } from './agent-document.js';

/** The config part of a commit, branch creation or create body, as sent (nullish = not sent). */
export interface ConfigChanges {
  conversation_config?: JsonObject | null;
  platform_settings?: JsonObject | null;
  workflow?: JsonObject | null;
  name?: string | null;
  tags?: string[] | null;
}

export interface ChangedConfig {
  document: AgentDocument;
  agentSettings: JsonObject;
}

/**
 * Applies a commit body to a version's document (DESIGN §5): JSON Merge Patch for
 * `conversation_config` and `platform_settings`, `workflow` replaced whole, `name`/`tags`
 * replaced. The result is validated as a whole against upstream's request schemas with
 * defaults filled, so a removed key gets its default back. The per-agent parts of
 * `platform_settings` come back separately: they are not versioned.
 */
export function applyConfigChanges(current: ChangedConfig, sent: ConfigChanges): ChangedConfig {
  // camelCase aliases in the sent sections become the real fields before merging, so they win.
  const changes: ConfigChanges = {
    ...sent,
    conversation_config: sent.conversation_config ? normalizeSection('conversation_config', sent.conversation_config) : sent.conversation_config,
    platform_settings: sent.platform_settings ? normalizeSection('platform_settings', sent.platform_settings) : sent.platform_settings,
    workflow: sent.workflow ? normalizeSection('workflow', sent.workflow) : sent.workflow,
  };
  const platformSettings = changes.platform_settings
    ? (applyMergePatch({ ...current.document.platform_settings, ...current.agentSettings }, changes.platform_settings) as JsonObject)
    : { ...current.document.platform_settings, ...current.agentSettings };
  const sections = validateAgentConfig(
    {
      conversation_config: changes.conversation_config
        ? (applyMergePatch(current.document.conversation_config, changes.conversation_config as Json) as JsonObject)
        : current.document.conversation_config,
      platform_settings: platformSettings,
      workflow: changes.workflow ?? current.document.workflow,
    },
    ['body'],
  );
  const { versioned, perAgent } = splitPlatformSettings(sections.platform_settings);
  return {
    document: {
      conversation_config: sections.conversation_config,
      platform_settings: versioned,
      workflow: sections.workflow,
      name: changes.name ?? current.document.name,
      tags: changes.tags ?? current.document.tags,
    },
    agentSettings: perAgent,
  };
}

/** A brand-new config from a create body: every section validated, defaults filled. */
export function newConfig(changes: ConfigChanges): ChangedConfig {
  return applyConfigChanges(
    {
      document: { conversation_config: {}, platform_settings: {}, workflow: {}, name: '', tags: [] },
      agentSettings: {},
    },
    changes,
  );
}
