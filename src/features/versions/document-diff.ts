import type { Json } from '../../domain/canonical-json.js';
import { SECTION_NAMES, type SectionName } from '../../domain/sections.js';
import { type Change, diffValues } from '../../domain/three-way-merge.js';
import { type AgentDocument, sectionValue, visibleDocument } from '../agents/agent-document.js';

export interface DocumentChange {
  section: SectionName;
  path: string;
  before: Json;
  after: Json;
  kind: 'added' | 'removed' | 'changed';
}

/**
 * What changed between two documents as reads show them (a default one stores and the other
 * lacks is no change), path by path, with the path rules of the merge (keyed arrays element by
 * element). Pure, so that large documents are compared in a compute worker.
 */
export function diffDocuments(from: AgentDocument, to: AgentDocument): DocumentChange[] {
  const [before, after] = [visibleDocument(from), visibleDocument(to)];
  const changes: DocumentChange[] = [];
  for (const section of SECTION_NAMES) {
    for (const change of diffValues(sectionValue(before, section), sectionValue(after, section))) {
      changes.push({ section, path: change.path, before: change.before ?? null, after: change.after ?? null, kind: kindOf(change) });
    }
  }
  return changes;
}

function kindOf(change: Change): 'added' | 'removed' | 'changed' {
  if (change.before === undefined) return 'added';
  if (change.after === undefined) return 'removed';
  return 'changed';
}
