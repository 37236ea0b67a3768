import type { Json, JsonObject } from '../../domain/canonical-json.js';
import { deepEqual, isJsonObject } from '../../domain/canonical-json.js';
import { renderSection } from '../../wire/agent-config.js';
import { MAX_AGENT_NAME } from '../../wire/request-bodies.js';

/**
 * What a version holds: the versioned sections of the config plus the name and tags as
 * committed on its branch (they reach the agent itself when committed or merged to main).
 */
export interface AgentDocument extends JsonObject {
  conversation_config: JsonObject;
  platform_settings: JsonObject;
  workflow: JsonObject;
  name: string;
  tags: string[];
}


const COPY_SUFFIX = ' (copy)';

/**
 * The name of a copy made without one: "<name> (copy)", the name shortened to keep it within
 * `MAX_AGENT_NAME`, never in the middle of a character (a lone surrogate is refused as a name).
 */
export function copyNameOf(name: string): string {
  let kept = name.slice(0, MAX_AGENT_NAME - COPY_SUFFIX.length);
  if (kept.length < name.length && /[\uD800-\uDBFF]$/.test(kept)) kept = kept.slice(0, -1);
  return `${kept}${COPY_SUFFIX}`;
}

/**
 * Parts of `platform_settings` that belong to the agent, not to a version (upstream's
 * versioning docs: auth, call_limits, privacy, ban; `archived` is the agent's own flag).
 */
export const PER_AGENT_SETTINGS = ['auth', 'call_limits', 'privacy', 'ban', 'archived'] as const;

export function splitPlatformSettings(settings: JsonObject): { versioned: JsonObject; perAgent: JsonObject } {
  const versioned: JsonObject = {};
  const perAgent: JsonObject = {};
  for (const [key, value] of Object.entries(settings)) {
    if ((PER_AGENT_SETTINGS as readonly string[]).includes(key)) perAgent[key] = value;
    else versioned[key] = value;
  }
  return { versioned, perAgent };
}

export function voiceIdOf(document: AgentDocument): string {
  const tts = document.conversation_config.tts;
  const voiceId: Json | undefined = isJsonObject(tts) ? tts.voice_id : undefined;
  return typeof voiceId === 'string' ? voiceId : '';
}

/**
 * A document as reads show it: every section with its defaults filled. A stored document may lack
 * defaults that a read fills in (it was written before they existed, or without them), so "did
 * anything change" is asked of this form: what a client cannot see is no change.
 */
export function visibleDocument(document: AgentDocument): AgentDocument {
  return {
    conversation_config: renderSection('conversation_config', document.conversation_config),
    platform_settings: renderSection('platform_settings', document.platform_settings),
    workflow: renderSection('workflow', document.workflow),
    name: document.name,
    tags: document.tags,
  };
}

/**
 * Whether two documents read the same. Cheap for a commit: sections the commit did not touch are
 * the same objects, whose rendering is cached (spec-defaults), so only the changed path is compared.
 */
export function sameVisibleDocument(a: AgentDocument, b: AgentDocument): boolean {
  return deepEqual(visibleDocument(a), visibleDocument(b));
}
