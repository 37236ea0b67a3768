import type { IncomingMessage, ServerResponse } from 'node:http';

import type { RoutingCache } from '../features/deployments/routing-cache.js';
import type { WorkspacesService } from '../features/workspaces/workspaces.service.js';
import { hasBadText } from './text.js';

const PREFIX = '/v1/convai/agents/';

/** Counts what the fast path served, since it writes no per-request log line. */
export interface FastPathCounters {
  served: number;
}

/**
 * The routed read (`GET /v1/convai/agents/{id}?conversation_id=…`) on raw `node:http`, in front of
 * Fastify (DESIGN §12.12): it answers only when the key and the rendered response are already
 * cached, with the cached bytes; anything else — an unknown key, a cache miss, any other
 * parameter — goes to the full route, which authenticates, validates and fills the caches. So the
 * answer and every error are the route's own.
 */
export function routedFastPath(workspaces: WorkspacesService, routing: RoutingCache, counters: FastPathCounters) {
  return (request: IncomingMessage, response: ServerResponse): boolean => {
    const url = request.url;
    if (request.method !== 'GET' || url === undefined || !url.startsWith(PREFIX)) return false;
    const queryStart = url.indexOf('?');
    if (queryStart < 0) return false;
    const agentId = url.slice(PREFIX.length, queryStart);
    if (agentId === '' || agentId.includes('/') || agentId.includes('%')) return false;

    // A plain query (`name=value&…`, nothing to decode) is read here; anything else goes to the route.
    let routingKey: string | undefined;
    const query = url.slice(queryStart + 1);
    if (query.includes('%') || query.includes('+')) return false;
    for (const pair of query.split('&')) {
      const equals = pair.indexOf('=');
      const name = equals < 0 ? pair : pair.slice(0, equals);
      if (name === 'conversation_id' || name === 'routing_key') {
        if (routingKey !== undefined) return false;
        routingKey = equals < 0 ? '' : pair.slice(equals + 1);
      } else if (name === 'branch_id' || name === 'version_id') {
        return false;
      }
    }
    if (routingKey === undefined || routingKey.length > 1_000 || hasBadText(routingKey)) return false;

    const key = request.headers['xi-api-key'];
    if (typeof key !== 'string' || key === '') return false;
    const caller = workspaces.cachedCaller(key);
    if (!caller) return false;
    const body = routing.peek(agentId, caller, routingKey);
    if (!body) return false;

    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
    response.end(body);
    counters.served++;
    return true;
  };
}
