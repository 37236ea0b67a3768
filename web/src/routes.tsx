import type { ComponentType } from 'preact';

import { SIGN_IN_PATH } from './paths';
import { AgentScreen } from './screens/agent';
import { AgentsScreen } from './screens/agents';
import { AuditScreen } from './screens/audit';
import { DeployScreen } from './screens/deploy';
import { DiffScreen } from './screens/diff';
import { EditScreen } from './screens/edit';
import { HistoryScreen } from './screens/history';
import { MergeScreen, RebaseScreen } from './screens/merge';
import { ProceduresScreen } from './screens/procedures';
import { ProposalScreen, ProposalsScreen } from './screens/proposals';
import { ResultsScreen } from './screens/results';
import { SignInScreen } from './screens/sign-in';
import { VersionScreen } from './screens/version';

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
  { path: '/agents/:agent_id', component: AgentScreen },
  { path: '/agents/:agent_id/history', component: HistoryScreen },
  { path: '/agents/:agent_id/versions/:version_id', component: VersionScreen },
  { path: '/agents/:agent_id/diff', component: DiffScreen },
  { path: '/agents/:agent_id/deploy', component: DeployScreen },
  { path: '/agents/:agent_id/results', component: ResultsScreen },
  { path: '/audit', component: AuditScreen, nav: 'Audit log' },
  { path: '/agents/:agent_id/branches/:branch_id/procedures', component: ProceduresScreen },
  { path: '/agents/:agent_id/branches/:branch_id/edit', component: EditScreen },
  { path: '/agents/:agent_id/branches/:branch_id/merge', component: MergeScreen },
  { path: '/agents/:agent_id/branches/:branch_id/rebase', component: RebaseScreen },
  { path: '/agents/:agent_id/proposals', component: ProposalsScreen },
  { path: '/agents/:agent_id/proposals/:merge_proposal_id', component: ProposalScreen },
];
