import { createHash } from 'node:crypto';

import type { Kysely } from 'kysely';

// Frozen once landed: add a new numbered migration instead of editing this one. The frontier
// format is spelled out here (not imported) so that this migration never changes.

type Frontier = Record<string, number>;

function body(frontier: Frontier): string {
  const sorted: Frontier = {};
  for (const key of Object.keys(frontier).sort()) sorted[key] = frontier[key];
  return JSON.stringify({ f: sorted });
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}

export async function up(db: Kysely<any>): Promise<void> {
  // Per version: for every other branch in its ancestry, the highest sequence number it reaches
  // (a content-addressed blob; consecutive commits on a branch share it).
  await db.schema.alterTable('versions').addColumn('frontier_hash', 'text').execute();

  const versions = (await db
    .selectFrom('versions')
    .select(['id', 'branch_id', 'seq_no_in_branch', 'in_branch_parent_id', 'out_of_branch_parent_id', 'merged_from_version_id'])
    .orderBy('generation')
    .execute()) as {
    id: string;
    branch_id: string;
    seq_no_in_branch: number;
    in_branch_parent_id: string | null;
    out_of_branch_parent_id: string | null;
    merged_from_version_id: string | null;
  }[];
  const known = new Map<string, { branchId: string; seqNo: number; frontier: Frontier }>();
  const written = new Set<string>();
  for (const version of versions) {
    const frontier: Frontier = {};
    for (const parentId of [version.in_branch_parent_id, version.out_of_branch_parent_id, version.merged_from_version_id]) {
      const parent = parentId ? known.get(parentId) : undefined;
      if (!parent) continue;
      for (const [branchId, seqNo] of Object.entries(parent.frontier)) frontier[branchId] = Math.max(frontier[branchId] ?? 0, seqNo);
      frontier[parent.branchId] = Math.max(frontier[parent.branchId] ?? 0, parent.seqNo);
    }
    delete frontier[version.branch_id];
    known.set(version.id, { branchId: version.branch_id, seqNo: version.seq_no_in_branch, frontier });
    const text = body(frontier);
    const key = hash(text);
    if (!written.has(key)) {
      await db.insertInto('blobs').values({ hash: key, body: text }).onConflict((conflict) => conflict.column('hash').doNothing()).execute();
      written.add(key);
    }
    await db.updateTable('versions').set({ frontier_hash: key }).where('id', '=', version.id).execute();
  }
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
