// The dashboard paths of the agent page, history, versions and diff, and of the screens they link to.

/** Paths in the dashboard (not the API's): what these screens link to. */
export const screenPaths = {
  agent: (agentId: string) => `/agents/${encodeURIComponent(agentId)}`,
  history: (agentId: string) => `/agents/${encodeURIComponent(agentId)}/history`,
  version: (agentId: string, versionId: string) => `/agents/${encodeURIComponent(agentId)}/versions/${encodeURIComponent(versionId)}`,
  diff: (agentId: string, from: string, to: string) =>
    `/agents/${encodeURIComponent(agentId)}/diff?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
  branch: (agentId: string, branchId: string, screen: 'edit' | 'rebase' | 'procedures') =>
    `/agents/${encodeURIComponent(agentId)}/branches/${encodeURIComponent(branchId)}/${screen}`,
  merge: (agentId: string, branchId: string, intoBranchId: string) =>
    `/agents/${encodeURIComponent(agentId)}/branches/${encodeURIComponent(branchId)}/merge?into=${encodeURIComponent(intoBranchId)}`,
  deploy: (agentId: string) => `/agents/${encodeURIComponent(agentId)}/deploy`,
  results: (agentId: string) => `/agents/${encodeURIComponent(agentId)}/results`,
  proposals: (agentId: string) => `/agents/${encodeURIComponent(agentId)}/proposals`,
};
