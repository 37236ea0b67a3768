import { createHash } from 'node:crypto';

import type { JsonObject } from '../../domain/canonical-json.js';
import { LruCache } from '../../domain/lru.js';
import { renderSection } from '../../wire/agent-config.js';
import type { AccessInfo } from '../workspaces/user-directory.js';
import type { AgentDocument } from './agent-document.js';
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
}

/**
 * Upstream's `GetAgentResponseModel`, as JSON text: the large sections come pre-serialized
 * from the cache and only the small per-request parts are stringified.
 */
export function renderAgentResponse(sections: SectionCache, view: AgentView): string {
  const { agent, document } = view;
  const settingsKey = createHash('sha1').update(agent.agent_settings).digest('base64url');
  const conversationConfig = cachedSection(sections, `cc:${view.documentHash}`, () =>
    renderSection('conversation_config', document.conversation_config),
  );
  const platformSettings = cachedSection(sections, `ps:${view.documentHash}:${settingsKey}`, () =>
    renderSection('platform_settings', { ...document.platform_settings, ...(JSON.parse(agent.agent_settings) as JsonObject) }),
  );
  const workflow = cachedSection(sections, `wf:${view.documentHash}`, () => renderSection('workflow', document.workflow));
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
    procedures: {},
  };
  const prefix = JSON.stringify(head).slice(0, -1);
  return `${prefix},"conversation_config":${conversationConfig},"platform_settings":${platformSettings},"workflow":${workflow}}`;
}
