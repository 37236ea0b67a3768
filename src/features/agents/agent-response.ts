import { createHash } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';

import { withinBudgetOr } from '../../compute/offload.js';
import type { JsonObject } from '../../domain/canonical-json.js';
import { LruCache } from '../../domain/lru.js';
import { CONFIG_SECTION_NAMES, type ConfigSectionName } from '../../domain/sections.js';
import type { AccessInfo } from '../workspaces/user-directory.js';
import { type AgentDocument, renderedSection } from './agent-document.js';
import type { AgentRow } from './agents.store.js';

/**
 * Serialized config sections, by document hash (and per-agent settings for
 * platform_settings). Versions never change, so an entry is valid for as long as it is kept.
 */
export type SectionCache = LruCache<string, string>;

function cachedSection(sections: SectionCache, key: string, build: () => JsonObject): string {
  let text = sections.get(key);
  if (text === undefined) {
    text = JSON.stringify(build());
    sections.set(key, text);
  }
  return text;
}

export interface AgentView {
  agent: AgentRow;
  /** Null for a preview of a version that does not exist yet. */
  versionId: string | null;
  branchId: string;
  documentHash: string;
  document: AgentDocument;
  access: AccessInfo;
  /** Show the document's name and tags even on main (a preview of a merge into main). */
  documentIdentity?: boolean;
  /**
   * The document's procedures as upstream's `ProcedureRefResponseModel`s, by procedure id
   * (procedure-sets.ts `procedureRefs`). Immutable for a version, as the rest of the view.
   */
  procedures: Record<string, JsonObject>;
}

/** Where the cache keeps the view's sections. */
function sectionKeys(view: AgentView): Record<ConfigSectionName, string> {
  const settingsKey = createHash('sha1').update(view.agent.agent_settings).digest('base64url');
  // platform_settings shows the agent's own settings too (`renderedSection`).
  const keyOf = (section: ConfigSectionName) => (section === 'platform_settings' ? `${section}:${view.documentHash}:${settingsKey}` : `${section}:${view.documentHash}`);
  return Object.fromEntries(CONFIG_SECTION_NAMES.map((section) => [section, keyOf(section)])) as Record<ConfigSectionName, string>;
}

/**
 * Upstream's `GetAgentResponseModel`, as JSON text: the large sections come pre-serialized
 * from the cache and only the small per-request parts are stringified. The sections of a large
 * document that the cache lacks are rendered in a compute worker, off the event loop.
 */
export async function renderAgentResponse(sections: SectionCache, view: AgentView): Promise<string> {
  const { agent, document } = view;
  const keys = sectionKeys(view);
  const agentSettings = (): JsonObject => JSON.parse(agent.agent_settings) as JsonObject;
  const renderHere = () =>
    Object.fromEntries(
      CONFIG_SECTION_NAMES.map((section) => [section, cachedSection(sections, keys[section], () => renderedSection(section, document, agentSettings))]),
    ) as Record<ConfigSectionName, string>;
  if (Object.values(keys).some((key) => sections.peek(key) === undefined)) {
    // Rendering may be long work after other work (a load, a commit): let other requests run first.
    await setImmediate();
  }
  const rendered = await withinBudgetOr(renderHere, 'renderSections', document, agentSettings());
  // Rendered in a worker: keep what the cache lacks (rendered here, `cachedSection` kept it already).
  for (const section of CONFIG_SECTION_NAMES) {
    if (sections.peek(keys[section]) === undefined) sections.set(keys[section], rendered[section]);
  }
  const agentIdentity = view.branchId === agent.main_branch_id && !view.documentIdentity;
  const head = {
    agent_id: agent.id,
    // name and tags are the agent's on main; on other branches, what the branch has committed.
    name: agentIdentity ? agent.name : document.name,
    tags: agentIdentity ? (JSON.parse(agent.tags) as string[]) : document.tags,
    metadata: {
      created_at_unix_secs: Math.floor(agent.created_at_ms / 1000),
      updated_at_unix_secs: Math.floor(agent.updated_at_ms / 1000),
    },
    phone_numbers: [],
    whatsapp_accounts: [],
    access_info: view.access,
    version_id: view.versionId,
    branch_id: view.branchId,
    main_branch_id: agent.main_branch_id,
    procedures: view.procedures,
  };
  const prefix = JSON.stringify(head).slice(0, -1);
  const configSections = CONFIG_SECTION_NAMES.map((section) => `${JSON.stringify(section)}:${rendered[section]}`).join(',');
  return `${prefix},${configSections}}`;
}
