import { api } from '../api';

// The deploy screen's calls: the agent's branches, its deployments (history, deploy, rollback) and
// the movement preview (`POST …/deployments/preview`, an extension of the API). Wire shapes are the
// fields the screen uses, as the API sends them.

export interface BranchSummary {
  id: string;
  name: string;
  is_archived: boolean;
  protection_status?: 'writer_perms_required' | 'admin_perms_required';
  current_live_percentage: number;
}

export interface DeploymentHistoryItem {
  id: string;
  traffic_percentage_branch_id_map: Record<string, number>;
  deployed_at_unix_secs: number;
  is_active: boolean;
  source?: string;
  access_info?: { creator_name?: string | null; creator_email?: string | null } | null;
}

export interface DeploymentHistoryPage {
  meta: { total: number; page: number; page_size: number };
  results: DeploymentHistoryItem[];
}

export interface DeploymentPreview {
  active_deployment_id: string;
  current_traffic_percentage_branch_id_map: Record<string, number>;
  traffic_percentage_branch_id_map: Record<string, number>;
  moved_percentage: number;
  movements: { from_branch_id: string; to_branch_id: string; percentage: number }[];
}

/** A split as the editor holds it: branch id → percentage, in the order the branches are listed. */
export type Split = [branchId: string, percentage: number][];

const agentPath = (agentId: string) => `/v1/convai/agents/${encodeURIComponent(agentId)}`;

export const branchesPath = (agentId: string) => `${agentPath(agentId)}/branches`;
export const deploymentsPath = (agentId: string) => `${agentPath(agentId)}/deployments`;

function deploymentBody(split: Split) {
  return {
    deployment_request: {
      requests: split.map(([branchId, percentage]) => ({
        branch_id: branchId,
        deployment_strategy: { type: 'percentage', traffic_percentage: percentage },
      })),
    },
  };
}

export function previewDeployment(agentId: string, split: Split, signal?: AbortSignal): Promise<DeploymentPreview> {
  return api<DeploymentPreview>('POST', `${deploymentsPath(agentId)}/preview`, deploymentBody(split), { signal });
}

export function previewRollback(agentId: string, deploymentId: string, signal?: AbortSignal): Promise<DeploymentPreview> {
  return api<DeploymentPreview>('POST', `${deploymentsPath(agentId)}/${encodeURIComponent(deploymentId)}/rollback/preview`, undefined, { signal });
}

export function deploy(agentId: string, split: Split): Promise<{ traffic_percentage_branch_id_map: Record<string, number> }> {
  return api('POST', deploymentsPath(agentId), deploymentBody(split));
}

export function rollBack(agentId: string, deploymentId: string): Promise<DeploymentHistoryItem> {
  return api<DeploymentHistoryItem>('POST', `${deploymentsPath(agentId)}/${encodeURIComponent(deploymentId)}/rollback`);
}
