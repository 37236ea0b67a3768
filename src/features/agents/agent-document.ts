import type { Json, JsonObject } from '../../domain/canonical-json.js';
import { deepEqual, isJsonObject } from '../../domain/canonical-json.js';
import { type ConfigSectionName, SECTION_NAMES, type SectionName } from '../../domain/sections.js';
import { renderSection } from '../../wire/agent-config.js';
import { MAX_AGENT_NAME } from '../../wire/request-bodies.js';

/**
 * What a version holds: the sections of domain/sections.ts, that is the versioned sections of the
 * config plus the name and tags as committed on its branch (they reach the agent itself when
 * committed or merged to main).
 */
export interface AgentDocument extends JsonObject, Record<ConfigSectionName, JsonObject> {
  name: string;
  tags: string[];
  /**
   * Procedure id → procedure version id. Documents written before procedures existed lack it:
   * read it through `proceduresOf`, which gives `{}` for them.
   */
  procedures: ProcedureMap;
}

/** An agent version's procedures: procedure id → procedure version id (src/features/procedures). */
export type ProcedureMap = Record<string, string>;

/** The document's procedures (`{}` when it has none). */
export function proceduresOf(document: AgentDocument): ProcedureMap {
  const map = document.procedures;
  return isJsonObject(map) ? (map as ProcedureMap) : {};
}

/** The document with `procedures` as its map. */
export function withProcedures(document: AgentDocument, procedures: ProcedureMap): AgentDocument {
  return { ...document, procedures };
}

/** What merge, diff and reads do with one section of a document (its facts: domain/sections.ts). */
interface DocumentSection {
  /** Its part of an empty document (a new agent's start, the base of histories with no common ancestor). */
  empty(): Partial<AgentDocument>;
  /** Its value as merge and diff walk it: the paths of conflicts and changes are relative to it. */
  valueOf(document: AgentDocument): Json;
  /** Its part of a document from its merged value (undefined: absent); what the merge left out is the target's. */
  fromMerged(value: Json | undefined, target: AgentDocument): Partial<AgentDocument>;
  /** Its part of a document as reads show it (defaults filled): what the no-op comparison and the diff compare. */
  visible(document: AgentDocument): Partial<AgentDocument>;
}

/** An upstream config section: an object, merged and diffed path by path, shown with upstream's defaults. */
function configSection(section: ConfigSectionName): DocumentSection {
  return {
    empty: () => ({ [section]: {} }),
    valueOf: (document) => document[section],
    fromMerged: (value) => ({ [section]: (value ?? {}) as JsonObject }),
    visible: (document) => ({ [section]: renderSection(section, document[section]) }),
  };
}

/** The branch-level name and tags, merged as one object `{name, tags}` (conflict paths `name`, `tags`). */
const agentSection: DocumentSection = {
  empty: () => ({ name: '', tags: [] }),
  valueOf: (document) => ({ name: document.name, tags: document.tags }),
  fromMerged: (value, target) => {
    const identity = (value ?? {}) as JsonObject;
    return {
      name: typeof identity.name === 'string' ? identity.name : target.name,
      tags: Array.isArray(identity.tags) ? (identity.tags as string[]) : target.tags,
    };
  },
  visible: (document) => ({ name: document.name, tags: document.tags }),
};

/** Procedure id → version id, merged and diffed id by id (conflict and change paths: the procedure id). */
const proceduresSection: DocumentSection = {
  empty: () => ({ procedures: {} }),
  valueOf: (document) => proceduresOf(document),
  fromMerged: (value) => {
    const map: ProcedureMap = {};
    for (const [id, versionId] of Object.entries(isJsonObject(value) ? value : {})) if (typeof versionId === 'string') map[id] = versionId;
    return { procedures: map };
  },
  visible: (document) => ({ procedures: proceduresOf(document) }),
};

/** Each section's behaviour, by its name in domain/sections.ts (the type asks for every one). */
const DOCUMENT_SECTIONS: Record<SectionName, DocumentSection> = {
  conversation_config: configSection('conversation_config'),
  platform_settings: configSection('platform_settings'),
  workflow: configSection('workflow'),
  agent: agentSection,
  procedures: proceduresSection,
};

function documentOf(parts: (section: DocumentSection, name: SectionName) => Partial<AgentDocument>): AgentDocument {
  return Object.assign({}, ...SECTION_NAMES.map((name) => parts(DOCUMENT_SECTIONS[name], name))) as AgentDocument;
}

/** A document with every section empty. */
export function emptyDocument(): AgentDocument {
  return documentOf((section) => section.empty());
}

/** A section's value as merge and diff walk it. */
export function sectionValue(document: AgentDocument, section: SectionName): Json {
  return DOCUMENT_SECTIONS[section].valueOf(document);
}

/** The document that merged section values make; a section the merge left out is the target's. */
export function documentFromMerged(values: Record<SectionName, Json | undefined>, target: AgentDocument): AgentDocument {
  return documentOf((section, name) => section.fromMerged(values[name], target));
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
  return documentOf((section) => section.visible(document));
}

/**
 * A config section as a read of the agent shows it: defaults filled, and `platform_settings` with
 * the agent's own (unversioned) settings in it.
 */
export function renderedSection(section: ConfigSectionName, document: AgentDocument, agentSettings: () => JsonObject): JsonObject {
  return renderSection(section, section === 'platform_settings' ? { ...document.platform_settings, ...agentSettings() } : document[section]);
}

/**
 * Whether two documents read the same. Cheap for a commit: sections the commit did not touch are
 * the same objects, whose rendering is cached (spec-defaults), so only the changed path is compared.
 */
export function sameVisibleDocument(a: AgentDocument, b: AgentDocument): boolean {
  return deepEqual(visibleDocument(a), visibleDocument(b));
}
