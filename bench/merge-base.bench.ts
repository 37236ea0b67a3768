// Merge base and ahead/behind cost what the difference costs, not what the history costs
// (decisions.md D11): a 100,000-version main against a 10-version one, for a branch forked after
// main's versions (≤ 10 commits each side) and for a long-lived branch forked near main's start
// that has since been brought up to date. Run: npm run bench.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { createContext } from '../src/context.js';
import { openStore } from '../src/db/connect.js';
import type { Database } from '../src/db/schema.js';
import { frontierOf, type Positioned } from '../src/domain/frontier.js';
import { compareVersions } from '../src/features/versions/history.js';
import { versionsStore } from '../src/features/versions/versions.store.js';
import { createWriteMetrics } from '../src/metrics/write-metrics.js';

type VersionRow = Database['versions'];
type Shape = 'forked-at-tip' | 'long-lived';

/** Versions of the shape, with their frontiers, built the way commits build them. */
function history(mainLength: number, shape: Shape) {
  const rows: (VersionRow & { frontier: Positioned['frontier'] })[] = [];
  const byId = new Map<string, (typeof rows)[number]>();
  const add = (id: string, branchId: string, seq: number, parents: string[], outOfBranch: string | null, merged: string | null) => {
    const parentRows = parents.map((parent) => byId.get(parent)!);
    const frontier = frontierOf(branchId, parentRows.map((parent) => ({ branchId: parent.branch_id, seqNo: parent.seq_no_in_branch, frontier: parent.frontier })));
    const row = {
      id,
      agent_id: 'agent_bench',
      branch_id: branchId,
      seq_no_in_branch: seq,
      in_branch_parent_id: seq > 1 ? parents[0] : null,
      out_of_branch_parent_id: outOfBranch,
      merged_from_branch_id: null,
      merged_from_version_id: merged,
      merged_into_branch_id: null,
      rebased_from_version_id: null,
      generation: Math.max(0, ...parentRows.map((parent) => parent.generation)) + 1,
      description: '',
      author_user_id: 'user_bench',
      committed_at_ms: 0,
      document_hash: 'none',
      merged_author_ids: null,
      frontier_hash: null,
      frontier,
    };
    rows.push(row);
    byId.set(id, row);
  };
  const forkAt = shape === 'forked-at-tip' ? mainLength : Math.min(5, mainLength);
  for (let i = 1; i <= forkAt; i++) add(`m${i}`, 'main', i, i > 1 ? [`m${i - 1}`] : [], null, null);
  add('b1', 'branch', 1, [`m${forkAt}`], `m${forkAt}`, null);
  for (let i = 2; i <= 5; i++) add(`b${i}`, 'branch', i, [`b${i - 1}`], null, null);
  for (let i = forkAt + 1; i <= mainLength; i++) add(`m${i}`, 'main', i, [`m${i - 1}`], null, null);
  if (shape === 'long-lived') add('b6', 'branch', 6, ['b5', `m${mainLength}`], `m${mainLength}`, null);
  for (let i = shape === 'long-lived' ? 7 : 6; i <= 10; i++) add(`b${i}`, 'branch', i, [`b${i - 1}`], null, null);
  for (let i = mainLength + 1; i <= mainLength + 10; i++) add(`m${i}`, 'main', i, [`m${i - 1}`], null, null);
  return rows;
}

async function measure(mainLength: number, shape: Shape) {
  const dir = mkdtempSync(path.join(tmpdir(), 'branchwise-bench-'));
  const store = await openStore({ dataDir: dir });
  const context = createContext(store, createWriteMetrics());
  try {
    const rows = history(mainLength, shape);
    await store.db.transaction().execute(async (trx) => {
      for (const row of rows) row.frontier_hash = await context.frontiers.write(trx, row.frontier);
      const plain = rows.map(({ frontier: _frontier, ...row }) => row);
      for (let i = 0; i < plain.length; i += 1_000) await trx.insertInto('versions').values(plain.slice(i, i + 1_000)).execute();
    });
    const [a, b] = await versionsStore(store.db).findMany('agent_bench', ['b10', `m${mainLength + 10}`]).then((found) => [
      found.find((row) => row.id === 'b10')!,
      found.find((row) => row.id !== 'b10')!,
    ]);
    let result = await compareVersions(context, store.db, a, b);
    const runs = 500;
    const started = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) result = await compareVersions(context, store.db, a, b);
    return { micros: Number(process.hrtime.bigint() - started) / 1_000 / runs, result };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchMergeBase() {
  const figures = [];
  for (const shape of ['forked-at-tip', 'long-lived'] as const) {
    const small = await measure(10, shape);
    const large = await measure(100_000, shape);
    // Either way main's 100,000th version is the merge base; the branch has 10 versions, main 10 more.
    if (large.result.mergeBaseId !== 'm100000' || large.result.ahead !== 10 || large.result.behind !== 10) {
      throw new Error(`wrong answer on the long history (${shape}): ${JSON.stringify(large.result)}`);
    }
    figures.push({
      name: `merge base + ahead/behind, ${shape === 'forked-at-tip' ? 'branch forked after 100,000 main versions' : 'long-lived branch brought up to date'} (10 commits each side)`,
      value: `${large.micros.toFixed(0)} µs`,
      baseline: `${small.micros.toFixed(0)} µs on a 10-version main`,
      ratio: large.micros / small.micros,
      target: '≤ 2×',
    });
  }
  return figures;
}
