import type { Kysely } from 'kysely';

import type { Database } from '../../db/schema.js';
import { newId } from '../../domain/ids.js';
import {
  type BucketTable,
  decodeBucketTable,
  encodeBucketTable,
  nextBucketTable,
  type SplitItem,
} from '../../domain/traffic-split.js';
import { type DeploymentRow, deploymentsStore } from './deployments.store.js';

export interface NewDeployment {
  agentId: string;
  split: SplitItem[];
  source: 'manual' | 'branch_merge';
  authorUserId: string;
  deployedAtMs: number;
  /** A rollback's earlier deployment: conversations go back where they were under it. */
  restoring?: DeploymentRow;
  /** A guarded rollout's step or rollback: which rollout, and why (its history item shows both). */
  guardedRollout?: { id: string; reason: string };
}

export function bucketTableOf(row: DeploymentRow): BucketTable {
  return decodeBucketTable(JSON.parse(row.branch_ids) as string[], row.bucket_table);
}

/** `{branch_id: percentage}` of a deployment, in the order its request listed them. */
export function splitOf(row: DeploymentRow): Record<string, number> {
  return JSON.parse(row.split) as Record<string, number>;
}

/**
 * The bucket table `split` gets when it replaces `active`: what a deployment stores and what its
 * preview shows, computed once, here.
 */
export function bucketTableAfter(active: DeploymentRow | undefined, split: readonly SplitItem[], restoring?: DeploymentRow): BucketTable {
  return nextBucketTable(active ? bucketTableOf(active) : undefined, split, restoring ? bucketTableOf(restoring) : undefined);
}

/**
 * Makes `split` the active deployment of the agent, moving as few buckets as possible from the
 * active one. The caller holds the agent lock (`lockAgent`) and has validated the split; the
 * partial unique index refuses a second active row if it did not.
 */
export async function activateDeployment(trx: Kysely<Database>, deployment: NewDeployment): Promise<DeploymentRow> {
  const store = deploymentsStore(trx);
  const active = await store.active(deployment.agentId);
  const table = bucketTableAfter(active, deployment.split, deployment.restoring);
  const row: DeploymentRow = {
    id: newId('agtdpl_', deployment.deployedAtMs),
    agent_id: deployment.agentId,
    seq_no: (await store.lastSeqNo(deployment.agentId)) + 1,
    split: JSON.stringify(Object.fromEntries(deployment.split.map((item) => [item.branchId, item.percentage]))),
    branch_ids: JSON.stringify(table.branchIds),
    bucket_table: encodeBucketTable(table),
    source: deployment.source,
    author_user_id: deployment.authorUserId,
    deployed_at_ms: deployment.deployedAtMs,
    is_active: 1,
    guarded_rollout_id: deployment.guardedRollout?.id ?? null,
    reason: deployment.guardedRollout?.reason ?? null,
  };
  await store.deactivate(deployment.agentId);
  await store.insert(row);
  return row;
}
