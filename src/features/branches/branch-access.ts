import type { Role } from '../../domain/caller.js';
import type { BranchRow } from './branches.store.js';

/**
 * Whether a user of this role may write to the branch (DESIGN §5): admins always, editors unless
 * the branch is `admin_perms_required`, commenters and viewers never. The one decision behind
 * every write (`assertCanWriteBranch`) and behind which reviews of a merge proposal count.
 */
export function roleCanWriteBranch(role: Role | undefined, branch: Pick<BranchRow, 'protection_status'>): boolean {
  if (role === 'admin') return true;
  return role === 'editor' && branch.protection_status === 'writer_perms_required';
}
