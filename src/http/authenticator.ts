import type { IncomingMessage } from 'node:http';

import type { FastifyRequest } from 'fastify';

import { type Caller, type Permission, roleAllows } from '../domain/caller.js';
import { ForbiddenError } from '../errors.js';
import { RateLimitedError, type RateLimiter } from './rate-limit.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
  interface FastifyContextConfig {
    permission?: Permission;
    /** false: the per-key rate limit does not apply (a scrape must never be turned away). */
    rateLimited?: boolean;
  }
}

/**
 * Who sent a request, from the credentials it carries: the one place a way of signing in plugs in
 * (API keys, implemented by the workspaces feature; a dashboard session would be another). The
 * fast path and the routes' hook both ask it, about the raw request, so a request's credentials
 * are read once whichever of them sees it first.
 */
export interface Authenticator {
  /**
   * The caller, from memory alone (the fast path), or undefined when that needs I/O or the
   * credentials are missing or not valid: the route then answers, with `authenticate`.
   */
  cachedCaller(request: IncomingMessage): Authenticated | undefined;
  /** The caller, or an AuthenticationError saying whether credentials are missing or not valid. */
  authenticate(request: IncomingMessage): Promise<Authenticated>;
}

export interface Authenticated {
  caller: Caller;
  /** Names the credential without holding it (an API key's hash): what the rate limit counts by. */
  credentialId: string;
}

/**
 * The routes' `onRequest` hook: who the caller is, whether their key is over its rate limit, and
 * whether their role reaches the route's permission. `public` routes (and those with none) pass.
 */
export function checkAccess(authenticator: Authenticator, limiter: RateLimiter | undefined) {
  return async (request: FastifyRequest): Promise<void> => {
    const permission = request.routeOptions.config.permission;
    if (permission === undefined || permission === 'public') return;
    const { caller, credentialId } = await authenticator.authenticate(request.raw);
    // Limited per key once the key is known to be valid (an invalid one never gets a bucket).
    if (limiter && request.routeOptions.config.rateLimited !== false) {
      const waitSeconds = limiter.check(request.raw, credentialId);
      if (waitSeconds > 0) throw new RateLimitedError(waitSeconds);
    }
    if (!roleAllows(caller.role, permission)) {
      throw new ForbiddenError(`The ${caller.role} role may not ${describePermission(permission)}.`);
    }
    request.caller = caller;
  };
}

function describePermission(permission: Permission): string {
  switch (permission) {
    case 'admin':
      return 'do this; it needs admin';
    case 'write':
      return 'make changes';
    case 'comment':
      return 'comment or review';
    default:
      return 'read this';
  }
}
