// The shell's own paths (screens import these; routes.tsx lists every screen).

export const SIGN_IN_PATH = '/sign-in';
/** Where `/` and a finished sign-in go. */
export const HOME_PATH = '/agents';

/** A path in this app to go back to after signing in (never another origin: `//host` is refused). */
export function safeNext(next: string | undefined): string {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith(SIGN_IN_PATH) ? next : HOME_PATH;
}
