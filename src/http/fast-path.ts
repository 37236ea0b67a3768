import type { IncomingMessage, ServerResponse } from 'node:http';

import type { Caller } from '../domain/caller.js';
import type { LatencyRecorder } from '../metrics/latency.js';
import type { Authenticator } from './authenticator.js';
import type { RateLimiter } from './rate-limit.js';
import { hasBadText } from './text.js';

const PREFIX = '/v1/convai/agents/';
/** The route the fast path answers for: its answers are counted in the metrics under it. */
export const FAST_PATH_ROUTE = '/v1/convai/agents/:agent_id';

/** Counts what the fast path served, since it writes no per-request log line. */
export interface FastPathCounters {
  served: number;
  /** How long its answers took (no allocation per request, unlike a prom-client observe). */
  latency: LatencyRecorder;
}

/** The routed read's cache, as the fast path reads it: a rendered answer, or undefined on any miss. */
export interface RoutedAnswers {
  peek(agentId: string, caller: Caller, routingKey: string): Buffer | undefined;
}

export type QuickGet = (caller: Caller, agentId: string, selector: { branchId?: string; versionId?: string }) => Buffer | undefined | Promise<Buffer | undefined>;

/** The query parameters the fast path reads; any other name sends the request to the full route. */
interface AgentGet {
  agentId: string;
  branchId?: string;
  versionId?: string;
  conversationId?: string;
  routingKey?: string;
}

/** Which parameter `query[start, end)` names, as an `AgentGet` field, or undefined for any other. */
function knownName(query: string, start: number, end: number): 'branchId' | 'versionId' | 'conversationId' | 'routingKey' | undefined {
  const length = end - start;
  if (length === 9 && query.startsWith('branch_id', start)) return 'branchId';
  if (length === 10 && query.startsWith('version_id', start)) return 'versionId';
  if (length === 15 && query.startsWith('conversation_id', start)) return 'conversationId';
  if (length === 11 && query.startsWith('routing_key', start)) return 'routingKey';
  return undefined;
}

/**
 * An agent `GET` whose query holds only the parameters it reads, each once and plain (nothing to
 * decode), or undefined for anything else: that goes to the full route. It scans the URL in place,
 * slicing only the id and the values it keeps (this runs for every routed read).
 */
function parseAgentGet(request: IncomingMessage): AgentGet | undefined {
  const url = request.url;
  if (request.method !== 'GET' || url === undefined || !url.startsWith(PREFIX)) return undefined;
  const queryStart = url.indexOf('?');
  const agentId = url.slice(PREFIX.length, queryStart < 0 ? undefined : queryStart);
  if (agentId === '' || agentId.length > 500 || agentId.includes('/') || agentId.includes('%') || hasBadText(agentId)) return undefined;
  const parsed: AgentGet = { agentId };
  if (queryStart < 0) return parsed;
  if (url.includes('%', queryStart) || url.includes('+', queryStart)) return undefined;
  let start = queryStart + 1;
  while (start <= url.length) {
    let end = url.indexOf('&', start);
    if (end < 0) end = url.length;
    let equals = url.indexOf('=', start);
    if (equals < 0 || equals > end) equals = end;
    if (equals > start) {
      const name = knownName(url, start, equals);
      if (name === undefined || parsed[name] !== undefined) return undefined;
      parsed[name] = equals < end ? url.slice(equals + 1, end) : '';
    }
    start = end + 1;
  }
  return parsed;
}

function send(response: ServerResponse, body: Buffer, counters: FastPathCounters, startedMs: number): true {
  response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
  response.end(body);
  counters.served++;
  counters.latency.record(performance.now() - startedMs);
  return true;
}

/**
 * `GET agent` on raw `node:http`, in front of Fastify (decisions.md D17). The routed read
 * (`conversation_id` or `routing_key`) answers from the routing cache, head and version reads from
 * one query and the rendered-bytes cache, both only for a key already in the key cache. Anything
 * else — an unknown key, a miss, an error, any unusual parameter — goes to the full route, which
 * authenticates, validates and says what is wrong, so every answer and every error is the route's.
 * The rate limit is the route's too: a request over it is judged here and refused by the route.
 */
export function agentFastPath(
  authenticator: Authenticator,
  routing: RoutedAnswers,
  quickGet: QuickGet,
  counters: FastPathCounters,
  limiter: RateLimiter | undefined,
) {
  return (request: IncomingMessage, response: ServerResponse): boolean | Promise<boolean> => {
    const parsed = parseAgentGet(request);
    if (!parsed) return false;
    const startedMs = performance.now();
    const authenticated = authenticator.cachedCaller(request);
    if (!authenticated) return false;
    const { caller, credentialId } = authenticated;
    if (limiter !== undefined && limiter.check(request, credentialId) > 0) return false;
    const { agentId, branchId, versionId, conversationId, routingKey } = parsed;

    if (conversationId !== undefined || routingKey !== undefined) {
      // Routed, unless it also pins a branch or version: the route says what that means.
      const routed = conversationId ?? routingKey;
      if (conversationId !== undefined && routingKey !== undefined) return false;
      if (branchId !== undefined || versionId !== undefined || routed === undefined || routed.length > 1_000 || hasBadText(routed)) return false;
      const body = routing.peek(agentId, caller, routed);
      return body ? send(response, body, counters, startedMs) : false;
    }

    if (branchId === '' || versionId === '') return false;
    const body = quickGet(caller, agentId, { branchId, versionId });
    if (body === undefined) return false;
    if (Buffer.isBuffer(body)) return send(response, body, counters, startedMs);
    return body.then((read) => (read ? send(response, read, counters, startedMs) : false));
  };
}
