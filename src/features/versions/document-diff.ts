import type { Json } from '../../domain/canonical-json.js';
import { type Change, diffValues } from '../../domain/three-way-merge.js';
import { type AgentDocument, visibleDocument } from '../agents/agent-document.js';

const DIFF_SECTIONS = ['conversation_config', 'platform_settings', 'workflow'] as const;

export interface DocumentChange {
  section: (typeof DIFF_SECTIONS)[number] | 'agent';
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
  for (const section of DIFF_SECTIONS) {
    for (const change of diffValues(before[section], after[section])) {
      changes.push({ section, path: change.path, before: change.before ?? null, after: change.after ?? null, kind: kindOf(change) });
    }
  }
  for (const field of ['name', 'tags'] as const) {
    for (const change of diffValues({ [field]: before[field] }, { [field]: after[field] })) {
      changes.push({ section: 'agent', path: change.path, before: change.before ?? null, after: change.after ?? null, kind: kindOf(change) });
    }
  }
  return changes;
}

function kindOf(change: Change): 'added' | 'removed' | 'changed' {
  if (change.before === undefined) return 'added';
  if (change.after === undefined) return 'removed';
  return 'changed';
}
