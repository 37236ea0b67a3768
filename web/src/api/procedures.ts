import { api } from '../api';

// The procedures screen's calls: a branch's procedures and the caller's drafts of them, and
// publishing (a commit: `PATCH agent` on the branch publishes the caller's procedure drafts).

export type ProcedureType = 'free_form' | 'deterministic' | 'folder';

export interface ProcedureListItem {
  procedure_id: string;
  /** null: never published (only the caller's draft). */
  version_id?: string | null;
  name: string;
  type: ProcedureType;
  trigger: string;
  has_draft: boolean;
  folder_parent_id: string | null;
}

export interface ProcedureDraft {
  procedure_id: string;
  name: string;
  content: string;
  type: ProcedureType;
  trigger: string;
}

export interface ProcedureFields {
  name: string;
  content: string;
  type: ProcedureType;
  trigger: string;
}

export const proceduresPath = (agentId: string, branchId: string) =>
  `/v1/convai/agents/${encodeURIComponent(agentId)}/branches/${encodeURIComponent(branchId)}/procedures`;
export const procedurePath = (agentId: string, branchId: string, procedureId: string) =>
  `${proceduresPath(agentId, branchId)}/${encodeURIComponent(procedureId)}`;

export function createProcedure(agentId: string, branchId: string, fields: ProcedureFields): Promise<{ procedure_id: string }> {
  return api('POST', proceduresPath(agentId, branchId), fields);
}

export function saveProcedureDraft(agentId: string, branchId: string, procedureId: string, fields: ProcedureFields): Promise<ProcedureDraft> {
  return api('PATCH', `${procedurePath(agentId, branchId, procedureId)}/draft`, fields);
}

export function discardProcedureDraft(agentId: string, branchId: string, procedureId: string): Promise<unknown> {
  return api('DELETE', `${procedurePath(agentId, branchId, procedureId)}/draft`);
}

export function removeProcedure(agentId: string, branchId: string, procedureId: string): Promise<unknown> {
  return api('DELETE', procedurePath(agentId, branchId, procedureId));
}

/** Publishes the caller's drafts on the branch as one agent version (a commit); returns the branch head after it. */
export function publishProcedures(agentId: string, branchId: string, description: string): Promise<{ version_id: string }> {
  return api('PATCH', `/v1/convai/agents/${encodeURIComponent(agentId)}`, { version_description: description || undefined }, { query: { branch_id: branchId } });
}

