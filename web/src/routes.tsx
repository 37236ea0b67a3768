import type { ComponentType } from 'preact';

import { AgentsScreen } from './screens/agents';
import { SignInScreen } from './screens/sign-in';

// Every screen of the dashboard, in one list: its path (preact-iso patterns, `:name` params reach
// the component as props), and whether the top bar links to it. A new top-level path must also be
// served by the server: DASHBOARD_PATHS in src/http/dashboard.ts.

export interface Screen {
  path: string;
  // Screens take their own params; preact-iso passes them as props.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  component: ComponentType<any>;
  /** The top bar's link text, for the screens it lists. */
  nav?: string;
  /** Reachable without signing in (everything else sends the user to sign in first). */
  public?: boolean;
}

export const SIGN_IN_PATH = '/sign-in';
/** Where `/` and a finished sign-in go. */
export const HOME_PATH = '/agents';

export const screens: Screen[] = [
  { path: SIGN_IN_PATH, component: SignInScreen, public: true },
  { path: '/agents', component: AgentsScreen, nav: 'Agents' },
];
