import type { ComponentType } from 'preact';

import { SIGN_IN_PATH } from './paths';
import { AgentsScreen } from './screens/agents';
import { EditScreen } from './screens/edit';
import { MergeScreen, RebaseScreen } from './screens/merge';
import { ProposalScreen, ProposalsScreen } from './screens/proposals';
import { SignInScreen } from './screens/sign-in';

// Every screen of the dashboard, in one list: its path (preact-iso patterns, `:name` params reach
// the component as props), and whether the top bar links to it. A new top-level path must also be
// served by the server: DASHBOARD_PATHS in src/http/dashboard.ts.

export interface Screen {
  path: string;
  // any: each screen takes its own route params, which preact-iso passes as props.
  component: ComponentType<any>;
  /** The top bar's link text, for the screens it lists. */
  nav?: string;
  /** Reachable without signing in (everything else sends the user to sign in first). */
  public?: boolean;
}

export const screens: Screen[] = [
  { path: SIGN_IN_PATH, component: SignInScreen, public: true },
  { path: '/agents', component: AgentsScreen, nav: 'Agents' },
  { path: '/agents/:agent_id/branches/:branch_id/edit', component: EditScreen },
  { path: '/agents/:agent_id/branches/:branch_id/merge', component: MergeScreen },
  { path: '/agents/:agent_id/branches/:branch_id/rebase', component: RebaseScreen },
  { path: '/agents/:agent_id/proposals', component: ProposalsScreen },
  { path: '/agents/:agent_id/proposals/:merge_proposal_id', component: ProposalScreen },
];
