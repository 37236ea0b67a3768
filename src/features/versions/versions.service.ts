import type { Kysely } from 'kysely';

import type { AppContext } from '../../context.js';
import type { Database } from '../../db/schema.js';
import { newId } from '../../domain/ids.js';
import { NotFoundError } from '../../http/errors.js';
import { accessInfo } from '../workspaces/user-directory.js';
import type { Caller } from '../workspaces/workspaces.store.js';
import type { PreparedDocument } from './documents.store.js';
import { type VersionRow, versionsStore } from './versions.store.js';

export interface VersionParents {
  in_branch_parent_id: string | null;
  out_of_branch_parent_id: string | null;
  merged_into_branch_id: string | null;
  merged_from_branch_id: string | null;
  merged_from_version_id: string | null;
  rebased_from_version_id: string | null;
}

export const NO_PARENTS: VersionParents = {
  in_branch_parent_id: null,
  out_of_branch_parent_id: null,
  merged_into_branch_id: null,
  merged_from_branch_id: null,
  merged_from_version_id: null,
  rebased_from_version_id: null,
};

export interface VersionDraft {
  agentId: string;
  branchId: string;
  /** 1 for a branch's first version, else the locked head's number + 1. */
  seqNo: number;
  prepared: PreparedDocument;
  description: string;
  authorUserId: string;
  parents: Partial<VersionParents>;
  /** The versions named in `parents`, for the generation number. */
  parentRows: VersionRow[];
  committedAtMs: number;
}

/**
 * Writes a version and its document. The caller holds the branch lock and moves the head;
 * the unique key (branch_id, seq_no_in_branch) refuses a duplicate number if it did not.
 */
export async function insertVersion(trx: Kysely<Database>, context: AppContext, draft: VersionDraft): Promise<VersionRow> {
  await context.documents.write(trx, draft.prepared);
  const row: VersionRow = {
    id: newId('agtvrsn_', draft.committedAtMs),
    agent_id: draft.agentId,
    branch_id: draft.branchId,
    seq_no_in_branch: draft.seqNo,
    ...NO_PARENTS,
    ...draft.parents,
    generation: Math.max(0, ...draft.parentRows.map((parent) => parent.generation)) + 1,
    description: draft.description,
    author_user_id: draft.authorUserId,
    committed_at_ms: draft.committedAtMs,
    document_hash: draft.prepared.rootHash,
  };
  await versionsStore(trx).insert(row);
  return row;
}

export function parentsOf(version: VersionRow): VersionParents {
  return {
    in_branch_parent_id: version.in_branch_parent_id,
    out_of_branch_parent_id: version.out_of_branch_parent_id,
    merged_into_branch_id: version.merged_into_branch_id,
    merged_from_branch_id: version.merged_from_branch_id,
    merged_from_version_id: version.merged_from_version_id,
    rebased_from_version_id: version.rebased_from_version_id,
  };
}

/** Upstream's `AgentVersionMetadata` for a list of versions. */
export async function renderVersionMetadata(context: AppContext, versions: VersionRow[], caller: Caller) {
  const users = await context.users.describe(versions.map((version) => version.author_user_id));
  return versions.map((version) => ({
    id: version.id,
    agent_id: version.agent_id,
    branch_id: version.branch_id,
    version_description: version.description,
    seq_no_in_branch: version.seq_no_in_branch,
    time_committed_secs: Math.floor(version.committed_at_ms / 1000),
    parents: parentsOf(version),
    access_info: accessInfo(users.get(version.author_user_id), caller),
    merged_authors: null,
  }));
}

export function versionsService(context: AppContext) {
  return {
    async getMetadata(caller: Caller, agentId: string, versionId: string) {
      const agent = await context.db
        .selectFrom('agents')
        .select('id')
        .where('id', '=', agentId)
        .where('workspace_id', '=', caller.workspaceId)
        .executeTakeFirst();
      if (!agent) throw new NotFoundError('agent', agentId);
      const version = await versionsStore(context.db).find(agentId, versionId);
      if (!version) throw new NotFoundError('version', versionId);
      const [metadata] = await renderVersionMetadata(context, [version], caller);
      return metadata;
    },
  };
}
