import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { compareReach, type Frontier, frontierBody, frontierOf, type Positioned, reachOf, type ReachComparison } from '../../src/domain/frontier.js';

// ---------------------------------------------------------------------------------------------
// Random histories, built with the operations the service performs (decisions.md D11): main's first
// version; a commit on a branch (parent: its head); a branch cut from ANY version (its first
// version, whose out-of-branch parent is that version); a merge of X into Y (a version on Y with
// parents [Y's head, X's head], sometimes naming X's head twice, as when `out_of_branch_parent_id`
// and `merged_from_version_id` are the same version); a rebase of X onto main (a version on X with
// parents [X's head, main's head]); criss-cross merges (two branches merging each other's head at
// once); and now and then an unrelated root on a new branch (as a duplicated agent's branches).
// Every version gets its frontier from `frontierOf(branch, parent positions)`, exactly as
// `insertVersion` does, and its generation as 1 + the highest parent generation. Version and
// branch ids are scrambled so that their order says nothing about the order of the history.

type Op =
  | { kind: 'main' }
  | { kind: 'fork'; from: number }
  | { kind: 'commit'; branch: number }
  | { kind: 'merge'; from: number; into: number; twice: boolean }
  | { kind: 'rebase'; branch: number }
  | { kind: 'cross'; one: number; other: number }
  | { kind: 'root' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.constant<Op>({ kind: 'main' }), weight: 3 },
  { arbitrary: fc.nat().map((from): Op => ({ kind: 'fork', from })), weight: 2 },
  { arbitrary: fc.nat().map((branch): Op => ({ kind: 'commit', branch })), weight: 4 },
  { arbitrary: fc.record({ from: fc.nat(), into: fc.nat(), twice: fc.boolean() }).map((o): Op => ({ kind: 'merge', ...o })), weight: 3 },
  { arbitrary: fc.nat().map((branch): Op => ({ kind: 'rebase', branch })), weight: 1 },
  { arbitrary: fc.record({ one: fc.nat(), other: fc.nat() }).map((o): Op => ({ kind: 'cross', ...o })), weight: 1 },
  { arbitrary: fc.constant<Op>({ kind: 'root' }), weight: 1 },
);

interface Version extends Positioned {
  id: string;
  generation: number;
  parentIds: string[];
}

interface History {
  /** In creation order: parents first. */
  versions: Version[];
  byId: Map<string, Version>;
  /** `branch#seq` → version id. */
  bySlot: Map<string, string>;
  mainBranchId: string;
}

const slot = (branchId: string, seqNo: number) => `${branchId}#${seqNo}`;
/** Unique for n < 1009, in an order unrelated to n; shaped like the service's ids. */
const scrambled = (prefix: string, n: number) => `${prefix}${((n * 613) % 1009).toString(32).padStart(3, '0')}`;

/** The position the service reads back for a version (a fresh object, as from a store). */
const positionOf = (version: Version): Positioned => ({ branchId: version.branchId, seqNo: version.seqNo, frontier: version.frontier });

function buildHistory(ops: readonly Op[]): History {
  const versions: Version[] = [];
  const byId = new Map<string, Version>();
  const bySlot = new Map<string, string>();
  const branchIds: string[] = [];
  const heads: string[] = [];
  const lastSeq = new Map<string, number>();

  const newBranch = (): number => {
    branchIds.push(scrambled('agtbrch_', branchIds.length));
    heads.push('');
    return branchIds.length - 1;
  };
  const add = (branch: number, parentIds: string[]): string => {
    const branchId = branchIds[branch];
    const parents = parentIds.map((id) => byId.get(id)!);
    const seqNo = (lastSeq.get(branchId) ?? 0) + 1;
    const frontier = frontierOf(branchId, parents.map(positionOf));
    // Frontiers are shared (the store caches them): frontierOf must never write into one.
    Object.freeze(frontier);
    const version: Version = {
      id: scrambled('agtvrsn_', versions.length),
      branchId,
      seqNo,
      frontier,
      generation: 1 + Math.max(0, ...parents.map((parent) => parent.generation)),
      parentIds,
    };
    versions.push(version);
    byId.set(version.id, version);
    bySlot.set(slot(branchId, seqNo), version.id);
    lastSeq.set(branchId, seqNo);
    heads[branch] = version.id;
    return version.id;
  };

  add(newBranch(), []); // main's first version
  for (const o of ops) {
    switch (o.kind) {
      case 'main':
        add(0, [heads[0]]);
        break;
      case 'fork':
        add(newBranch(), [versions[o.from % versions.length].id]);
        break;
      case 'commit': {
        const branch = o.branch % heads.length;
        add(branch, [heads[branch]]);
        break;
      }
      case 'merge': {
        const from = o.from % heads.length;
        const into = o.into % heads.length;
        if (from === into) break;
        add(into, o.twice ? [heads[into], heads[from], heads[from]] : [heads[into], heads[from]]);
        break;
      }
      case 'rebase': {
        const branch = o.branch % heads.length;
        if (branch === 0) break;
        add(branch, [heads[branch], heads[0]]);
        break;
      }
      case 'cross': {
        const one = o.one % heads.length;
        const other = o.other % heads.length;
        if (one === other) break;
        const [oneHead, otherHead] = [heads[one], heads[other]];
        add(one, [oneHead, otherHead]);
        add(other, [otherHead, oneHead]);
        break;
      }
      case 'root':
        add(newBranch(), []);
        break;
    }
  }
  return { versions, byId, bySlot, mainBranchId: branchIds[0] };
}

/** Ancestors including self, for every version: the brute-force reference. */
function ancestorSets(history: History): Map<string, Set<string>> {
  const sets = new Map<string, Set<string>>();
  for (const version of history.versions) {
    const set = new Set([version.id]);
    for (const parent of version.parentIds) for (const id of sets.get(parent)!) set.add(id);
    sets.set(version.id, set);
  }
  return sets;
}

const history = fc.array(op, { maxLength: 60, size: 'max' }).map(buildHistory);
const historyAndPair = fc
  .tuple(fc.array(op, { maxLength: 60, size: 'max' }), fc.nat(), fc.nat())
  .map(([ops, i, j]) => {
    const h = buildHistory(ops);
    return { history: h, a: h.versions[i % h.versions.length], b: h.versions[j % h.versions.length] };
  });

/** The versions named by some seq ranges (each once per range it falls in). */
function versionsInRanges(h: History, comparison: ReachComparison): string[] {
  const ids: string[] = [];
  for (const range of comparison.aheadRanges) {
    for (let seq = range.afterSeqNo + 1; seq <= range.throughSeqNo; seq++) {
      const id = h.bySlot.get(slot(range.branchId, seq));
      expect(id, `range ${JSON.stringify(range)} names a version that does not exist`).toBeDefined();
      ids.push(id!);
    }
  }
  return ids;
}

/** The merge base the service picks: the common tip with the highest generation (ties: highest id). */
function mergeBaseOf(h: History, comparison: ReachComparison): Version | undefined {
  const tips = comparison.commonTips.map((tip) => h.byId.get(h.bySlot.get(slot(tip.branchId, tip.seqNo))!)!);
  tips.sort((x, y) => y.generation - x.generation || (x.id < y.id ? 1 : -1));
  return tips[0];
}

function expectMatchesReference(h: History, ancestors: Map<string, Set<string>>, a: Version, b: Version, result: ReachComparison): void {
  const fromA = ancestors.get(a.id)!;
  const fromB = ancestors.get(b.id)!;
  const onlyA = [...fromA].filter((id) => !fromB.has(id)).sort();
  const onlyB = [...fromB].filter((id) => !fromA.has(id));
  const common = [...fromA].filter((id) => fromB.has(id));

  // ahead / behind: `git rev-list --count b..a` and `a..b`.
  expect(result.ahead).toBe(onlyA.length);
  expect(result.behind).toBe(onlyB.length);

  // aheadRanges: exactly ancestors(a) \ ancestors(b), each version once.
  for (const range of result.aheadRanges) expect(range.afterSeqNo).toBeLessThan(range.throughSeqNo);
  expect(new Set(result.aheadRanges.map((range) => range.branchId)).size).toBe(result.aheadRanges.length);
  const inRanges = versionsInRanges(h, result);
  expect(inRanges.length).toBe(onlyA.length);
  expect(inRanges.sort()).toEqual(onlyA);

  // commonTips: one per branch, each a common ancestor, and every common ancestor at or below
  // the tip of its branch.
  const tipOf = new Map<string, number>();
  for (const tip of result.commonTips) {
    expect(tipOf.has(tip.branchId), `two common tips on ${tip.branchId}`).toBe(false);
    tipOf.set(tip.branchId, tip.seqNo);
    const id = h.bySlot.get(slot(tip.branchId, tip.seqNo));
    expect(id, `common tip ${tip.branchId}#${tip.seqNo} does not exist`).toBeDefined();
    expect(fromA.has(id!) && fromB.has(id!), `common tip ${id} is not a common ancestor`).toBe(true);
  }
  for (const id of common) {
    const version = h.byId.get(id)!;
    expect(tipOf.get(version.branchId), `common ancestor ${id} is above its branch's common tip`).toBeGreaterThanOrEqual(version.seqNo);
  }

  // The merge base: a best common ancestor (no other common ancestor descends from it) with the
  // highest generation of all common ancestors.
  const base = mergeBaseOf(h, result);
  if (common.length === 0) {
    expect(result.commonTips).toEqual([]);
    expect(base).toBeUndefined();
  } else {
    expect(base).toBeDefined();
    expect(common).toContain(base!.id);
    expect(base!.generation).toBe(Math.max(...common.map((id) => h.byId.get(id)!.generation)));
    for (const id of common) {
      if (id !== base!.id) expect(ancestors.get(id)!.has(base!.id), `${base!.id} is an ancestor of common ancestor ${id}`).toBe(false);
    }
  }
}

const sortedRanges = (comparison: ReachComparison) => [...comparison.aheadRanges].sort((x, y) => (x.branchId < y.branchId ? -1 : 1));
const sortedTips = (comparison: ReachComparison) => [...comparison.commonTips].sort((x, y) => (x.branchId < y.branchId ? -1 : 1));

describe('frontiers in random histories', () => {
  it('a frontier holds, for each other branch, the highest seq of an ancestor there (and ancestors are prefixes)', () => {
    fc.assert(
      fc.property(history, (h) => {
        const ancestors = ancestorSets(h);
        for (const version of h.versions) {
          const highest = new Map<string, number>();
          const count = new Map<string, number>();
          for (const id of ancestors.get(version.id)!) {
            const ancestor = h.byId.get(id)!;
            highest.set(ancestor.branchId, Math.max(highest.get(ancestor.branchId) ?? 0, ancestor.seqNo));
            count.set(ancestor.branchId, (count.get(ancestor.branchId) ?? 0) + 1);
          }
          // The model's premise: on every branch, the ancestors are versions 1 … n.
          for (const [branchId, n] of highest) expect(count.get(branchId)).toBe(n);
          expect(highest.get(version.branchId)).toBe(version.seqNo);
          highest.delete(version.branchId);
          expect(version.frontier).toEqual(Object.fromEntries(highest));
          expect(Object.keys(version.frontier)).toEqual(Object.keys(version.frontier).sort());
          expect(Object.fromEntries(reachOf(version))).toEqual({ ...Object.fromEntries(highest), [version.branchId]: version.seqNo });
        }
      }),
      { numRuns: 150 },
    );
  });

  it('compareReach: ahead, behind, aheadRanges, commonTips and the merge base match a brute-force reference', () => {
    fc.assert(
      fc.property(historyAndPair, ({ history: h, a, b }) => {
        const ancestors = ancestorSets(h);
        const result = compareReach(positionOf(a), positionOf(b));
        expectMatchesReference(h, ancestors, a, b, result);
        const swapped = compareReach(positionOf(b), positionOf(a));
        expectMatchesReference(h, ancestors, b, a, swapped);
      }),
      { numRuns: 200 },
    );
  });

  it('compareReach is antisymmetric: swapping the two swaps ahead and behind and keeps the common tips', () => {
    fc.assert(
      fc.property(historyAndPair, ({ a, b }) => {
        const ab = compareReach(positionOf(a), positionOf(b));
        const ba = compareReach(positionOf(b), positionOf(a));
        expect([ba.ahead, ba.behind]).toEqual([ab.behind, ab.ahead]);
        expect(sortedTips(ba)).toEqual(sortedTips(ab));
        // The ranges b has and a lacks are a's "behind": their sizes add up to it.
        expect(ba.aheadRanges.reduce((sum, range) => sum + range.throughSeqNo - range.afterSeqNo, 0)).toBe(ab.behind);
      }),
      { numRuns: 150 },
    );
  });

  it('a version against itself: nothing ahead or behind, the common tips are its whole reach and the base is itself', () => {
    fc.assert(
      fc.property(historyAndPair, ({ history: h, a }) => {
        for (const other of [positionOf(a), { ...positionOf(a), frontier: { ...a.frontier } }]) {
          const result = compareReach(positionOf(a), other);
          expect(result).toMatchObject({ ahead: 0, behind: 0, aheadRanges: [] });
          expect(sortedTips(result)).toEqual(
            [...reachOf(a)].map(([branchId, seqNo]) => ({ branchId, seqNo })).sort((x, y) => (x.branchId < y.branchId ? -1 : 1)),
          );
          expect(mergeBaseOf(h, result)?.id).toBe(a.id);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('an ancestor is ahead by nothing, and is itself the merge base', () => {
    fc.assert(
      fc.property(historyAndPair, ({ history: h, a, b }) => {
        const ancestors = ancestorSets(h);
        const [older, newer] = ancestors.get(a.id)!.has(b.id) ? [b, a] : ancestors.get(b.id)!.has(a.id) ? [a, b] : [undefined, undefined];
        fc.pre(older !== undefined);
        const result = compareReach(positionOf(older!), positionOf(newer!));
        expect(result.ahead).toBe(0);
        expect(result.aheadRanges).toEqual([]);
        expect(result.behind).toBe(ancestors.get(newer!.id)!.size - ancestors.get(older!.id)!.size);
        expect(mergeBaseOf(h, result)?.id).toBe(older!.id);
      }),
      { numRuns: 100 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// frontierOf and frontierBody on arbitrary positions.

const BRANCHES = ['agtbrch_0a', 'agtbrch_1b', 'agtbrch_2c', 'agtbrch_3d', 'agtbrch_4e', 'agtbrch_zz'] as const;
const branchId = fc.constantFrom(...BRANCHES);
const seq = fc.integer({ min: 1, max: 30 });
/** A frontier with its keys in whatever order they were drawn. */
const frontier: fc.Arbitrary<Frontier> = fc
  .uniqueArray(fc.tuple(branchId, seq), { selector: ([key]) => key, maxLength: BRANCHES.length })
  .map((entries) => Object.fromEntries(entries));
const positioned: fc.Arbitrary<Positioned> = fc.record({ branchId, seqNo: seq, frontier });
const frontierCase = fc
  .tuple(branchId, fc.array(positioned, { maxLength: 5 }))
  .chain(([own, parents]) =>
    fc.tuple(fc.constant(own), fc.constant(parents), fc.shuffledSubarray(parents, { minLength: parents.length, maxLength: parents.length })),
  );

describe('frontierOf', () => {
  it('never lists the own branch and keeps, for every other branch, the highest seq any parent reaches', () => {
    fc.assert(
      fc.property(frontierCase, ([own, parents]) => {
        const before = JSON.stringify(parents);
        const result = frontierOf(own, parents);
        expect(JSON.stringify(parents), 'frontierOf changed its input').toBe(before);
        expect(Object.keys(result)).not.toContain(own);
        const expected: Frontier = {};
        for (const parent of parents) {
          for (const [branch, n] of [...Object.entries(parent.frontier), [parent.branchId, parent.seqNo] as const]) {
            if (branch !== own) expected[branch] = Math.max(expected[branch] ?? 0, n);
          }
        }
        expect(result).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('does not depend on the order of the parents, nor on a parent named twice; its keys come out sorted', () => {
    fc.assert(
      fc.property(frontierCase, ([own, parents, shuffled]) => {
        const result = frontierOf(own, parents);
        const reordered = frontierOf(own, shuffled);
        expect(reordered).toEqual(result);
        expect(Object.keys(reordered)).toEqual(Object.keys(result));
        expect(frontierOf(own, [...parents, ...shuffled])).toEqual(result);
        expect(Object.keys(result)).toEqual(Object.keys(result).sort());
        expect(frontierBody(reordered)).toBe(frontierBody(result));
      }),
      { numRuns: 200 },
    );
  });

  it('a version with no parents (main\'s first version, a duplicated agent\'s branches) has an empty frontier', () => {
    expect(frontierOf('agtbrch_main', [])).toEqual({});
    expect(frontierBody(frontierOf('agtbrch_main', []))).toBe('{"f":{}}');
  });

  it('records no branch reached at 0 (none of its versions): the same ancestry gives the same body', () => {
    const parent: Positioned = { branchId: 'agtbrch_b', seqNo: 1, frontier: { agtbrch_c: 0, agtbrch_d: 2 } };
    expect(frontierOf('agtbrch_a', [parent])).toEqual({ agtbrch_b: 1, agtbrch_d: 2 });
    expect(frontierBody(frontierOf('agtbrch_a', [parent]))).toBe(frontierBody({ agtbrch_b: 1, agtbrch_d: 2 }));
  });
});

describe('frontierBody', () => {
  it('is deterministic: the same frontier, whatever the order of its keys, gives the same body, which reads back as it', () => {
    fc.assert(
      fc.property(
        frontier.chain((f) => fc.tuple(fc.constant(f), fc.shuffledSubarray(Object.entries(f), { minLength: Object.keys(f).length, maxLength: Object.keys(f).length }))),
        ([f, entries]) => {
          const body = frontierBody(f);
          expect(frontierBody(Object.fromEntries(entries))).toBe(body);
          expect(frontierBody(f)).toBe(body);
          const read = (JSON.parse(body) as { f: Frontier }).f;
          expect(read).toEqual(f);
          expect(Object.keys(read)).toEqual(Object.keys(f).sort());
        },
      ),
      { numRuns: 200 },
    );
  });

  it('is injective: different frontiers give different bodies', () => {
    fc.assert(
      fc.property(frontier, frontier, (f, g) => {
        const same = JSON.stringify(Object.entries(f).sort()) === JSON.stringify(Object.entries(g).sort());
        expect(frontierBody(f) === frontierBody(g)).toBe(same);
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Concrete cases.

describe('compareReach: concrete cases', () => {
  const MAIN = 'agtbrch_main';
  const FEATURE = 'agtbrch_feat';

  it('a branch cut from main v1 with one commit, against main two versions on: ahead 2 (the first version counts), behind 2', () => {
    const m1: Positioned = { branchId: MAIN, seqNo: 1, frontier: frontierOf(MAIN, []) };
    const m2: Positioned = { branchId: MAIN, seqNo: 2, frontier: frontierOf(MAIN, [m1]) };
    const m3: Positioned = { branchId: MAIN, seqNo: 3, frontier: frontierOf(MAIN, [m2]) };
    const f1: Positioned = { branchId: FEATURE, seqNo: 1, frontier: frontierOf(FEATURE, [m1]) };
    const f2: Positioned = { branchId: FEATURE, seqNo: 2, frontier: frontierOf(FEATURE, [f1]) };
    expect(f2.frontier).toEqual({ [MAIN]: 1 });
    expect(m3.frontier).toEqual({});

    const result = compareReach(f2, m3);
    expect(result).toEqual({
      ahead: 2,
      behind: 2,
      aheadRanges: [{ branchId: FEATURE, afterSeqNo: 0, throughSeqNo: 2 }],
      commonTips: [{ branchId: MAIN, seqNo: 1 }],
    });
    expect(compareReach(m3, f2)).toMatchObject({
      ahead: 2,
      behind: 2,
      aheadRanges: [{ branchId: MAIN, afterSeqNo: 1, throughSeqNo: 3 }],
      commonTips: [{ branchId: MAIN, seqNo: 1 }],
    });
  });

  it('disjoint histories (two roots on different branches): no common tips, every version on each side counts', () => {
    const x = { branchId: 'agtbrch_x', seqNo: 4, frontier: {} };
    const y = { branchId: 'agtbrch_y', seqNo: 7, frontier: {} };
    expect(compareReach(x, y)).toEqual({
      ahead: 4,
      behind: 7,
      aheadRanges: [{ branchId: 'agtbrch_x', afterSeqNo: 0, throughSeqNo: 4 }],
      commonTips: [],
    });
    // And a branch cut from one root knows nothing of the other.
    const x2 = { branchId: 'agtbrch_x2', seqNo: 1, frontier: frontierOf('agtbrch_x2', [x]) };
    expect(compareReach(x2, y)).toMatchObject({ ahead: 5, behind: 7, commonTips: [] });
  });

  it('a branch merged back into main and then continued: the base is the merged version', () => {
    const m = (n: number): Positioned => ({ branchId: MAIN, seqNo: n, frontier: {} });
    const f = (n: number): Positioned => ({ branchId: FEATURE, seqNo: n, frontier: { [MAIN]: 10 } });
    const merge: Positioned = { branchId: MAIN, seqNo: 21, frontier: frontierOf(MAIN, [m(20), f(10)]) };
    expect(merge.frontier).toEqual({ [FEATURE]: 10 });
    const result = compareReach(f(12), merge);
    expect(result).toMatchObject({ ahead: 2, behind: 11, aheadRanges: [{ branchId: FEATURE, afterSeqNo: 10, throughSeqNo: 12 }] });
    expect(sortedTips(result)).toEqual([
      { branchId: FEATURE, seqNo: 10 },
      { branchId: MAIN, seqNo: 10 },
    ]);
  });

  it('a long-lived branch brought up to date with a 100,000-version main: the answer needs only the two positions', () => {
    const main = (n: number): Positioned => ({ branchId: MAIN, seqNo: n, frontier: {} });
    const b1: Positioned = { branchId: FEATURE, seqNo: 1, frontier: frontierOf(FEATURE, [main(5)]) };
    const b2: Positioned = { branchId: FEATURE, seqNo: 2, frontier: frontierOf(FEATURE, [b1]) };
    const rebased: Positioned = { branchId: FEATURE, seqNo: 3, frontier: frontierOf(FEATURE, [b2, main(99_990)]) };
    expect(rebased.frontier).toEqual({ [MAIN]: 99_990 });
    expect(compareReach(rebased, main(100_000))).toEqual({
      ahead: 3,
      behind: 10,
      aheadRanges: [{ branchId: FEATURE, afterSeqNo: 0, throughSeqNo: 3 }],
      commonTips: [{ branchId: MAIN, seqNo: 99_990 }],
    });
  });

  it('criss-cross merges: the two merges are one ahead and one behind, and the base is the newer of the crossed heads', () => {
    // main r1 ← r2 ← r3; feature p1 cut from r1; s = feature merges main's r3, t = main merges p1.
    const r = (n: number): Positioned => ({ branchId: MAIN, seqNo: n, frontier: {} });
    const p1: Positioned = { branchId: FEATURE, seqNo: 1, frontier: frontierOf(FEATURE, [r(1)]) };
    const s: Positioned = { branchId: FEATURE, seqNo: 2, frontier: frontierOf(FEATURE, [p1, r(3)]) };
    const t: Positioned = { branchId: MAIN, seqNo: 4, frontier: frontierOf(MAIN, [r(3), p1]) };
    for (const [a, b] of [
      [s, t],
      [t, s],
    ]) {
      const result = compareReach(a, b);
      expect(result).toMatchObject({ ahead: 1, behind: 1, aheadRanges: [{ branchId: a.branchId, afterSeqNo: a.seqNo - 1, throughSeqNo: a.seqNo }] });
      // Common: main 1–3 and feature 1; generations r3 = 3, p1 = 2, so the base is main#3.
      expect(sortedTips(result)).toEqual([
        { branchId: FEATURE, seqNo: 1 },
        { branchId: MAIN, seqNo: 3 },
      ]);
    }
  });

  it('ranges and tips come out one per branch even when the two reach the same branches', () => {
    const a: Positioned = { branchId: 'agtbrch_a', seqNo: 3, frontier: { agtbrch_b: 5, agtbrch_c: 1 } };
    const b: Positioned = { branchId: 'agtbrch_b', seqNo: 7, frontier: { agtbrch_a: 2, agtbrch_c: 4 } };
    const result = compareReach(a, b);
    expect(sortedRanges(result)).toEqual([{ branchId: 'agtbrch_a', afterSeqNo: 2, throughSeqNo: 3 }]);
    expect(result.ahead).toBe(1);
    expect(result.behind).toBe(2 + 3);
    expect(sortedTips(result)).toEqual([
      { branchId: 'agtbrch_a', seqNo: 2 },
      { branchId: 'agtbrch_b', seqNo: 5 },
      { branchId: 'agtbrch_c', seqNo: 1 },
    ]);
  });
});
