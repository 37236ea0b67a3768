import { compute, isLarge } from '../../compute/offload.js';
import type { AppContext } from '../../context.js';
import { InvalidRequestError, NotFoundError } from '../../errors.js';
import type { UserSummary } from '../workspaces/user-directory.js';
import type { Caller } from '../../domain/caller.js';
import type { AgentDocument } from '../agents/agent-document.js';
import { agentsStore } from '../agents/agents.store.js';
import { branchesStore } from '../branches/branches.store.js';
import { type AgentHistoryPosition, type VersionRow, versionsStore } from './versions.store.js';

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

/** A version with the users who made it (`undefined`: a user that no longer exists). */
export interface AuthoredVersion {
  version: VersionRow;
  author: UserSummary | undefined;
  /** A merge's: the authors of the merged changes; null for any other version. */
  mergedAuthors: (UserSummary | undefined)[] | null;
}

/** The versions with their authors (upstream's `AgentVersionMetadata` is `versionMetadataWire` of one). */
export async function withAuthors(context: AppContext, versions: VersionRow[]): Promise<AuthoredVersion[]> {
  const mergedAuthors = (version: VersionRow) => (version.merged_author_ids ? (JSON.parse(version.merged_author_ids) as string[]) : []);
  const users = await context.users.describe(versions.flatMap((version) => [version.author_user_id, ...mergedAuthors(version)]));
  return versions.map((version) => ({
    version,
    author: users.get(version.author_user_id),
    mergedAuthors: version.merged_author_ids ? mergedAuthors(version).map((userId) => users.get(userId)) : null,
  }));
}

export function versionsService(context: AppContext) {
  return {
    /** Extension: a branch's versions, newest first, with a cursor (upstream shows only the latest few). */
    async history(caller: Caller, agentId: string, branchId: string, pageSize: number, cursor: string | undefined) {
      const agent = await agentsStore(context.db).findOrThrow(caller.workspaceId, agentId);
      const branch = await branchesStore(context.db).findOrThrow(agent.id, branchId);
      let before: number | undefined;
      if (cursor !== undefined) {
        before = Number(cursor);
        if (!Number.isSafeInteger(before) || before < 1) throw new InvalidRequestError('The cursor is not one this server returned.', 'invalid_cursor');
      }
      const rows = await versionsStore(context.db).page(branch.id, pageSize + 1, before);
      const page = rows.slice(0, pageSize);
      const hasMore = rows.length > pageSize;
      return {
        versions: await withAuthors(context, page),
        hasMore,
        nextCursor: hasMore ? String(page[page.length - 1].seq_no_in_branch) : null,
      };
    },

    /**
     * Extension: the agent's versions on every branch, newest first, with a cursor (the dashboard's
     * version graph). The cursor is the last version's sort key, so pages never repeat or skip a version.
     */
    async agentHistory(caller: Caller, agentId: string, pageSize: number, cursor: string | undefined) {
      const agent = await agentsStore(context.db).findOrThrow(caller.workspaceId, agentId);
      const before = cursor === undefined ? undefined : agentHistoryPositionOf(cursor);
      const rows = await versionsStore(context.db).agentPage(agent.id, pageSize + 1, before);
      const page = rows.slice(0, pageSize);
      const hasMore = rows.length > pageSize;
      const last = page[page.length - 1];
      return {
        versions: await withAuthors(context, page),
        hasMore,
        nextCursor: hasMore ? `${last.committed_at_ms}.${last.generation}.${last.id}` : null,
      };
    },

    /**
     * Extension: what changed between two versions of the agent, path by path, with the path
     * rules of the merge (keyed arrays element by element).
     */
    async diff(caller: Caller, agentId: string, fromVersionId: string, toVersionId: string) {
      const agent = await agentsStore(context.db).findOrThrow(caller.workspaceId, agentId);
      const store = versionsStore(context.db);
      const [from, to] = await Promise.all([store.find(agent.id, fromVersionId), store.find(agent.id, toVersionId)]);
      if (!from) throw new NotFoundError('version', fromVersionId);
      if (!to) throw new NotFoundError('version', toVersionId);
      const stored = await Promise.all([context.documents.load(context.db, from.document_hash), context.documents.load(context.db, to.document_hash)]);
      const [before, after] = stored as unknown as AgentDocument[];
      const changes = await compute(isLarge(before, after), 'diffDocuments', before, after);
      return { from_version_id: from.id, to_version_id: to.id, changes };
    },

    async getMetadata(caller: Caller, agentId: string, versionId: string) {
      const agent = await agentsStore(context.db).findOrThrow(caller.workspaceId, agentId);
      const version = await versionsStore(context.db).findOrThrow(agent.id, versionId);
      const [authored] = await withAuthors(context, [version]);
      return authored;
    },
  };
}

/** A cursor of `agentHistory`: `<committed_at_ms>.<generation>.<id>`, as it returned it. */
function agentHistoryPositionOf(cursor: string): AgentHistoryPosition {
  const match = /^(\d{1,15})\.(\d{1,9})\.(.+)$/.exec(cursor);
  if (!match) throw new InvalidRequestError('The cursor is not one this server returned.', 'invalid_cursor');
  return { committedAtMs: Number(match[1]), generation: Number(match[2]), id: match[3] };
}
