import type { Kysely } from 'kysely';

import type { Database } from '../../db/schema.js';
import { agentsStore } from '../agents/agents.store.js';
import { branchesStore } from '../branches/branches.store.js';
import { BUCKETS, bucketsPerBranch } from '../../domain/traffic-split.js';
import type { LoadedRoutingEntry } from './routing-cache.js';
import { bucketTableOf } from './deployment-writer.js';
import { deploymentsStore } from './deployments.store.js';

/** What the routed read needs of an agent, fresh from the database. */
export async function loadRoutingEntry(db: Kysely<Database>, agentId: string): Promise<LoadedRoutingEntry | undefined> {
  const agent = await agentsStore(db).findById(agentId);
  if (!agent) return undefined;
  const [active, heads] = await Promise.all([deploymentsStore(db).active(agent.id), branchesStore(db).heads(agent.id)]);
  if (!active) throw new Error(`agent ${agent.id} has no active deployment`);
  const table = bucketTableOf(active);
  const shares = new Map([...bucketsPerBranch(table)].map(([branchId, count]) => [branchId, count / BUCKETS]));
  return {
    agent,
    table,
    deployment: { id: active.id, shares },
    heads: new Map(heads.map((head) => [head.branch_id, { versionId: head.version_id, documentHash: head.document_hash }])),
  };
}
