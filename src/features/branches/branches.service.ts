import type { AppContext } from '../../context.js';
import { isUniqueViolation } from '../../db/errors.js';
import { lockAgent, lockBranch } from '../../db/locks.js';
import { deepEqual, type JsonObject } from '../../domain/canonical-json.js';
import { newId } from '../../domain/ids.js';
import { type ConfigSectionName, configSectionsOf } from '../../domain/sections.js';
import { ConflictError, ForbiddenError, RequestValidationError } from '../../errors.js';
import { proceduresOf, withProcedures } from '../agents/agent-document.js';
import { agentSettingsChange, agentSettingsColumns, recordAgentSettingsChange } from '../agents/agent-settings.js';
import { agentsStore } from '../agents/agents.store.js';
import type { ConfigChanges } from '../agents/config-changes.js';
import { prepareChange } from '../agents/prepared-change.js';
import { recordUserAction } from '../audit/audit.events.js';
import { liveShares } from '../deployments/deployments.service.js';
import { draftsStore } from '../drafts/drafts.store.js';
import { closeProposalsOfArchivedBranch } from '../merge-proposals/merge-proposals.store.js';
import { versionDrafts } from '../procedures/procedure-publish.js';
import { assertValidProcedures, callersWorkingSet } from '../procedures/procedure-sets.js';
import { loadDocument } from '../versions/documents.store.js';
import { compareVersions } from '../versions/history.js';
import { startBranch } from '../versions/commit.js';
import { type AuthoredVersion, withAuthors } from '../versions/versions.service.js';
import { versionsStore } from '../versions/versions.store.js';
import type { UserSummary } from '../workspaces/user-directory.js';
import type { Caller } from '../../domain/caller.js';
import { assertCanChangeAgentSettings, assertCanWriteBranch } from './branch-access.js';
import { validateBranchName } from './branch-name.js';
import { type BranchRow, branchesStore, newBranch } from './branches.store.js';

/** How many versions `GET …/branches/{id}` lists in `most_recent_versions` (upstream: undocumented). */
export const MOST_RECENT_VERSIONS = 20;

export interface CreateBranchInput extends Pick<ConfigChanges, ConfigSectionName> {
  parent_version_id: string;
  name: string;
  description: string;
  include_draft: boolean;
}

export interface UpdateBranchInput {
  name?: string | null;
  description?: string | null;
  is_archived?: boolean | null;
  protection_status?: 'writer_perms_required' | 'admin_perms_required' | null;
  auto_rebase?: boolean | null;
}

/** A branch in the list: who made it, its share of live traffic, the caller's draft on it. */
export interface BranchSummary {
  branch: BranchRow;
  /** `undefined`: a user that no longer exists. */
  creator: UserSummary | undefined;
  /** Its percentage of live traffic (0 when it gets none). */
  liveShare: number;
  /** The caller's own draft on the branch, if any. */
  draft: { createdAtMs: number; isBehindTip: boolean } | undefined;
  /** Commits ahead of and behind main; null when they have no common ancestor, `undefined` when not asked for. */
  commitStatus: { ahead: number; behind: number } | null | undefined;
}

/** One branch in full: also its parent branch and its most recent versions, newest first. */
export interface BranchDetail {
  branch: BranchRow;
  creator: UserSummary | undefined;
  liveShare: number;
  parent: BranchRow | undefined;
  recentVersions: AuthoredVersion[];
}

export function branchesService(context: AppContext) {
  const { db } = context;

  async function branchDetail(branch: BranchRow): Promise<BranchDetail> {
    const [users, versions, parent, shares] = await Promise.all([
      context.users.describe([branch.created_by_user_id]),
      versionsStore(db).recent(branch.id, MOST_RECENT_VERSIONS),
      branch.parent_branch_id ? branchesStore(db).find(branch.agent_id, branch.parent_branch_id) : undefined,
      liveShares(db, branch.agent_id),
    ]);
    return {
      branch,
      creator: users.get(branch.created_by_user_id),
      liveShare: shares.get(branch.id) ?? 0,
      parent,
      recentVersions: await withAuthors(context, versions),
    };
  }

  /** `git rev-list --count` each way between every branch head and main's head (decisions.md D11). */
  async function commitStatusAgainstMain(agentId: string, mainBranchId: string, branches: BranchRow[]) {
    const store = versionsStore(db);
    const main = await branchesStore(db).find(agentId, mainBranchId);
    const heads = await store.findMany(agentId, [...new Set([...branches.map((branch) => branch.head_version_id), main!.head_version_id])]);
    const byId = new Map(heads.map((head) => [head.id, head]));
    const mainHead = byId.get(main!.head_version_id)!;
    const status = new Map<string, { ahead: number; behind: number } | null>();
    for (const branch of branches) {
      const comparison = await compareVersions(context, db, byId.get(branch.head_version_id)!, mainHead);
      // No common ancestor (a duplicated agent's branches): null, "could not be computed", as upstream.
      status.set(branch.id, comparison.mergeBaseId ? { ahead: comparison.ahead, behind: comparison.behind } : null);
    }
    return status;
  }

  return {
    async list(
      caller: Caller,
      agentId: string,
      options: { includeArchived: boolean; limit: number; includeCommitStatus: boolean },
    ): Promise<{ total: number; branches: BranchSummary[] }> {
      const agent = await agentsStore(db).findOrThrow(caller.workspaceId, agentId);
      const store = branchesStore(db);
      const [branches, total, shares, drafts] = await Promise.all([
        store.list(agent.id, { includeArchived: options.includeArchived, limit: options.limit }),
        store.count(agent.id, options.includeArchived),
        liveShares(db, agent.id),
        draftsStore(db).listOfUser(agent.id, caller.userId),
      ]);
      const users = await context.users.describe(branches.map((branch) => branch.created_by_user_id));
      const commitStatus = options.includeCommitStatus ? await commitStatusAgainstMain(agent.id, agent.main_branch_id, branches) : undefined;
      const draftByBranch = new Map(drafts.map((draft) => [draft.branch_id, draft]));
      return {
        total,
        branches: branches.map((branch) => {
          const draft = draftByBranch.get(branch.id);
          return {
            branch,
            creator: users.get(branch.created_by_user_id),
            liveShare: shares.get(branch.id) ?? 0,
            draft: draft ? { createdAtMs: draft.created_at_ms, isBehindTip: draft.based_on_seq_no < branch.head_seq_no } : undefined,
            commitStatus: commitStatus ? (commitStatus.get(branch.id) ?? null) : undefined,
          };
        }),
      };
    },

    async get(caller: Caller, agentId: string, branchId: string): Promise<BranchDetail> {
      const agent = await agentsStore(db).findOrThrow(caller.workspaceId, agentId);
      const branch = await branchesStore(db).findOrThrow(agent.id, branchId);
      return branchDetail(branch);
    },

    /** A new branch whose first version is `parent_version_id`'s config with the given changes. */
    async create(caller: Caller, agentId: string, input: CreateBranchInput) {
      const name = validateBranchName(input.name, ['body', 'name']);
      return context.write(async (scope) => {
        const { trx, publish } = scope;
        const found = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        // Agent-wide settings in the body change the agent: read it under the agent lock, as a commit does.
        if (input.platform_settings) await lockAgent(trx, found.id);
        const agent = input.platform_settings ? await agentsStore(trx).findOrThrow(caller.workspaceId, agentId) : found;
        const parent = await versionsStore(trx).find(agent.id, input.parent_version_id);
        if (!parent) {
          throw RequestValidationError.at(
            ['body', 'parent_version_id'],
            `Version ${JSON.stringify(input.parent_version_id)} is not a version of agent ${agent.id}.`,
          );
        }
        const parentBranch = input.include_draft ? await branchesStore(trx).findOrThrow(agent.id, parent.branch_id) : undefined;
        if (parentBranch && parentBranch.head_version_id !== parent.id) {
          throw RequestValidationError.at(
            ['body', 'include_draft'],
            'include_draft requires parent_version_id to be the tip of its branch.',
          );
        }
        const holder = await branchesStore(trx).findByNameKey(agent.id, name);
        if (holder) throw takenName(name, holder);
        const base = await loadDocument(context, trx, parent);
        const currentSettings = JSON.parse(agent.agent_settings) as JsonObject;
        const next = await prepareChange(
          context.documents,
          { document: base, agentSettings: currentSettings },
          configSectionsOf(input),
        );
        const settingsChange = agentSettingsChange(currentSettings, next.agentSettings);
        // A body that reads the same as the parent (a read sent back) keeps the parent's document as stored.
        let prepared = next.same ? await context.documents.prepare(base) : next.prepared;
        if (parentBranch) {
          // include_draft: the caller's procedure drafts on the parent (validated, versioned, left in place) instead of its tip's.
          const { published, drafts } = await callersWorkingSet(context, trx, agent.id, parentBranch, caller.userId);
          const { map, set } = await versionDrafts(context, trx, caller, agent.id, published, drafts);
          assertValidProcedures(set, next.document.conversation_config);
          if (!deepEqual(map, proceduresOf(base))) prepared = await context.documents.prepare(withProcedures(next.document, map));
        }
        const now = context.now();
        const branchId = newId('agtbrch_', now);
        if (settingsChange) {
          // Not versioned: they change the agent at once, as a commit on any branch does.
          await assertCanChangeAgentSettings(trx, caller, agent);
          publish({ kind: 'agent', agentId: agent.id });
          await agentsStore(trx).update(agent.id, { ...agentSettingsColumns(next.agentSettings), updated_at_ms: now });
          await recordAgentSettingsChange(trx, caller, now, agent.id, branchId, settingsChange);
        }
        const version = await startBranch(
          scope,
          context,
          caller,
          newBranch({ id: branchId, agent_id: agent.id, name, description: input.description, parent_branch_id: parent.branch_id }, caller.userId, now),
          { prepared, description: '', parents: { out_of_branch_parent_id: parent.id }, parentRows: [parent] },
        );
        await recordUserAction(trx, caller, now, {
          action: 'branch.create',
          agentId: agent.id,
          resourceId: branchId,
          details: { name, parent_version_id: parent.id, parent_branch_id: parent.branch_id, version_id: version.id },
        });
        return { created_branch_id: branchId, created_version_id: version.id };
      }).catch(rethrowTakenName(input.name));
    },

    async update(caller: Caller, agentId: string, branchId: string, input: UpdateBranchInput) {
      const { branch } = await context.write(async ({ trx, publish }) => {
        const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        await branchesStore(trx).findOrThrow(agent.id, branchId);
        // Archiving checks the live split: hold the agent lock that deployments take.
        await lockAgent(trx, agent.id);
        await lockBranch(trx, branchId);
        const branch = await branchesStore(trx).findOrThrow(agent.id, branchId);
        const isMain = branch.id === agent.main_branch_id;
        assertCanWriteBranch(caller, branch);
        const changes: Partial<BranchRow> = {};

        // A name sent back unchanged is no rename (even one stored before today's rules).
        const name = input.name == null || input.name === branch.name ? undefined : validateBranchName(input.name, ['body', 'name']);
        if (name !== undefined && name !== branch.name) {
          const holder = await branchesStore(trx).findByNameKey(agent.id, name);
          if (holder && holder.id !== branch.id) throw takenName(name, holder);
          changes.name = name;
        }
        if (input.description != null) {
          if (input.description.length > 4096) {
            throw RequestValidationError.at(['body', 'description'], 'String should have at most 4096 characters', 'string_too_long');
          }
          changes.description = input.description;
        }
        if (input.protection_status != null && input.protection_status !== branch.protection_status) {
          if (caller.role !== 'admin') throw new ForbiddenError('Changing a branch\'s protection requires the admin role.');
          changes.protection_status = input.protection_status;
        }
        if (input.auto_rebase != null) {
          if (input.auto_rebase && isMain) {
            throw RequestValidationError.at(['body', 'auto_rebase'], 'auto_rebase cannot be enabled on the main branch.');
          }
          changes.auto_rebase = input.auto_rebase ? 1 : 0;
        }
        if (input.is_archived != null && (input.is_archived ? 1 : 0) !== branch.is_archived) {
          if (input.is_archived) {
            if (isMain) throw new ConflictError('cannot_archive_main_branch', 'The main branch cannot be archived.');
            const share = (await liveShares(trx, agent.id)).get(branch.id) ?? 0;
            if (share > 0) {
              throw new ConflictError(
                'branch_has_live_traffic',
                `Branch "${branch.name}" has ${share}% of live traffic; deploy a split without it before archiving it.`,
              );
            }
          }
          changes.is_archived = input.is_archived ? 1 : 0;
        }
        await branchesStore(trx).update(branch.id, changes);
        if (changes.is_archived === 1) await closeProposalsOfArchivedBranch(trx, branch.id, caller.userId, context.now());
        const audited = branchUpdateDetails(branch, changes);
        if (audited) await recordUserAction(trx, caller, context.now(), { action: 'branch.update', agentId: agent.id, resourceId: branch.id, details: audited });
        publish({ kind: 'agent', agentId: agent.id });
        return { branch: { ...branch, ...changes } };
      }).catch(rethrowTakenName(input.name ?? ''));
      return branchDetail(branch);
    },
  };
}

/** Fields of a branch update whose old and new values the audit log shows (a description can be long: named only). */
const AUDITED_BRANCH_FIELDS = ['name', 'protection_status', 'auto_rebase', 'is_archived'] as const;

/** What a branch update changed, for its audit event; undefined when it changed nothing. */
function branchUpdateDetails(branch: BranchRow, changes: Partial<BranchRow>): JsonObject | undefined {
  const changed = (Object.keys(changes) as (keyof BranchRow)[]).filter((field) => changes[field] !== branch[field]);
  if (changed.length === 0) return undefined;
  const wire = (field: (typeof AUDITED_BRANCH_FIELDS)[number], row: Partial<BranchRow>) =>
    field === 'auto_rebase' || field === 'is_archived' ? row[field] === 1 : (row[field] as string);
  const shown = AUDITED_BRANCH_FIELDS.filter((field) => changed.includes(field));
  return {
    changed: changed.sort(),
    before: Object.fromEntries(shown.map((field) => [field, wire(field, branch)])),
    after: Object.fromEntries(shown.map((field) => [field, wire(field, changes)])),
  };
}

function takenName(name: string, holder: BranchRow): ConflictError {
  const alike = holder.name === name ? '' : ` ("${holder.name}": names that differ only in case, width, accents' encoding or spaces are the same name)`;
  return new ConflictError('resource_already_exists', `A branch named "${name}" already exists on this agent${alike}.`);
}

/** Two writers racing for one name (or two look-alikes): the unique key decides, and the loser gets a clean 409. */
function rethrowTakenName(name: string) {
  return (error: unknown): never => {
    if (isUniqueViolation(error)) {
      throw new ConflictError('resource_already_exists', `A branch named "${name}" already exists on this agent.`);
    }
    throw error;
  };
}
