import type { JsonObject } from '../../domain/canonical-json.js';
import { type AgentConfigSections, normalizeSection, patchSection, validateAgentConfig } from '../../wire/agent-config.js';
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
 * replaced. The result is what validating it as a whole against upstream's request schemas
 * with defaults filled gives (so a removed key gets its default back), but only what the body
 * touches is checked: `current` is a stored document, valid and filled. The per-agent parts of
 * `platform_settings` come back separately: they are not versioned.
 */
export function applyConfigChanges(current: ChangedConfig, sent: ConfigChanges): ChangedConfig {
  const platformSettings = { ...current.document.platform_settings, ...current.agentSettings };
  const conversationConfig = sent.conversation_config
    ? patchSection('conversation_config', current.document.conversation_config, normalizeSection('conversation_config', sent.conversation_config), ['body'])
    : current.document.conversation_config;
  const patchedSettings = sent.platform_settings
    ? patchSection('platform_settings', platformSettings, normalizeSection('platform_settings', sent.platform_settings), ['body'])
    : platformSettings;
  const workflow = sent.workflow
    ? validateAgentConfig({ conversation_config: {}, platform_settings: {}, workflow: normalizeSection('workflow', sent.workflow) }, ['body']).workflow
    : current.document.workflow;
  return withConfig(current.document, sent, { conversation_config: conversationConfig, platform_settings: patchedSettings, workflow });
}

/** A brand-new config from a create body: every section validated whole, defaults filled. */
export function newConfig(sent: ConfigChanges): ChangedConfig {
  const normalized = (section: 'conversation_config' | 'platform_settings' | 'workflow') => {
    const value = sent[section];
    return value ? normalizeSection(section, value) : {};
  };
  const sections = validateAgentConfig(
    { conversation_config: normalized('conversation_config'), platform_settings: normalized('platform_settings'), workflow: normalized('workflow') },
    ['body'],
  );
  return withConfig({ conversation_config: {}, platform_settings: {}, workflow: {}, name: '', tags: [] }, sent, sections);
}

function withConfig(current: AgentDocument, sent: ConfigChanges, sections: AgentConfigSections): ChangedConfig {
  const { versioned, perAgent } = splitPlatformSettings(sections.platform_settings);
  return {
    document: {
      conversation_config: sections.conversation_config,
      platform_settings: versioned,
      workflow: sections.workflow,
      name: sent.name ?? current.name,
      tags: sent.tags ?? current.tags,
    },
    agentSettings: perAgent,
  };
}
