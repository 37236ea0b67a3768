import type { Kysely } from 'kysely';

import type { Database } from '../../db/schema.js';
import type { Role } from '../../domain/caller.js';
import { ConflictError, ForbiddenError } from '../../errors.js';
import { PER_AGENT_SETTINGS } from '../agents/agent-document.js';
import type { AgentRow } from '../agents/agents.store.js';
import type { Caller } from '../../domain/caller.js';
import { type BranchRow, branchesStore } from './branches.store.js';

/**
 * Whether a user of this role may write to the branch (decisions.md D22): admins always, editors unless
 * the branch is `admin_perms_required`, commenters and viewers never. The one decision behind
 * every write (`assertCanWriteBranch`) and behind which reviews of a merge proposal count.
 */
export function roleCanWriteBranch(role: Role | undefined, branch: Pick<BranchRow, 'protection_status'>): boolean {
  if (role === 'admin') return true;
  return role === 'editor' && branch.protection_status === 'writer_perms_required';
}

/** Who may write to a branch: `roleCanWriteBranch`. */
export function assertCanWriteBranch(caller: Caller, branch: BranchRow): void {
  if (!roleCanWriteBranch(caller.role, branch)) {
    throw new ForbiddenError(
      branch.protection_status === 'admin_perms_required'
        ? `Branch "${branch.name}" is protected: writing to it requires the admin role.`
        : `The ${caller.role} role cannot write to branch "${branch.name}".`,
    );
  }
}

export function assertNotArchived(branch: BranchRow): void {
  if (branch.is_archived) {
    throw new ConflictError('branch_archived', `Branch "${branch.name}" is archived; unarchive it before writing to it.`);
  }
}

/**
 * Agent-wide settings (auth, call limits, privacy, ban, archived) change what main serves,
 * whichever branch a write names: changing them needs write access to main as well.
 */
export async function assertCanChangeAgentSettings(trx: Kysely<Database>, caller: Caller, agent: AgentRow, written?: BranchRow): Promise<void> {
  const main = written?.id === agent.main_branch_id ? written : await branchesStore(trx).findOrThrow(agent.id, agent.main_branch_id);
  if (main.protection_status === 'admin_perms_required' && caller.role !== 'admin') {
    throw new ForbiddenError(
      `Agent-wide settings (${PER_AGENT_SETTINGS.join(', ')}) change what main serves: changing them requires the admin role, ` +
        `since branch "${main.name}" is protected.`,
    );
  }
}
