/**
 * Ancestry by frontiers (decisions.md D11): the merge base and ahead/behind of two versions at a
 * cost that grows with the number of branches, never with the length of the history.
 *
 * Versions of a branch form a chain (1, 2, 3 … by `seq_no_in_branch`, each the parent of the
 * next), so the ancestors of a version on any one branch are a prefix of that branch: versions 1
 * to some n. A version's frontier records that n for every branch in its ancestry (its own branch
 * excluded: there it is its own number). Then:
 *   ancestors(v) = ∪ over branches b of { b's versions 1 … reach(v)[b] }
 *   ahead(a, b)  = Σ max(0, reach(a)[x] − reach(b)[x])            (`git rev-list --count b..a`)
 *   common tips  = for each branch x, version min(reach(a)[x], reach(b)[x]) of x
 * and the merge base is the common tip with the highest generation.
 */

export type Frontier = Record<string, number>;

export interface Positioned {
  branchId: string;
  seqNo: number;
  /** Highest sequence number reachable per other branch. */
  frontier: Frontier;
}

export interface SeqRange {
  branchId: string;
  /** Exclusive. */
  afterSeqNo: number;
  /** Inclusive. */
  throughSeqNo: number;
}

export interface ReachComparison {
  ahead: number;
  behind: number;
  /** The versions reachable from `a` and not from `b`, as ranges of branches. */
  aheadRanges: SeqRange[];
  /** Per branch, the newest version both reach: the merge base is the one with the highest generation. */
  commonTips: { branchId: string; seqNo: number }[];
}

function sortedFrontier(frontier: Frontier): Frontier {
  const sorted: Frontier = {};
  for (const key of Object.keys(frontier).sort()) sorted[key] = frontier[key];
  return sorted;
}

/** The frontier of a new version on `ownBranchId` with these parents. */
export function frontierOf(ownBranchId: string, parents: readonly Positioned[]): Frontier {
  // A Map, not an object: no branch id can collide with an inherited property.
  const merged = new Map<string, number>();
  const raise = (branchId: string, seqNo: number) => {
    if (seqNo > (merged.get(branchId) ?? 0)) merged.set(branchId, seqNo);
  };
  for (const parent of parents) {
    for (const [branchId, seqNo] of Object.entries(parent.frontier)) raise(branchId, seqNo);
    raise(parent.branchId, parent.seqNo);
  }
  merged.delete(ownBranchId);
  return Object.fromEntries([...merged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Everything a version reaches, its own branch included. */
export function reachOf(version: Positioned): Map<string, number> {
  const reach = new Map(Object.entries(version.frontier));
  reach.set(version.branchId, Math.max(version.seqNo, reach.get(version.branchId) ?? 0));
  return reach;
}

export function compareReach(a: Positioned, b: Positioned): ReachComparison {
  const reachA = reachOf(a);
  const reachB = reachOf(b);
  let ahead = 0;
  let behind = 0;
  const aheadRanges: SeqRange[] = [];
  const commonTips: { branchId: string; seqNo: number }[] = [];
  for (const branchId of new Set([...reachA.keys(), ...reachB.keys()])) {
    const inA = reachA.get(branchId) ?? 0;
    const inB = reachB.get(branchId) ?? 0;
    if (inA > inB) {
      ahead += inA - inB;
      aheadRanges.push({ branchId, afterSeqNo: inB, throughSeqNo: inA });
    }
    behind += Math.max(0, inB - inA);
    const common = Math.min(inA, inB);
    if (common > 0) commonTips.push({ branchId, seqNo: common });
  }
  return { ahead, behind, aheadRanges, commonTips };
}

/** How a frontier is stored: canonical JSON, content-addressed like document nodes. */
export function frontierBody(frontier: Frontier): string {
  return JSON.stringify({ f: sortedFrontier(frontier) });
}
