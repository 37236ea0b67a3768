import type { JsonObject } from '../../domain/canonical-json.js';
import { CONFIG_SECTION_NAMES, type ConfigSectionName, configSectionsOf } from '../../domain/sections.js';
import { type AgentConfigSections, normalizeSection, patchSection, validateAgentConfig, validateSection } from '../../wire/agent-config.js';
import { type AgentDocument, emptyDocument, proceduresOf, splitPlatformSettings } from './agent-document.js';

/** The config part of a commit, branch creation or create body, as sent (nullish = not sent). */
export interface ConfigChanges extends Partial<Record<ConfigSectionName, JsonObject | null>> {
  name?: string | null;
  tags?: string[] | null;
}

export interface ChangedConfig {
  document: AgentDocument;
  agentSettings: JsonObject;
}

/** How a commit changes each config section (decisions.md D4): a JSON Merge Patch, or replaced whole. */
const ON_COMMIT: Record<ConfigSectionName, 'merge_patch' | 'replace'> = {
  conversation_config: 'merge_patch',
  platform_settings: 'merge_patch',
  // One graph: a node deleted from a pushed file must go.
  workflow: 'replace',
};

/**
 * Applies a commit body to a version's document (decisions.md D4): JSON Merge Patch for
 * `conversation_config` and `platform_settings`, `workflow` replaced whole, `name`/`tags`
 * replaced. The result is what validating it as a whole against upstream's request schemas
 * with defaults filled gives (so a removed key gets its default back), but only what the body
 * touches is checked: `current` is a stored document, valid and filled. The per-agent parts of
 * `platform_settings` come back separately: they are not versioned.
 */
export function applyConfigChanges(current: ChangedConfig, sent: ConfigChanges): ChangedConfig {
  const stored: AgentConfigSections = {
    ...configSectionsOf(current.document),
    platform_settings: { ...current.document.platform_settings, ...current.agentSettings },
  };
  const sections = {} as AgentConfigSections;
  for (const section of CONFIG_SECTION_NAMES) {
    const value = sent[section];
    if (!value) sections[section] = stored[section];
    else if (ON_COMMIT[section] === 'merge_patch') sections[section] = patchSection(section, stored[section], normalizeSection(section, value), ['body']);
    else sections[section] = validateSection(section, normalizeSection(section, value), ['body']);
  }
  return withConfig(current.document, sent, sections);
}

/** A brand-new config from a create body: every section validated whole, defaults filled. */
export function newConfig(sent: ConfigChanges): ChangedConfig {
  const normalized = {} as AgentConfigSections;
  for (const section of CONFIG_SECTION_NAMES) {
    const value = sent[section];
    normalized[section] = value ? normalizeSection(section, value) : {};
  }
  return withConfig(emptyDocument(), sent, validateAgentConfig(normalized, ['body']));
}

function withConfig(current: AgentDocument, sent: ConfigChanges, sections: AgentConfigSections): ChangedConfig {
  const { versioned, perAgent } = splitPlatformSettings(sections.platform_settings);
  return {
    document: {
      ...sections,
      platform_settings: versioned,
      name: sent.name ?? current.name,
      tags: sent.tags ?? current.tags,
      // Procedures are published by the procedures slice; a config change keeps them.
      procedures: proceduresOf(current),
    },
    agentSettings: perAgent,
  };
}
