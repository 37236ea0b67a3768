import { useEffect, useState } from 'preact/hooks';

// The signed-in user's API key: in sessionStorage only (never localStorage, a URL or a log), so it
// lasts while the tab is open and is gone when it closes or the user signs out.

const KEY_ITEM = 'branchwise.key';
const WHO_ITEM = 'branchwise.who';
/** Why the last session ended (the server's message, no secret): kept across a reload of the sign-in page. */
const ENDED_ITEM = 'branchwise.ended';

/** Who the key belongs to, from `GET /v1/convai/whoami`. */
export interface Who {
  user_id: string;
  user_name: string;
  email: string;
  workspace_id: string;
  workspace_name: string;
  role: 'admin' | 'editor' | 'commenter' | 'viewer';
}

export interface Session {
  key: string;
  who: Who;
}

type Listener = (session: Session | undefined) => void;
const listeners = new Set<Listener>();

export function currentKey(): string | undefined {
  return sessionStorage.getItem(KEY_ITEM) ?? undefined;
}

export function currentSession(): Session | undefined {
  const key = sessionStorage.getItem(KEY_ITEM);
  const who = sessionStorage.getItem(WHO_ITEM);
  if (!key || !who) return undefined;
  try {
    return { key, who: JSON.parse(who) as Who };
  } catch {
    return undefined;
  }
}

export function signIn(session: Session): void {
  sessionStorage.removeItem(ENDED_ITEM);
  sessionStorage.setItem(KEY_ITEM, session.key);
  sessionStorage.setItem(WHO_ITEM, JSON.stringify(session.who));
  for (const listener of listeners) listener(session);
}

/** Forgets the key. `reason`: the session ended without the user asking (the server refused the key). */
export function signOut(reason?: string): void {
  if (reason) sessionStorage.setItem(ENDED_ITEM, reason);
  else sessionStorage.removeItem(ENDED_ITEM);
  sessionStorage.removeItem(KEY_ITEM);
  sessionStorage.removeItem(WHO_ITEM);
  for (const listener of listeners) listener(undefined);
}

/** Calls `listener` on every sign-in and sign-out; returns the unsubscribe. */
export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The current session, re-rendering the component on sign-in and sign-out. */
export function useSession(): Session | undefined {
  const [session, setSession] = useState(currentSession);
  useEffect(() => onSessionChange(setSession), []);
  return session;
}

/** Whether `role` may make changes (the server checks again; this only hides what would be refused). */
export function canWrite(role: Who['role']): boolean {
  return role === 'admin' || role === 'editor';
}

/**
 * Why the last session ended, until the next sign-in (not once: the sign-in screen may mount twice
 * on its way to its final URL, and the second one must still say why).
 */
export function endReason(): string | undefined {
  return sessionStorage.getItem(ENDED_ITEM) ?? undefined;
}
