import type { Kysely } from 'kysely';

import type { Database } from '../../db/schema.js';
import { canonicalJson, type Json, type JsonObject, isJsonObject } from '../../domain/canonical-json.js';
import { diffValues } from '../../domain/three-way-merge.js';
import { renderSectionMember } from '../../wire/agent-config.js';
import { recordUserAction } from '../audit/audit.events.js';
import type { Caller } from '../../domain/caller.js';
import { PER_AGENT_SETTINGS } from './agent-document.js';
import type { AgentRow } from './agents.store.js';

/**
 * The agent-wide (unversioned) parts of `platform_settings` as a read shows them: with every
 * default filled. Two settings that look the same here are the same setting, whatever their
 * stored form (one written before a default existed, one sent back from a read).
 */
export function visibleAgentSettings(settings: JsonObject): JsonObject {
  const visible: JsonObject = {};
  for (const key of PER_AGENT_SETTINGS) {
    // Member by member: filling the whole of platform_settings would build every versioned default too.
    const value = renderSectionMember('platform_settings', key, Object.hasOwn(settings, key) ? settings[key] : undefined);
    if (value !== undefined) visible[key] = value;
  }
  return visible;
}

export interface AgentSettingsChange {
  /** Dot-paths that changed (as the merge and `/diff` name them), sorted. */
  paths: string[];
  /** What each path held before and holds after, as a read shows it; credentials are masked. */
  changes: { path: string; before: Json; after: Json }[];
}

/** Values of these keys are credentials: the audit log names their change, never the value. */
const MASKED_KEYS = new Set(['shareable_token']);
const MASK = '<redacted>';

/** What a write changes of the agent-wide settings, as reads show them; undefined: nothing visible. */
export function agentSettingsChange(before: JsonObject, after: JsonObject): AgentSettingsChange | undefined {
  // Most writes leave the settings as stored: no need to render them.
  if (canonicalJson(before) === canonicalJson(after)) return undefined;
  const found = diffValues(visibleAgentSettings(before), visibleAgentSettings(after));
  if (found.length === 0) return undefined;
  const changes = found
    .map((change) => ({ path: change.path, before: masked(change.path, change.before ?? null), after: masked(change.path, change.after ?? null) }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { paths: changes.map((change) => change.path), changes };
}

function masked(path: string, value: Json): Json {
  const last = path.split('.').at(-1) ?? '';
  if (MASKED_KEYS.has(last)) return value === null ? null : MASK;
  if (Array.isArray(value)) return value.map((item, i) => masked(`${path}.${i}`, item));
  if (isJsonObject(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, masked(`${path}.${key}`, item)]));
  return value;
}

/** The agent row's columns that hold its agent-wide settings. */
export function agentSettingsColumns(settings: JsonObject): Pick<AgentRow, 'agent_settings' | 'archived'> {
  return { agent_settings: canonicalJson(settings), archived: settings.archived === true ? 1 : 0 };
}

/** Every change of agent-wide settings is an audit event (they are not versioned). */
export async function recordAgentSettingsChange(
  trx: Kysely<Database>,
  caller: Caller,
  atMs: number,
  agentId: string,
  branchId: string,
  change: AgentSettingsChange,
): Promise<void> {
  await recordUserAction(trx, caller, atMs, {
    action: 'agent.settings_update',
    agentId,
    resourceId: agentId,
    details: { branch_id: branchId, paths: change.paths, changes: change.changes },
  });
}
