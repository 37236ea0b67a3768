import type { AgentVersion } from '../api/history';

// The version graph's layout, with no DOM: a lane (column) per branch, a row per version (newest
// first, as the API lists them), and the edges from each version to its parents. Rows are drawn in
// slices (one small SVG per visible row), so the edges are in whole-graph coordinates.

export const ROW_HEIGHT = 44;
export const LANE_WIDTH = 18;
const LANE_MARGIN = 12;

export type EdgeKind = 'in-branch' | 'branch-point' | 'merge';

export interface GraphEdge {
  kind: EdgeKind;
  /** The child's row (the newer version, above). */
  fromRow: number;
  fromLane: number;
  /** The parent's row, or undefined when it is older than every version loaded (the edge runs off the bottom). */
  toRow: number | undefined;
  toLane: number;
  /** The SVG path, in whole-graph coordinates. */
  path: string;
}

export interface GraphLayout {
  /** Lane per branch id: main is 0, the others in the order they first appear (newest first), so loading older pages never moves a lane. */
  laneOf: Map<string, number>;
  laneCount: number;
  rowOf: Map<string, number>;
  edges: GraphEdge[];
  /** The edges that cross each row, by row: what a row's slice draws. */
  edgesByRow: GraphEdge[][];
}

export const laneX = (lane: number) => LANE_MARGIN + lane * LANE_WIDTH;
export const rowY = (row: number) => row * ROW_HEIGHT + ROW_HEIGHT / 2;
export const graphWidth = (laneCount: number) => LANE_MARGIN * 2 + Math.max(0, laneCount - 1) * LANE_WIDTH;

/**
 * Lays out `versions` (newest first; each above its parents). `lanes` is the lane order so far (kept
 * when more versions are loaded): branches not in it are added after it.
 */
export function layoutGraph(versions: AgentVersion[], mainBranchId: string | undefined, lanes: string[] = []): GraphLayout {
  const laneOf = new Map<string, number>();
  const addLane = (branchId: string) => {
    if (!laneOf.has(branchId)) laneOf.set(branchId, laneOf.size);
  };
  if (mainBranchId) addLane(mainBranchId);
  for (const branchId of lanes) addLane(branchId);
  const rowOf = new Map<string, number>();
  versions.forEach((version, row) => {
    addLane(version.branch_id);
    rowOf.set(version.id, row);
  });
  const bottom = versions.length;
  const edges: GraphEdge[] = [];
  versions.forEach((version, row) => {
    const lane = laneOf.get(version.branch_id)!;
    const { in_branch_parent_id: inBranch, out_of_branch_parent_id: outOfBranch, merged_from_version_id: mergedFrom } = version.parents;
    if (inBranch) edges.push(edge('in-branch', row, lane, rowOf.get(inBranch), lane, bottom));
    // A branch's first version: the branch's lane runs down to the version it was cut from.
    if (outOfBranch && outOfBranch !== inBranch) {
      const parentRow = rowOf.get(outOfBranch);
      const parentLane = parentRow === undefined ? lane : laneOf.get(versions[parentRow].branch_id)!;
      edges.push(edge('branch-point', row, lane, parentRow, parentLane, bottom));
    }
    // A merge: its second parent, reached through the source branch's lane.
    if (mergedFrom) {
      const parentRow = rowOf.get(mergedFrom);
      const sourceBranch = parentRow === undefined ? version.parents.merged_from_branch_id : versions[parentRow].branch_id;
      if (sourceBranch) addLane(sourceBranch);
      const parentLane = sourceBranch ? laneOf.get(sourceBranch)! : lane;
      edges.push(edge('merge', row, lane, parentRow, parentLane, bottom));
    }
  });
  const edgesByRow: GraphEdge[][] = versions.map(() => []);
  for (const each of edges) {
    const last = Math.min(each.toRow ?? bottom - 1, bottom - 1);
    for (let row = each.fromRow; row <= last; row++) edgesByRow[row].push(each);
  }
  return { laneOf, laneCount: laneOf.size, rowOf, edges, edgesByRow };
}

function edge(kind: EdgeKind, fromRow: number, fromLane: number, toRow: number | undefined, toLane: number, bottom: number): GraphEdge {
  return { kind, fromRow, fromLane, toRow, toLane, path: edgePath(kind, fromRow, fromLane, toRow, toLane, bottom) };
}

/**
 * A straight line within a lane; across lanes, one curve over a single row: a branch point runs
 * down the child's lane and bends into the parent at the parent's row; a merge bends out of the
 * merge into the source's lane at once and runs down it to the merged version.
 */
function edgePath(kind: EdgeKind, fromRow: number, fromLane: number, toRow: number | undefined, toLane: number, bottom: number): string {
  const x1 = laneX(fromLane);
  const y1 = rowY(fromRow);
  const x2 = laneX(toLane);
  const y2 = toRow === undefined ? bottom * ROW_HEIGHT : rowY(toRow);
  if (x1 === x2) return `M${x1} ${y1}V${y2}`;
  const bend = Math.min(ROW_HEIGHT, y2 - y1);
  if (kind === 'merge') {
    const yBend = y1 + bend;
    return `M${x1} ${y1}C${x1} ${y1 + bend / 2} ${x2} ${y1 + bend / 2} ${x2} ${yBend}V${y2}`;
  }
  const yBend = y2 - bend;
  return `M${x1} ${y1}V${yBend}C${x1} ${yBend + bend / 2} ${x2} ${yBend + bend / 2} ${x2} ${y2}`;
}
