import type { AppContext } from '../../context.js';
import type { Caller } from '../../domain/caller.js';
import { workspacesStore } from './workspaces.store.js';

export interface Identity {
  caller: Caller;
  workspaceName: string;
}

/** Who a key belongs to, for `GET /v1/convai/whoami` (the dashboard's sign-in). */
export function whoamiService(context: AppContext) {
  const store = workspacesStore(context.db);
  return {
    async identify(caller: Caller): Promise<Identity> {
      const workspace = await store.findWorkspaceById(caller.workspaceId);
      // A caller comes from a key of an existing workspace, and workspaces are never deleted.
      if (!workspace) throw new Error(`the caller's workspace ${caller.workspaceId} does not exist`);
      return { caller, workspaceName: workspace.name };
    },
  };
}
