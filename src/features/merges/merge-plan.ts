import type { Kysely } from 'kysely';

import type { AppContext } from '../../context.js';
import type { Database } from '../../db/schema.js';
import type { Json, JsonObject } from '../../domain/canonical-json.js';
import type { SeqRange } from '../../domain/frontier.js';
import { type Conflict, type Resolution, type Side, threeWayMerge } from '../../domain/three-way-merge.js';
import { ConflictError, RequestValidationError } from '../../http/errors.js';
import { validateAgentConfig } from '../../wire/agent-config.js';
import { type AgentDocument, sameVisibleDocument, splitPlatformSettings } from '../agents/agent-document.js';
import { loadDocument } from '../agents/agents.service.js';
import type { BranchRow } from '../branches/branches.store.js';
import type { PreparedDocument } from '../versions/documents.store.js';
import { compareVersions } from '../versions/history.js';
import { type VersionRow, versionsStore } from '../versions/versions.store.js';

/**
 * Where a conflict lives. Upstream's sections, plus `agent` (extension) for the branch-level
 * `name` and `tags`, which reach the agent when merged into main.
 */
export const SECTIONS = ['conversation_config', 'platform_settings', 'workflow'] as const;
export type Section = (typeof SECTIONS)[number] | 'agent';

export interface FieldConflict {
  path: string;
  section: Section;
  base_value: Json | null;
  source_value: Json | null;
  target_value: Json | null;
}

/** `{path → resolution}` as sent: paths relative to a section, or `section.path`. */
export type ResolutionInput = Record<string, 'source' | 'target' | { value: Json }>;

export interface MergePlan {
  sourceHead: VersionRow;
  targetHead: VersionRow;
  base: VersionRow | undefined;
  /** Versions of the source that the target does not have, as ranges of branches. */
  aheadRanges: SeqRange[];
  document: AgentDocument;
  prepared: PreparedDocument;
  conflicts: FieldConflict[];
  /** Why the operation would be refused as a no-op (409), if it would. */
  refusal: ConflictError | undefined;
}

const EMPTY_DOCUMENT: AgentDocument = { conversation_config: {}, platform_settings: {}, workflow: {}, name: '', tags: [] };

function sectionsOf(document: AgentDocument): Record<Section, Json> {
  return {
    conversation_config: document.conversation_config,
    platform_settings: document.platform_settings,
    workflow: document.workflow,
    agent: { name: document.name, tags: document.tags },
  };
}

/** Where a request carried `resolutions`: errors point there (`["query", "resolutions", path]`). */
export type ResolutionsLocation = 'body' | 'query';

/** Resolutions per section, accepting `section.path` and section-relative paths (DESIGN §12.6). */
function resolutionsBySection(
  input: ResolutionInput | undefined,
  location: ResolutionsLocation,
  conflicts: FieldConflict[],
): Map<Section, Map<string, Resolution>> {
  const result = new Map<Section, Map<string, Resolution>>();
  for (const [key, resolution] of Object.entries(input ?? {})) {
    const matches = conflicts.filter((conflict) => key === `${conflict.section}.${conflict.path}` || key === conflict.path || (conflict.path === '' && key === conflict.section));
    const sections = new Set(matches.map((conflict) => conflict.section));
    if (matches.length === 0 || sections.size > 1) {
      throw RequestValidationError.at(
        [location, 'resolutions', key],
        matches.length === 0
          ? `No conflict at "${key}"; the merge preview lists the conflicts and their paths.`
          : `"${key}" names a conflict in several sections; write it as section.path.`,
      );
    }
    const { section, path } = matches[0];
    if (!result.has(section)) result.set(section, new Map());
    result.get(section)!.set(path, resolution);
  }
  return result;
}

/**
 * A merge that changes nothing because every conflict went the target's way (by default the later
 * commit wins) says how to keep the source's side instead: that is what its author usually wants.
 */
function noChangeMessage(source: BranchRow, target: BranchRow, conflicts: FieldConflict[]): string {
  const refusal = `Merging "${source.name}" would not change "${target.name}"`;
  if (conflicts.length === 0) return `${refusal}.`;
  const paths = conflicts.slice(0, 3).map((conflict) => (conflict.path === '' ? conflict.section : `${conflict.section}.${conflict.path}`));
  const more = conflicts.length > 3 ? ` and ${conflicts.length - 3} more` : '';
  return (
    `${refusal}: its changes to ${paths.join(', ')}${more} conflict with "${target.name}" and are decided for "${target.name}" ` +
    `(by default the later commit wins). To keep "${source.name}"'s side, merge with force=true, or with ` +
    `resolutions {"<path>": "source"} for chosen paths; the merge preview lists the conflicts.`
  );
}

/** The later tip wins a conflict (milliseconds, then version id); `force` → source (DESIGN §12.5). */
export function defaultWinner(sourceHead: VersionRow, targetHead: VersionRow): Side {
  if (sourceHead.committed_at_ms !== targetHead.committed_at_ms) {
    return sourceHead.committed_at_ms > targetHead.committed_at_ms ? 'source' : 'target';
  }
  return sourceHead.id > targetHead.id ? 'source' : 'target';
}

function mergeDocuments(base: AgentDocument, source: AgentDocument, target: AgentDocument, winner: Side, resolutions: Map<Section, Map<string, Resolution>>) {
  const baseSections = sectionsOf(base);
  const sourceSections = sectionsOf(source);
  const targetSections = sectionsOf(target);
  const merged = {} as Record<Section, Json>;
  const conflicts: FieldConflict[] = [];
  for (const section of [...SECTIONS, 'agent'] as const) {
    const outcome = threeWayMerge(baseSections[section], sourceSections[section], targetSections[section], {
      winner,
      resolutions: resolutions.get(section),
    });
    merged[section] = outcome.merged ?? {};
    conflicts.push(...outcome.conflicts.map((conflict: Conflict) => toFieldConflict(section, conflict)));
  }
  const identity = merged.agent as JsonObject;
  return {
    document: {
      conversation_config: merged.conversation_config as JsonObject,
      platform_settings: merged.platform_settings as JsonObject,
      workflow: merged.workflow as JsonObject,
      name: typeof identity.name === 'string' ? identity.name : target.name,
      tags: Array.isArray(identity.tags) ? (identity.tags as string[]) : target.tags,
    },
    conflicts,
  };
}

function toFieldConflict(section: Section, conflict: Conflict): FieldConflict {
  return {
    path: conflict.path,
    section,
    base_value: conflict.base ?? null,
    source_value: conflict.source ?? null,
    target_value: conflict.target ?? null,
  };
}

export function overriddenFields(conflicts: FieldConflict[]): string[] {
  return conflicts.map((conflict) => (conflict.path === '' ? conflict.section : `${conflict.section}.${conflict.path}`));
}

export interface PlanOptions {
  kind: 'merge' | 'rebase';
  /** Who wins conflicts without a resolution. */
  winner: Side | 'later';
  resolutions?: ResolutionInput;
  /** Where `resolutions` came from (default the body). */
  resolutionsIn?: ResolutionsLocation;
}

/**
 * What merging `source` into `target` (or rebasing `source` onto `target` = main) would produce:
 * the same computation serves the preview and the operation, so a preview never lies.
 */
export async function planMerge(
  trx: Kysely<Database>,
  context: AppContext,
  agentId: string,
  source: BranchRow,
  target: BranchRow,
  options: PlanOptions,
): Promise<MergePlan> {
  const store = versionsStore(trx);
  const [sourceHead, targetHead] = await store.findMany(agentId, [source.head_version_id, target.head_version_id]).then((rows) => [
    rows.find((row) => row.id === source.head_version_id) as VersionRow,
    rows.find((row) => row.id === target.head_version_id) as VersionRow,
  ]);
  const comparison = await compareVersions(context, trx, sourceHead, targetHead);
  const base = comparison.mergeBaseId ? (await store.findMany(agentId, [comparison.mergeBaseId]))[0] : undefined;
  const [baseDocument, sourceDocument, targetDocument] = await Promise.all([
    base ? loadDocument(context, trx, base) : EMPTY_DOCUMENT,
    loadDocument(context, trx, sourceHead),
    loadDocument(context, trx, targetHead),
  ]);
  const winner = options.winner === 'later' ? defaultWinner(sourceHead, targetHead) : options.winner;

  // Resolutions are checked against the conflicts of a plain merge, then applied.
  const plain = mergeDocuments(baseDocument, sourceDocument, targetDocument, winner, new Map());
  const resolutions = resolutionsBySection(options.resolutions, options.resolutionsIn ?? 'body', plain.conflicts);
  const { document, conflicts } = resolutions.size > 0 ? mergeDocuments(baseDocument, sourceDocument, targetDocument, winner, resolutions) : plain;

  let filled: AgentDocument;
  try {
    const sections = validateAgentConfig(
      { conversation_config: document.conversation_config, platform_settings: document.platform_settings, workflow: document.workflow },
      ['merge_result'],
    );
    // Validation fills the per-agent settings' defaults too; versions keep only the versioned part.
    filled = { ...document, ...sections, platform_settings: splitPlatformSettings(sections.platform_settings).versioned };
  } catch (error) {
    if (!(error instanceof RequestValidationError)) throw error;
    throw new ConflictError(
      'merge_result_invalid',
      `The merged config would not be valid (${error.message}); resolve the conflicts differently or edit one side first.`,
    );
  }
  const prepared = context.documents.prepare(filled);
  const resultingDocument = options.kind === 'merge' ? targetHead.document_hash : sourceHead.document_hash;

  let refusal: ConflictError | undefined;
  if (options.kind === 'merge') {
    if (comparison.ahead === 0) {
      refusal = (await store.isMergedSomewhere(sourceHead.id))
        ? new ConflictError('branch_already_merged', `Branch "${source.name}" has no commits since it was merged; there is nothing to merge.`)
        : new ConflictError('no_new_changes_to_merge', `Branch "${source.name}" has no commits that "${target.name}" does not already have.`);
    } else if (prepared.rootHash === resultingDocument || sameVisibleDocument(targetDocument, filled)) {
      // Nothing a read would show changes (defaults one side stored and the other did not are no change).
      refusal = new ConflictError('no_new_changes_to_merge', noChangeMessage(source, target, conflicts));
    }
  } else if (comparison.behind === 0) {
    refusal = new ConflictError('branch_already_up_to_date', `Branch "${source.name}" already contains main's head.`);
  }

  return { sourceHead, targetHead, base, aheadRanges: comparison.aheadRanges, document: filled, prepared, conflicts, refusal };
}
