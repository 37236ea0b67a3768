import { accessInfo } from '../workspaces/user-directory.js';
import type { Caller } from '../../domain/caller.js';
import { type AuthoredVersion, parentsOf } from './versions.service.js';

/** Upstream's `AgentVersionMetadata` of a version, as `caller` sees it. */
export function versionMetadataWire({ version, author, mergedAuthors }: AuthoredVersion, caller: Caller) {
  return {
    id: version.id,
    agent_id: version.agent_id,
    branch_id: version.branch_id,
    version_description: version.description,
    seq_no_in_branch: version.seq_no_in_branch,
    time_committed_secs: Math.floor(version.committed_at_ms / 1000),
    parents: parentsOf(version),
    access_info: accessInfo(author, caller),
    merged_authors: mergedAuthors ? mergedAuthors.map((user) => accessInfo(user, caller)) : null,
  };
}
