import type { IncomingMessage } from 'node:http';

import { AuthenticationError } from '../../errors.js';
import type { Authenticated, Authenticator } from '../../http/authenticator.js';
import type { WorkspacesService } from './workspaces.service.js';

/** The hash of a request's API key (null: none sent), read once: by the fast path or the routes' hook, whichever is first. */
const KEY_HASH = Symbol('branchwise.keyHash');
type Keyed = IncomingMessage & { [KEY_HASH]?: string | null };

/** Callers by the `xi-api-key` header, through the workspaces' key cache (decisions.md D16). */
export function apiKeyAuthenticator(workspaces: WorkspacesService): Authenticator {
  function keyHashOf(request: IncomingMessage): string | undefined {
    const keyed = request as Keyed;
    if (keyed[KEY_HASH] === undefined) {
      const key = apiKeyOf(request);
      keyed[KEY_HASH] = key === undefined ? null : workspaces.recentHashOf(key);
    }
    return keyed[KEY_HASH] ?? undefined;
  }

  return {
    cachedCaller(request: IncomingMessage): Authenticated | undefined {
      const keyHash = keyHashOf(request);
      const caller = keyHash && workspaces.cachedCallerByKeyHash(keyHash);
      return caller ? { caller, credentialId: keyHash } : undefined;
    },

    async authenticate(request: IncomingMessage): Promise<Authenticated> {
      const keyHash = keyHashOf(request);
      if (!keyHash) throw new AuthenticationError('missing_api_key', 'This request needs an API key in the xi-api-key header.');
      const caller = await workspaces.callerByKeyHash(keyHash);
      if (!caller) throw new AuthenticationError('invalid_api_key', 'The API key is not valid.');
      return { caller, credentialId: keyHash };
    },
  };
}

/**
 * The `xi-api-key` header, read from the raw header list: `request.headers` builds an object of
 * every header on first use, which the hot path does not need. A key sent twice reads as node:http
 * joins it (`a, b`), which is no valid key.
 */
function apiKeyOf(request: IncomingMessage): string | undefined {
  const raw = request.rawHeaders;
  let key: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length !== 10 || name.toLowerCase() !== 'xi-api-key') continue;
    const value = raw[i + 1];
    if (typeof value !== 'string') continue;
    key = key === undefined ? value : `${key}, ${value}`;
  }
  return key === '' ? undefined : key;
}
