import type { Kysely } from 'kysely';

import type { Database } from '../../db/schema.js';
import { compareHistories, type HistoryComparison, type VersionNode } from '../../domain/ancestry.js';
import { type VersionRow, versionsStore } from './versions.store.js';

export function versionNode(version: VersionRow): VersionNode {
  const parentIds = [version.in_branch_parent_id, version.out_of_branch_parent_id, version.merged_from_version_id].filter(
    (id): id is string => id !== null,
  );
  return { id: version.id, generation: version.generation, parentIds };
}

/** Merge base and ahead/behind of `a` against `b` (both versions of the agent). */
export function compareVersions(db: Kysely<Database>, agentId: string, a: VersionRow, b: VersionRow): Promise<HistoryComparison> {
  const store = versionsStore(db);
  return compareHistories(versionNode(a), versionNode(b), async (ids) => (await store.findMany(agentId, ids)).map(versionNode));
}
