/**
 * Merge base and ahead/behind over the version DAG (DESIGN §6, §12.8), without walking whole
 * histories: versions carry a generation number (longest path from a root), and the walk visits
 * versions from both tips in descending generation, stopping as soon as everything left to visit
 * is reachable from both. Its cost grows with the versions between the tips and their merge
 * base, not with the length of the history.
 */

export interface VersionNode {
  id: string;
  generation: number;
  parentIds: string[];
}

export interface HistoryComparison {
  /** The nearest common ancestor (highest generation; ties by id), if the histories meet. */
  mergeBaseId: string | undefined;
  /** Versions reachable from `a` and not from `b` (`git rev-list --count b..a`). */
  ahead: number;
  /** Their ids. */
  aheadIds: string[];
  /** Versions reachable from `b` and not from `a`. */
  behind: number;
  /** How many versions the walk looked at: for tests and benchmarks. */
  visited: number;
}

const FROM_A = 1;
const FROM_B = 2;
const FROM_BOTH = 3;

export async function compareHistories(
  a: VersionNode,
  b: VersionNode,
  loadMany: (ids: string[]) => Promise<VersionNode[]>,
): Promise<HistoryComparison> {
  const nodes = new Map<string, VersionNode>([
    [a.id, a],
    [b.id, b],
  ]);
  const flags = new Map<string, number>();
  const queued = new Set<string>();
  // Kept sorted: highest generation last, so pop() takes it.
  const queue: VersionNode[] = [];
  const push = (node: VersionNode) => {
    queued.add(node.id);
    let index = queue.length;
    while (index > 0 && compare(queue[index - 1], node) > 0) index--;
    queue.splice(index, 0, node);
  };
  const mark = (node: VersionNode, flag: number) => {
    const before = flags.get(node.id) ?? 0;
    flags.set(node.id, before | flag);
    if (!queued.has(node.id)) push(node);
  };
  mark(a, FROM_A);
  mark(b, FROM_B);

  const aheadIds: string[] = [];
  let behind = 0;
  let visited = 0;
  let mergeBaseId: string | undefined;
  let stale = 0; // queued nodes flagged from both
  const isStale = (id: string) => flags.get(id) === FROM_BOTH;

  while (queue.length > 0) {
    stale = queue.reduce((count, node) => count + (isStale(node.id) ? 1 : 0), 0);
    if (stale === queue.length) {
      mergeBaseId ??= queue[queue.length - 1].id;
      break;
    }
    const node = queue.pop() as VersionNode;
    queued.delete(node.id);
    visited++;
    const flag = flags.get(node.id) ?? 0;
    if (flag === FROM_A) aheadIds.push(node.id);
    else if (flag === FROM_B) behind++;
    else mergeBaseId ??= node.id;

    const missing = node.parentIds.filter((id) => !nodes.has(id));
    if (missing.length > 0) for (const parent of await loadMany(missing)) nodes.set(parent.id, parent);
    for (const parentId of node.parentIds) {
      const parent = nodes.get(parentId);
      if (parent) mark(parent, flag);
    }
  }
  return { mergeBaseId, ahead: aheadIds.length, aheadIds, behind, visited };
}

/** Ascending generation, then id: the queue's order. */
function compare(x: VersionNode, y: VersionNode): number {
  return x.generation - y.generation || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0);
}
