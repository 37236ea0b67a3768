import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { useEffect } from 'preact/hooks';

import { HOME_PATH, SIGN_IN_PATH } from './paths';
import { screens } from './routes';
import { NotFoundScreen } from './screens/not-found';
import { type Session, signOut, useSession } from './session';
import { NoticeProvider } from './ui';

export function App() {
  return (
    <LocationProvider>
      <NoticeProvider>
        <Shell />
      </NoticeProvider>
    </LocationProvider>
  );
}

function Shell() {
  const session = useSession();
  const location = useLocation();
  const screen = screens.find((candidate) => candidate.path === location.path);
  const needsSignIn = !session && !screen?.public;
  useEffect(() => {
    if (location.path === '/') location.route(HOME_PATH, true);
    else if (needsSignIn) location.route(`${SIGN_IN_PATH}?next=${encodeURIComponent(location.url)}`, true);
  }, [location.url, needsSignIn]);

  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      {session ? (
        <TopBar session={session} />
      ) : (
        <header class="topbar">
          <span class="brand">branchwise</span>
        </header>
      )}
      <main id="main" class="main">
        {needsSignIn || location.path === '/' ? null : (
          <Router>
            {[...screens.map((each) => <Route key={each.path} path={each.path} component={each.component} />), <Route key="*" default component={NotFoundScreen} />]}
          </Router>
        )}
      </main>
    </>
  );
}

function TopBar({ session }: { session: Session }) {
  const { path, route } = useLocation();
  const { who } = session;
  return (
    <header class="topbar">
      <a class="brand" href={HOME_PATH}>
        branchwise
      </a>
      <nav aria-label="Main">
        {screens
          .filter((screen) => screen.nav)
          .map((screen) => (
            <a key={screen.path} href={screen.path} aria-current={path === screen.path || path.startsWith(`${screen.path}/`) ? 'page' : undefined}>
              {screen.nav}
            </a>
          ))}
      </nav>
      <div class="who">
        <span class="workspace" title={`Workspace ${who.workspace_id}`}>
          {who.workspace_name}
        </span>
        <span class="user" title={who.email || who.user_id}>
          {who.user_name}
        </span>
        <span class={`role role-${who.role}`}>{who.role}</span>
        <button
          type="button"
          class="button button-quiet"
          onClick={() => {
            signOut();
            route(SIGN_IN_PATH);
          }}
        >
          Sign out
        </button>
      </div>
    </header>
  );
}
