import { api } from '../api';

// The agent page, history, diff and restore: the calls and the wire shapes they use (snake_case,
// as the API sends them; only the fields these screens read).

const agentPath = (agentId: string) => `/v1/convai/agents/${encodeURIComponent(agentId)}`;
const branchPath = (agentId: string, branchId: string) => `${agentPath(agentId)}/branches/${encodeURIComponent(branchId)}`;

/** An item of `GET …/branches?include_commit_status=true` (upstream's AgentBranchSummary). */
export interface BranchSummary {
  id: string;
  name: string;
  description: string;
  created_at: number;
  last_committed_at: number;
  is_archived: boolean;
  protection_status: 'writer_perms_required' | 'admin_perms_required';
  current_live_percentage: number;
  parent_branch_id?: string | null;
  draft_exists: boolean;
  draft_created_at?: number | null;
  draft_is_behind_tip: boolean;
  commits_ahead?: number | null;
  commits_behind?: number | null;
  access_info?: { creator_name?: string | null } | null;
  /** Extension: the branch's newest version. */
  head_version_id: string;
  head_seq_no_in_branch: number;
}
export interface BranchList {
  meta: { total: number };
  results: BranchSummary[];
}

/** Upstream's AgentVersionMetadata. */
export interface AgentVersion {
  id: string;
  branch_id: string;
  version_description: string;
  seq_no_in_branch: number;
  time_committed_secs: number;
  parents: {
    in_branch_parent_id?: string | null;
    out_of_branch_parent_id?: string | null;
    merged_from_branch_id?: string | null;
    merged_from_version_id?: string | null;
    rebased_from_version_id?: string | null;
  };
  access_info?: { creator_name?: string | null; creator_email?: string | null } | null;
}
export interface VersionPage {
  versions: AgentVersion[];
  has_more: boolean;
  next_cursor: string | null;
}

/** `GET agent` (at a version): the stored config, and where the agent's main branch is. */
export interface AgentConfig {
  agent_id: string;
  name: string;
  main_branch_id?: string | null;
  branch_id?: string | null;
  version_id?: string | null;
  conversation_config?: unknown;
  platform_settings?: unknown;
  workflow?: unknown;
  tags?: string[];
  procedures?: unknown;
}

export interface DiffChange {
  section: string;
  path: string;
  before: unknown;
  after: unknown;
  kind: 'added' | 'removed' | 'changed';
}
export interface VersionDiff {
  from_version_id: string;
  to_version_id: string;
  changes: DiffChange[];
}

export const branchesPath = (agentId: string) => `${agentPath(agentId)}/branches`;
export const agentConfigPath = agentPath;
export const diffPath = (agentId: string) => `${agentPath(agentId)}/diff`;
export const versionPath = (agentId: string, versionId: string) => `${agentPath(agentId)}/versions/${encodeURIComponent(versionId)}`;

/** The agent's versions on every branch, newest first (extension; page_size at most 100). */
export function listAgentVersions(agentId: string, cursor: string | undefined, pageSize: number, signal?: AbortSignal): Promise<VersionPage> {
  return api<VersionPage>('GET', `${agentPath(agentId)}/versions`, undefined, { query: { page_size: pageSize, cursor }, signal });
}

export function diffVersions(agentId: string, fromVersionId: string, toVersionId: string, signal?: AbortSignal): Promise<VersionDiff> {
  return api<VersionDiff>('GET', diffPath(agentId), undefined, { query: { from_version_id: fromVersionId, to_version_id: toVersionId }, signal });
}

export function createBranch(agentId: string, body: { parent_version_id: string; name: string; description: string }): Promise<{ created_branch_id: string }> {
  return api('POST', branchesPath(agentId), body);
}

export function updateBranch(
  agentId: string,
  branchId: string,
  patch: { is_archived?: boolean; protection_status?: BranchSummary['protection_status'] },
): Promise<unknown> {
  return api('PATCH', branchPath(agentId, branchId), patch);
}

/** Commits a new version to `branchId` whose config is `versionId`'s (extension); returns the agent at it. */
export function restoreVersion(agentId: string, branchId: string, versionId: string): Promise<AgentConfig> {
  return api<AgentConfig>('POST', `${branchPath(agentId, branchId)}/restore`, { version_id: versionId });
}
