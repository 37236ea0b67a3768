import { api } from '../api';

// The calls and wire shapes of the edit, merge/rebase and merge-proposal screens: the public API
// (plus the documented extensions `GET …/drafts` and `GET …/diff`), snake_case as the server sends it.

import type { EditableConfig, Json, JsonObject } from '../config-patch';

export type { EditableConfig, Json, JsonObject };

/** GET agent (a branch head or a version), the fields these screens use. */
export interface AgentConfig extends EditableConfig {
  agent_id: string;
  version_id: string;
  branch_id: string;
  main_branch_id: string;
}

export interface Branch {
  id: string;
  name: string;
  is_archived: boolean;
  draft_exists?: boolean;
  draft_is_behind_tip?: boolean;
}

export interface DraftAnswer {
  branch_id: string;
  head_version_id: string;
  draft: (EditableConfig & { draft_created_at: number; based_on_version_id: string | null; is_behind_tip: boolean }) | null;
}

export interface Change {
  section: string;
  path: string;
  before: Json;
  after: Json;
  kind: 'added' | 'removed' | 'changed';
}

export interface FieldConflict {
  path: string;
  section: string;
  base_value?: Json;
  source_value?: Json;
  target_value?: Json;
}

export interface Preview extends EditableConfig {
  overridden_fields?: string[];
  conflicts?: FieldConflict[];
  source_identical_to_target?: boolean;
  target_version_id?: string;
  merge_base_version_id?: string;
}

export type Resolution = 'source' | 'target' | { value: Json };

export interface MergeResult {
  version_id: string;
  target_branch_id: string;
  merged_from_version_id: string;
  source_archived: boolean;
  moved_traffic_percentage: number;
  overridden_fields: string[];
}

export interface RebaseResult {
  version_id: string;
  branch_id: string;
  rebased_onto_version_id: string;
  overridden_fields: string[];
}

export interface Review {
  user_id: string;
  state: 'approved' | 'changes_requested';
  submitted_at: number;
  comment: string;
  reviewer_role?: string;
  source_version_id?: string;
  is_stale?: boolean;
}

export interface Proposal {
  id: string;
  agent_id: string;
  source_branch_id: string;
  target_branch_id: string;
  source_tip_version_id_at_creation: string;
  title: string;
  description: string;
  requested_reviewer_user_ids: string[];
  reviews: Review[];
  comments: { id: string; user_id: string; body: string; created_at: number }[];
  outcome: { status: 'open' } | { status: 'merged'; at: number; version_id: string; by_user_id: string } | { status: 'closed'; at: number; reason: string; by_user_id: string };
  created_at: number;
  updated_at: number;
  author_user_id: string;
}

export interface ProposalPage {
  results: Proposal[];
  has_more: boolean;
  next_cursor?: string | null;
}

const agentPath = (agentId: string) => `/v1/convai/agents/${encodeURIComponent(agentId)}`;
const branchPath = (agentId: string, branchId: string) => `${agentPath(agentId)}/branches/${encodeURIComponent(branchId)}`;
const proposalPath = (agentId: string, proposalId: string) => `${agentPath(agentId)}/merge-proposals/${encodeURIComponent(proposalId)}`;

export const paths = {
  agent: agentPath,
  branches: (agentId: string) => `${agentPath(agentId)}/branches`,
  draft: (agentId: string) => `${agentPath(agentId)}/drafts`,
  diff: (agentId: string) => `${agentPath(agentId)}/diff`,
  mergePreview: (agentId: string, branchId: string) => `${branchPath(agentId, branchId)}/merge-preview`,
  rebasePreview: (agentId: string, branchId: string) => `${branchPath(agentId, branchId)}/rebase-preview`,
  proposals: (agentId: string) => `${agentPath(agentId)}/merge-proposals`,
  proposal: proposalPath,
};

/** The editable parts of an agent answer (or a draft), nothing else. */
export function editableOf(config: EditableConfig): EditableConfig {
  return {
    name: config.name,
    tags: config.tags ?? [],
    conversation_config: config.conversation_config ?? {},
    platform_settings: config.platform_settings ?? {},
    workflow: config.workflow ?? {},
  };
}

export function getBranchHead(agentId: string, branchId: string): Promise<AgentConfig> {
  return api<AgentConfig>('GET', agentPath(agentId), undefined, { query: { branch_id: branchId } });
}

export function getVersion(agentId: string, versionId: string): Promise<AgentConfig> {
  return api<AgentConfig>('GET', agentPath(agentId), undefined, { query: { version_id: versionId } });
}

export function getDraft(agentId: string, branchId: string): Promise<DraftAnswer> {
  return api<DraftAnswer>('GET', paths.draft(agentId), undefined, { query: { branch_id: branchId } });
}

export function saveDraft(agentId: string, branchId: string, config: EditableConfig): Promise<{ branch_id: string; draft_created_at: number }> {
  return api('POST', paths.draft(agentId), config, { query: { branch_id: branchId } });
}

export function discardDraft(agentId: string, branchId: string): Promise<{ branch_id: string; discarded: boolean }> {
  return api('DELETE', paths.draft(agentId), undefined, { query: { branch_id: branchId } });
}

/** PATCH agent on the branch, refused (409) when its head is no longer `expectedVersionId`. */
export function commitToBranch(agentId: string, branchId: string, expectedVersionId: string, patch: Partial<Record<keyof EditableConfig, Json>>, description: string) {
  return api<AgentConfig>('PATCH', agentPath(agentId), { ...patch, version_description: description || undefined }, {
    query: { branch_id: branchId, expected_version_id: expectedVersionId },
  });
}

export function diffVersions(agentId: string, fromVersionId: string, toVersionId: string): Promise<{ changes: Change[] }> {
  return api('GET', paths.diff(agentId), undefined, { query: { from_version_id: fromVersionId, to_version_id: toVersionId } });
}

export interface MergeOptions {
  force: boolean;
  archiveSource: boolean;
  resolutions: Record<string, Resolution>;
  expectedTargetVersionId?: string;
}

export function merge(agentId: string, sourceBranchId: string, targetBranchId: string, options: MergeOptions): Promise<MergeResult> {
  return api('POST', `${branchPath(agentId, sourceBranchId)}/merge`, {
    force: options.force,
    archive_source_branch: options.archiveSource,
    resolutions: Object.keys(options.resolutions).length > 0 ? options.resolutions : undefined,
    expected_target_version_id: options.expectedTargetVersionId,
  }, { query: { target_branch_id: targetBranchId } });
}

export function rebase(agentId: string, branchId: string): Promise<RebaseResult> {
  return api('POST', `${branchPath(agentId, branchId)}/rebase`);
}

export function createProposal(
  agentId: string,
  body: { source_branch_id: string; target_branch_id: string; title: string; description: string; requested_reviewer_user_ids: string[] },
): Promise<{ created_merge_proposal_id: string }> {
  return api('POST', paths.proposals(agentId), body);
}

export function reviewProposal(agentId: string, proposalId: string, state: Review['state'], comment: string): Promise<Proposal> {
  return api('POST', `${proposalPath(agentId, proposalId)}/reviews`, { state, comment });
}

export function commentOnProposal(agentId: string, proposalId: string, body: string): Promise<Proposal> {
  return api('POST', `${proposalPath(agentId, proposalId)}/comments`, { body });
}

export function mergeProposal(agentId: string, proposalId: string, options: { archiveSource: boolean; force: boolean }): Promise<Proposal> {
  return api('POST', `${proposalPath(agentId, proposalId)}/merge`, { archive_source_branch: options.archiveSource, force: options.force });
}

export function closeProposal(agentId: string, proposalId: string): Promise<Proposal> {
  return api('PATCH', proposalPath(agentId, proposalId), { close: true });
}

export interface WorkspaceUser {
  user_id: string;
  name: string;
  email: string;
  role: 'admin' | 'editor' | 'commenter' | 'viewer';
}

/** The extension `GET /v1/convai/workspace/users`: the caller's workspace's users, by name. */
export const WORKSPACE_USERS_PATH = '/v1/convai/workspace/users';
