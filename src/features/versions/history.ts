import type { Kysely } from 'kysely';

import type { AppContext } from '../../context.js';
import type { Database } from '../../db/schema.js';
import { compareReach, type Positioned, type SeqRange } from '../../domain/frontier.js';
import type { VersionRow } from './versions.store.js';

export interface VersionComparison {
  /** The nearest common ancestor, if the histories meet. */
  mergeBaseId: string | undefined;
  /** Versions reachable from `a` and not from `b`. */
  ahead: number;
  behind: number;
  aheadRanges: SeqRange[];
}

export async function positionOf(context: AppContext, db: Kysely<Database>, version: VersionRow): Promise<Positioned> {
  return { branchId: version.branch_id, seqNo: version.seq_no_in_branch, frontier: await context.frontiers.load(db, version.frontier_hash) };
}

/**
 * Merge base and ahead/behind of `a` against `b` from their frontiers: a constant number of reads,
 * whatever the length of the history (src/domain/frontier.ts).
 */
export async function compareVersions(context: AppContext, db: Kysely<Database>, a: VersionRow, b: VersionRow): Promise<VersionComparison> {
  const comparison = compareReach(await positionOf(context, db, a), await positionOf(context, db, b));
  let mergeBaseId: string | undefined;
  if (comparison.commonTips.length > 0) {
    const tips = await db
      .selectFrom('versions')
      .select(['id', 'generation'])
      .where('agent_id', '=', a.agent_id)
      .where((eb) => eb.or(comparison.commonTips.map((tip) => eb.and([eb('branch_id', '=', tip.branchId), eb('seq_no_in_branch', '=', tip.seqNo)]))))
      .execute();
    tips.sort((x, y) => y.generation - x.generation || (x.id < y.id ? 1 : -1));
    mergeBaseId = tips[0]?.id;
  }
  return { mergeBaseId, ahead: comparison.ahead, behind: comparison.behind, aheadRanges: comparison.aheadRanges };
}
