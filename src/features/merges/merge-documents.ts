import { isJsonObject, type Json } from '../../domain/canonical-json.js';
import { configSectionsOf, SECTION_NAMES, type SectionName } from '../../domain/sections.js';
import { type Conflict, type Resolution, type Side, threeWayMerge } from '../../domain/three-way-merge.js';
import { ConflictError, RequestValidationError } from '../../errors.js';
import { validateAgentConfig } from '../../wire/agent-config.js';
import { type AgentDocument, documentFromMerged, sectionValue, splitPlatformSettings } from '../agents/agent-document.js';
import type { VersionRow } from '../versions/versions.store.js';

// The pure part of a merge plan: no database, so that a large merge can run off the event loop
// (src/compute).

/**
 * Where a conflict lives (domain/sections.ts): upstream's sections, plus `agent` (extension) for
 * the branch-level `name` and `tags`, which reach the agent when merged into main.
 */
export type Section = SectionName;

export interface FieldConflict {
  path: string;
  section: Section;
  base_value: Json | null;
  source_value: Json | null;
  target_value: Json | null;
}

/** `{path → resolution}` as sent: paths relative to a section, or `section.path`. */
export type ResolutionInput = Record<string, 'source' | 'target' | { value: Json }>;

/** Where a request carried `resolutions`: errors point there (`["query", "resolutions", path]`). */
export type ResolutionsLocation = 'body' | 'query';

/** Resolutions per section, accepting `section.path` and section-relative paths (decisions.md D10). */
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
    const settled = section === 'procedures' ? procedureResolution(resolution) : resolution;
    if (section === 'procedures' && typeof settled !== 'string' && settled.value !== null && typeof settled.value !== 'string') {
      throw RequestValidationError.at([location, 'resolutions', key], 'A procedure is settled with one of its version ids, its value as the preview shows it, or null.');
    }
    result.get(section)!.set(path, settled);
  }
  return result;
}

/**
 * A procedure's conflict is settled with a version id; a value as previews show it (a
 * `ProcedureRefResponseModel`) stands for its `version_id`, null for leaving the procedure out.
 */
function procedureResolution(resolution: Resolution): Resolution {
  if (typeof resolution === 'string') return resolution;
  const { value } = resolution;
  return isJsonObject(value) && typeof value.version_id === 'string' ? { value: value.version_id } : resolution;
}

/** The later tip wins a conflict (milliseconds, then version id); `force` → source (decisions.md D9). */
export function defaultWinner(sourceHead: VersionRow, targetHead: VersionRow): Side {
  if (sourceHead.committed_at_ms !== targetHead.committed_at_ms) {
    return sourceHead.committed_at_ms > targetHead.committed_at_ms ? 'source' : 'target';
  }
  return sourceHead.id > targetHead.id ? 'source' : 'target';
}

function mergeDocuments(base: AgentDocument, source: AgentDocument, target: AgentDocument, winner: Side, resolutions: Map<Section, Map<string, Resolution>>) {
  const merged = {} as Record<Section, Json | undefined>;
  const conflicts: FieldConflict[] = [];
  for (const section of SECTION_NAMES) {
    const outcome = threeWayMerge(sectionValue(base, section), sectionValue(source, section), sectionValue(target, section), {
      winner,
      resolutions: resolutions.get(section),
    });
    merged[section] = outcome.merged;
    conflicts.push(...outcome.conflicts.map((conflict: Conflict) => toFieldConflict(section, conflict)));
  }
  return { document: documentFromMerged(merged, target), conflicts };
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


export interface MergedDocuments {
  /** The merged document, validated, with every default filled. */
  document: AgentDocument;
  conflicts: FieldConflict[];
}

/**
 * Merges `source` into `target` from `base` (decisions.md D9, D10): resolutions are checked against the
 * conflicts of a plain merge, then applied; the result is validated and filled as a commit would
 * be. A result that is not valid is a 409 `merge_result_invalid`.
 */
export function mergeAndFill(
  base: AgentDocument,
  source: AgentDocument,
  target: AgentDocument,
  winner: Side,
  resolutionInput: ResolutionInput | undefined,
  resolutionsIn: ResolutionsLocation = 'body',
): MergedDocuments {
  const plain = mergeDocuments(base, source, target, winner, new Map());
  const resolutions = resolutionsBySection(resolutionInput, resolutionsIn, plain.conflicts);
  const { document, conflicts } = resolutions.size > 0 ? mergeDocuments(base, source, target, winner, resolutions) : plain;
  try {
    const sections = validateAgentConfig(configSectionsOf(document), ['merge_result']);
    // Validation fills the per-agent settings' defaults too; versions keep only the versioned part.
    return { document: { ...document, ...sections, platform_settings: splitPlatformSettings(sections.platform_settings).versioned }, conflicts };
  } catch (error) {
    if (!(error instanceof RequestValidationError)) throw error;
    throw new ConflictError(
      'merge_result_invalid',
      `The merged config would not be valid (${error.message}); resolve the conflicts differently or edit one side first.`,
    );
  }
}
