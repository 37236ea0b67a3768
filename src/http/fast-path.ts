import type { IncomingMessage, ServerResponse } from 'node:http';

import type { RoutingCache } from '../features/deployments/routing-cache.js';
import type { WorkspacesService } from '../features/workspaces/workspaces.service.js';
import type { Caller } from '../features/workspaces/workspaces.store.js';
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
export type QuickGet = (caller: Caller, agentId: string, selector: { branchId?: string; versionId?: string }) => Promise<Buffer | undefined>;

/**
 * `GET agent` (routed, at a head, at a version) on raw `node:http`, in front of Fastify (DESIGN
 * §12.12). The routed read answers from the routing cache; head and version reads from one query
 * and the rendered-bytes cache. Anything else — an unknown key, a miss, an error, any unusual
 * parameter — goes to the full route, which authenticates, validates and says what is wrong, so
 * every answer and every error is the route's own.
 */
export function agentFastPath(workspaces: WorkspacesService, routing: RoutingCache, quickGet: QuickGet, counters: FastPathCounters) {
  const routed = routedFastPath(workspaces, routing, counters);
  return (request: IncomingMessage, response: ServerResponse): boolean | Promise<boolean> => {
    if (routed(request, response)) return true;
    const url = request.url;
    if (request.method !== 'GET' || url === undefined || !url.startsWith(PREFIX)) return false;
    const queryStart = url.indexOf('?');
    const agentId = url.slice(PREFIX.length, queryStart < 0 ? undefined : queryStart);
    if (agentId === '' || agentId.length > 500 || agentId.includes('/') || agentId.includes('%') || hasBadText(agentId)) return false;
    const selector: { branchId?: string; versionId?: string } = {};
    if (queryStart >= 0) {
      const query = url.slice(queryStart + 1);
      if (query.includes('%') || query.includes('+')) return false;
      for (const pair of query.split('&')) {
        const equals = pair.indexOf('=');
        const name = equals < 0 ? pair : pair.slice(0, equals);
        const value = equals < 0 ? '' : pair.slice(equals + 1);
        if (name === 'branch_id' && selector.branchId === undefined && value !== '') selector.branchId = value;
        else if (name === 'version_id' && selector.versionId === undefined && value !== '') selector.versionId = value;
        else if (name !== '') return false;
      }
    }
    const key = request.headers['xi-api-key'];
    if (typeof key !== 'string' || key === '') return false;
    const caller = workspaces.cachedCaller(key);
    if (!caller) return false;
    return quickGet(caller, agentId, selector).then((body) => {
      if (!body) return false;
      response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
      response.end(body);
      counters.served++;
      return true;
    });
  };
}

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
