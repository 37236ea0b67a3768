import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';

import { api } from '../api';
import { safeNext } from '../paths';
import { endReason, signIn, signOut, useSession, type Who } from '../session';
import { Button, describeError, Page, useNotice } from '../ui';

/** Signs in with an API key: checked with `GET /v1/convai/whoami`, kept in sessionStorage only. */
export function SignInScreen() {
  const session = useSession();
  const { query, route } = useLocation();
  const notices = useNotice();
  const [key, setKey] = useState('');
  const [failure, setFailure] = useState<string>();
  const [ended] = useState(endReason);
  const [busy, setBusy] = useState(false);
  const next = safeNext(query.next);

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) {
      setFailure('Paste an API key.');
      return;
    }
    setBusy(true);
    setFailure(undefined);
    try {
      const who = await api<Who>('GET', '/v1/convai/whoami', undefined, { apiKey: trimmed });
      signIn({ key: trimmed, who });
      notices.success(`Signed in as ${who.user_name} (${who.role}) in workspace ${who.workspace_name}`);
      route(next, true);
    } catch (error) {
      setFailure(describeError(error));
      setBusy(false);
    }
  };

  if (session) {
    const { who } = session;
    return (
      <Page title="Signed in">
        <p>
          You are signed in as <strong>{who.user_name}</strong> ({who.role}) in workspace <strong>{who.workspace_name}</strong>.
        </p>
        <div class="actions">
          <a class="button button-primary" href={next}>
            Continue
          </a>
          <Button onClick={() => signOut()}>Sign out</Button>
        </div>
      </Page>
    );
  }

  return (
    <Page title="Sign in">
      {ended && (
        <p class="error-panel" role="alert">
          You were signed out: {ended}
        </p>
      )}
      <form class="card sign-in" onSubmit={submit} noValidate>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autoComplete="off"
          spellcheck={false}
          value={key}
          onInput={(event) => setKey(event.currentTarget.value)}
          aria-invalid={failure ? true : undefined}
          aria-describedby="api-key-help api-key-error"
        />
        <p id="api-key-help" class="muted small">
          The key is kept in this tab only (sessionStorage) and sent to this server in the <code>xi-api-key</code> header. Closing the tab or signing out
          forgets it. No key yet? On the server: <code>node bin/branchwise.mjs keys create --user you --role editor</code>.
        </p>
        {failure && (
          <p id="api-key-error" class="field-error" role="alert">
            {failure}
          </p>
        )}
        <Button type="submit" variant="primary" busy={busy}>
          Sign in
        </Button>
      </form>
    </Page>
  );
}
