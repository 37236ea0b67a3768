import type { IncomingMessage } from 'node:http';

import { AuthenticationError } from '../../errors.js';
import type { Authenticated, Authenticator } from '../../http/authenticator.js';
import type { WorkspacesService } from './workspaces.service.js';

/** A request's API key and its hash, read once: by the fast path or the routes' hook, whichever is first. */
const API_KEY = Symbol('branchwise.apiKey');
interface ApiKey {
  keyHash: string;
}
type Keyed = IncomingMessage & { [API_KEY]?: ApiKey | null };

/** Callers by the `xi-api-key` header, through the workspaces' key cache (decisions.md D16). */
export function apiKeyAuthenticator(workspaces: WorkspacesService): Authenticator {
  function apiKey(request: IncomingMessage): ApiKey | undefined {
    const keyed = request as Keyed;
    let found = keyed[API_KEY];
    if (found === undefined) {
      const key = apiKeyOf(request);
      found = key === undefined ? null : { keyHash: workspaces.recentHashOf(key) };
      keyed[API_KEY] = found;
    }
    return found ?? undefined;
  }

  return {
    cachedCaller(request: IncomingMessage): Authenticated | undefined {
      const key = apiKey(request);
      const caller = key && workspaces.cachedCallerByKeyHash(key.keyHash);
      return caller ? { caller, credentialId: key.keyHash } : undefined;
    },

    async authenticate(request: IncomingMessage): Promise<Authenticated> {
      const key = apiKey(request);
      if (!key) throw new AuthenticationError('missing_api_key', 'This request needs an API key in the xi-api-key header.');
      const caller = await workspaces.callerByKeyHash(key.keyHash);
      if (!caller) throw new AuthenticationError('invalid_api_key', 'The API key is not valid.');
      return { caller, credentialId: key.keyHash };
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
