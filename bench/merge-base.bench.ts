// Merge base and ahead/behind on a long history cost what the difference costs, not what the
// history costs (DESIGN §6, §8): main with 100,000 versions and a branch forked after them, ≤ 10
// commits each side, against the same shape on a 10-version main. Run: npm run bench.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { openStore } from '../src/db/connect.js';
import type { Database } from '../src/db/schema.js';
import { compareVersions } from '../src/features/versions/history.js';
import { versionsStore } from '../src/features/versions/versions.store.js';

type VersionRow = Database['versions'];

function version(id: string, branchId: string, seq: number, generation: number, parent: string | null, outOfBranch: string | null = null): VersionRow {
  return {
    id,
    agent_id: 'agent_bench',
    branch_id: branchId,
    seq_no_in_branch: seq,
    in_branch_parent_id: parent,
    out_of_branch_parent_id: outOfBranch,
    merged_from_branch_id: null,
    merged_from_version_id: null,
    merged_into_branch_id: null,
    rebased_from_version_id: null,
    generation,
    description: '',
    author_user_id: 'user_bench',
    committed_at_ms: 0,
    document_hash: 'none',
    merged_author_ids: null,
  };
}

/** A main line of `mainLength` versions, a branch forked at its end, then `tail` commits on each. */
function history(mainLength: number, tail: number): VersionRow[] {
  const rows: VersionRow[] = [];
  for (let i = 1; i <= mainLength; i++) rows.push(version(`m${i}`, 'main', i, i, i > 1 ? `m${i - 1}` : null));
  rows.push(version('b1', 'branch', 1, mainLength + 1, null, `m${mainLength}`));
  for (let i = 2; i <= tail; i++) rows.push(version(`b${i}`, 'branch', i, mainLength + i, `b${i - 1}`));
  for (let i = 1; i <= tail; i++) rows.push(version(`m${mainLength + i}`, 'main', mainLength + i, mainLength + i, `m${mainLength + i - 1}`));
  return rows;
}

async function measure(mainLength: number) {
  const dir = mkdtempSync(path.join(tmpdir(), 'branchwise-bench-'));
  const store = await openStore({ dataDir: dir });
  try {
    const rows = history(mainLength, 10);
    await store.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += 1_000) await trx.insertInto('versions').values(rows.slice(i, i + 1_000)).execute();
    });
    const store_ = versionsStore(store.db);
    const [branchHead, mainHead] = await store_.findMany('agent_bench', ['b10', `m${mainLength + 10}`]);
    const a = branchHead.id === 'b10' ? branchHead : mainHead;
    const b = branchHead.id === 'b10' ? mainHead : branchHead;
    let result = await compareVersions(store.db, 'agent_bench', a, b);
    const runs = 300;
    const started = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) result = await compareVersions(store.db, 'agent_bench', a, b);
    const micros = Number(process.hrtime.bigint() - started) / 1_000 / runs;
    return { micros, result };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchMergeBase(): Promise<{ name: string; value: string; baseline: string; ratio: number; target: string }> {
  const small = await measure(10);
  const large = await measure(100_000);
  if (large.result.mergeBaseId !== 'm100000' || large.result.ahead !== 10 || large.result.behind !== 10) {
    throw new Error(`wrong answer on the long history: ${JSON.stringify(large.result)}`);
  }
  return {
    name: 'merge base + ahead/behind (100,000-version main, 10 commits each side)',
    value: `${large.micros.toFixed(0)} µs (${large.result.visited} versions visited)`,
    baseline: `${small.micros.toFixed(0)} µs on a 10-version main (${small.result.visited} visited)`,
    ratio: large.micros / small.micros,
    target: '≤ 2×',
  };
}
