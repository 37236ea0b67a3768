import type { IncomingMessage, ServerResponse } from 'node:http';

import { describe, expect, it } from 'vitest';

import type { Caller } from '../../src/domain/caller.js';
import type { Authenticated, Authenticator } from '../../src/http/authenticator.js';
import { agentFastPath, type FastPathCounters, type QuickGet, type RoutedAnswers } from '../../src/http/fast-path.js';
import type { RateLimiter } from '../../src/http/rate-limit.js';
import { LatencyRecorder } from '../../src/metrics/latency.js';

// The fast path in front of Fastify, with stubs for what it reads. End to end, a fast path that
// never answers cannot be told from one that does (the route gives the same answer), so these pin
// which requests it answers, from which cache read, and which it hands to the route untouched.

const AGENTS = '/v1/convai/agents/';
const BODY = Buffer.from('{"name":"Café"}');
const CALLER: Caller = { workspaceId: 'ws_1', userId: 'user_1', userName: 'User', email: 'user@example.com', role: 'viewer' };
const CREDENTIAL = 'key_hash_1';

type Selector = Parameters<QuickGet>[2];

interface Setup {
  method?: string | undefined;
  authenticated?: Authenticated | undefined;
  /** Seconds the limiter says to wait; undefined: no limiter at all. */
  limiterWait?: number | undefined;
  peekAnswer?: Buffer | undefined;
  quickGetAnswer?: ReturnType<QuickGet>;
}

interface Run {
  result: boolean | Promise<boolean>;
  request: IncomingMessage;
  writeHeads: [number, Record<string, unknown>][];
  ends: unknown[];
  peeks: [string, Caller, string][];
  quickGets: [Caller, string, Selector][];
  cachedCallerRequests: IncomingMessage[];
  limiterChecks: [IncomingMessage, string][];
  counters: FastPathCounters & { latency: LatencyRecorder };
  /** `performance.now()` just before the fast path was called. */
  calledAtMs: number;
}

function run(url: string | undefined, setup: Setup = {}): Run {
  const method = 'method' in setup ? setup.method : 'GET';
  // Only what the fast path reads of a request: the rest of IncomingMessage is never touched.
  const request = { method, url, headers: {} } as unknown as IncomingMessage;
  const writeHeads: Run['writeHeads'] = [];
  const ends: unknown[] = [];
  const response = {
    writeHead: (status: number, headers: Record<string, unknown>) => writeHeads.push([status, headers]),
    end: (body: unknown) => ends.push(body),
  } as unknown as ServerResponse;
  const peeks: Run['peeks'] = [];
  const quickGets: Run['quickGets'] = [];
  const cachedCallerRequests: IncomingMessage[] = [];
  const limiterChecks: Run['limiterChecks'] = [];
  const authenticator: Authenticator = {
    cachedCaller: (asked) => {
      cachedCallerRequests.push(asked);
      return 'authenticated' in setup ? setup.authenticated : { caller: CALLER, credentialId: CREDENTIAL };
    },
    authenticate: () => Promise.reject(new Error('the fast path never authenticates with I/O')),
  };
  const routing: RoutedAnswers = {
    peek: (agentId, caller, routingKey) => (peeks.push([agentId, caller, routingKey]), 'peekAnswer' in setup ? setup.peekAnswer : BODY),
  };
  const quickGet: QuickGet = (caller, agentId, selector) => (
    quickGets.push([caller, agentId, selector]), 'quickGetAnswer' in setup ? setup.quickGetAnswer : BODY
  );
  const limiter =
    setup.limiterWait === undefined
      ? undefined
      : // Only `check` is called; a real RateLimiter would charge a token bucket.
        ({ check: (asked: IncomingMessage, credentialId: string) => (limiterChecks.push([asked, credentialId]), setup.limiterWait) } as unknown as RateLimiter);
  const counters = { served: 0, latency: new LatencyRecorder() };
  const calledAtMs = performance.now();
  const result = agentFastPath(authenticator, routing, quickGet, counters, limiter)(request, response);
  return { result, request, writeHeads, ends, peeks, quickGets, cachedCallerRequests, limiterChecks, counters, calledAtMs };
}

/** How many answers the latency recorder saw. */
function recorded(latency: LatencyRecorder): number {
  return latency.counts.reduce((sum, count) => sum + count, 0);
}

function expectAnswered(answered: Run, body: Buffer = BODY): void {
  expect(answered.writeHeads).toEqual([[200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length }]]);
  expect(answered.ends).toHaveLength(1);
  expect(answered.ends[0]).toBe(body);
  expect(answered.counters.served).toBe(1);
  expect(recorded(answered.counters.latency)).toBe(1);
  // The time the answer took: no more than has passed since the call.
  expect(answered.counters.latency.sumSeconds).toBeGreaterThanOrEqual(0);
  expect(answered.counters.latency.sumSeconds * 1000).toBeLessThanOrEqual(performance.now() - answered.calledAtMs);
}

function expectHandedOver(handed: Run): void {
  expect(handed.writeHeads).toEqual([]);
  expect(handed.ends).toEqual([]);
  expect(handed.counters.served).toBe(0);
  expect(recorded(handed.counters.latency)).toBe(0);
}

const longId = 'a'.repeat(500);

describe('agentFastPath answers a plain GET agent from the head cache', () => {
  it.each<[string, string, string, Selector]>([
    ['no query', `${AGENTS}agent_1`, 'agent_1', {}],
    ['an empty query', `${AGENTS}agent_1?`, 'agent_1', {}],
    ['only empty segments', `${AGENTS}agent_1?&&`, 'agent_1', {}],
    ['a branch', `${AGENTS}agent_1?branch_id=br_1`, 'agent_1', { branchId: 'br_1' }],
    ['a version', `${AGENTS}agent_1?version_id=ver_1`, 'agent_1', { versionId: 'ver_1' }],
    ['a branch and a version', `${AGENTS}agent_1?branch_id=br_1&version_id=ver_1`, 'agent_1', { branchId: 'br_1', versionId: 'ver_1' }],
    ['a version and a branch', `${AGENTS}agent_1?version_id=ver_1&branch_id=br_1`, 'agent_1', { branchId: 'br_1', versionId: 'ver_1' }],
    ['empty segments around a branch', `${AGENTS}agent_1?&branch_id=br_1&`, 'agent_1', { branchId: 'br_1' }],
    // The route's query parser skips a parameter with no name too.
    ['a value with no name', `${AGENTS}agent_1?=x`, 'agent_1', {}],
    ['a value holding "="', `${AGENTS}agent_1?branch_id=a=b`, 'agent_1', { branchId: 'a=b' }],
    ['an id of 500 characters', `${AGENTS}${longId}`, longId, {}],
  ])('%s: %s', (_, url, agentId, selector) => {
    const answered = run(url);
    expect(answered.result).toBe(true);
    expectAnswered(answered);
    expect(answered.quickGets).toHaveLength(1);
    const [caller, askedId, askedSelector] = answered.quickGets[0];
    expect(caller).toBe(CALLER);
    expect(askedId).toBe(agentId);
    expect(askedSelector).toStrictEqual({ branchId: selector.branchId, versionId: selector.versionId });
    expect(answered.peeks).toEqual([]);
  });
});

describe('agentFastPath answers a routed read from the routing cache', () => {
  const longKey = 'k'.repeat(1_000);
  it.each<[string, string, string]>([
    ['a conversation', `${AGENTS}agent_1?conversation_id=conv_1`, 'conv_1'],
    ['a routing key', `${AGENTS}agent_1?routing_key=user-7`, 'user-7'],
    ['a routing key among empty segments', `${AGENTS}agent_1?&routing_key=user-7&`, 'user-7'],
    // The route routes an empty key as well (the schema allows it), so both give the same answer.
    ['an empty conversation', `${AGENTS}agent_1?conversation_id=`, ''],
    ['a conversation with no "="', `${AGENTS}agent_1?conversation_id`, ''],
    ['a key of 1,000 characters', `${AGENTS}agent_1?routing_key=${longKey}`, longKey],
  ])('%s', (_, url, routingKey) => {
    const answered = run(url);
    expect(answered.result).toBe(true);
    expectAnswered(answered);
    expect(answered.peeks).toHaveLength(1);
    expect(answered.peeks[0][0]).toBe('agent_1');
    expect(answered.peeks[0][1]).toBe(CALLER);
    expect(answered.peeks[0][2]).toBe(routingKey);
    expect(answered.quickGets).toEqual([]);
  });
});

describe('agentFastPath hands to the route, reading no cache and charging no rate limit, a request it does not parse', () => {
  it.each<[string, string | undefined, string | undefined]>([
    ['POST', 'POST', `${AGENTS}agent_1`],
    ['PATCH', 'PATCH', `${AGENTS}agent_1`],
    ['DELETE', 'DELETE', `${AGENTS}agent_1`],
    ['HEAD', 'HEAD', `${AGENTS}agent_1`],
    ['no method', undefined, `${AGENTS}agent_1`],
    ['no url', 'GET', undefined],
    ['the agent list', 'GET', '/v1/convai/agents'],
    ['another prefix', 'GET', '/v1/convai/agent/agent_1'],
    ['another version', 'GET', '/v2/convai/agents/agent_1'],
    ['the prefix not at the start', 'GET', `/x${AGENTS}agent_1`],
    ['an empty id', 'GET', AGENTS],
    ['an empty id with a query', 'GET', `${AGENTS}?branch_id=br_1`],
    ['a sub-resource', 'GET', `${AGENTS}agent_1/branches`],
    ['a trailing slash', 'GET', `${AGENTS}agent_1/`],
    ['an encoded id', 'GET', `${AGENTS}agent%5F1`],
    ['an id of 501 characters', 'GET', `${AGENTS}${'a'.repeat(501)}`],
    ['a NUL in the id', 'GET', `${AGENTS}agent\u0000`],
    ['a lone high surrogate in the id', 'GET', `${AGENTS}agent\ud800`],
    ['a lone low surrogate in the id', 'GET', `${AGENTS}agent\udc00`],
    ['"%" in a value', 'GET', `${AGENTS}agent_1?branch_id=br%5F1`],
    ['"%" in a name', 'GET', `${AGENTS}agent_1?%62ranch_id=br_1`],
    ['"%" after known parameters', 'GET', `${AGENTS}agent_1?branch_id=br_1&version_id=v%`],
    ['"+" in a value', 'GET', `${AGENTS}agent_1?conversation_id=c+1`],
    ['"+" alone', 'GET', `${AGENTS}agent_1?+`],
    ['an unknown parameter', 'GET', `${AGENTS}agent_1?unknown=1`],
    ['an unknown parameter after a known one', 'GET', `${AGENTS}agent_1?branch_id=br_1&unknown=1`],
    ['an unknown parameter with no "="', 'GET', `${AGENTS}agent_1?unknown`],
    ['a name in capitals', 'GET', `${AGENTS}agent_1?Branch_id=br_1`],
    ['a prefix of branch_id', 'GET', `${AGENTS}agent_1?branch_i=br_1`],
    ['a prefix of version_id', 'GET', `${AGENTS}agent_1?version_i=v_1`],
    ['a prefix of conversation_id', 'GET', `${AGENTS}agent_1?conversation_i=c_1`],
    ['a prefix of routing_key', 'GET', `${AGENTS}agent_1?routing_ke=k_1`],
    ['branch_id with a suffix', 'GET', `${AGENTS}agent_1?branch_idx=br_1`],
    ['version_id with a suffix', 'GET', `${AGENTS}agent_1?version_ids=v_1`],
    ['conversation_id with a suffix', 'GET', `${AGENTS}agent_1?conversation_idx=c_1`],
    ['routing_key with a suffix', 'GET', `${AGENTS}agent_1?routing_keys=k_1`],
    ['branch_id with a prefix', 'GET', `${AGENTS}agent_1?xbranch_id=br_1`],
    ['a lookalike of branch_id', 'GET', `${AGENTS}agent_1?branch_ix=br_1`],
    ['a lookalike of version_id', 'GET', `${AGENTS}agent_1?version_ix=v_1`],
    ['a lookalike of conversation_id', 'GET', `${AGENTS}agent_1?conversation_ix=c_1`],
    ['a lookalike of routing_key', 'GET', `${AGENTS}agent_1?routing_kex=k_1`],
    ['a lookalike of branch_id differing first', 'GET', `${AGENTS}agent_1?xranch_id=br_1`],
    ['a repeated branch_id', 'GET', `${AGENTS}agent_1?branch_id=a&branch_id=b`],
    ['a repeated version_id', 'GET', `${AGENTS}agent_1?version_id=a&version_id=a`],
    ['a repeated conversation_id', 'GET', `${AGENTS}agent_1?conversation_id=c&conversation_id=c`],
    ['a repeated routing_key', 'GET', `${AGENTS}agent_1?routing_key=k&routing_key=k`],
    ['a repeat of an empty branch_id', 'GET', `${AGENTS}agent_1?branch_id&branch_id=b`],
  ])('%s', (_, method, url) => {
    const handed = run(url, { method, limiterWait: 0 });
    expect(handed.result).toBe(false);
    expectHandedOver(handed);
    expect(handed.peeks).toEqual([]);
    expect(handed.quickGets).toEqual([]);
    expect(handed.cachedCallerRequests).toEqual([]);
    expect(handed.limiterChecks).toEqual([]);
  });
});

describe('agentFastPath hands to the route, reading no cache, a request whose parameters the route must judge', () => {
  it.each<[string, string]>([
    ['both conversation_id and routing_key', '?conversation_id=c_1&routing_key=k_1'],
    ['both routing_key and conversation_id', '?routing_key=k_1&conversation_id=c_1'],
    ['a conversation pinned to a branch', '?conversation_id=c_1&branch_id=br_1'],
    ['a conversation pinned to a version', '?version_id=v_1&conversation_id=c_1'],
    ['a routing key pinned to a branch', '?branch_id=br_1&routing_key=k_1'],
    ['a routing key pinned to a version', '?routing_key=k_1&version_id=v_1'],
    ['a routing key pinned to an empty branch', '?routing_key=k_1&branch_id='],
    ['a key of 1,001 characters', `?routing_key=${'k'.repeat(1_001)}`],
    ['a conversation of 1,001 characters', `?conversation_id=${'c'.repeat(1_001)}`],
    ['a NUL in the key', '?routing_key=k\u0000'],
    ['a lone surrogate in the conversation', '?conversation_id=c\udbff'],
    ['an empty branch_id', '?branch_id='],
    ['a branch_id with no "="', '?branch_id'],
    ['an empty version_id', '?version_id='],
    ['an empty version_id beside a branch', '?branch_id=br_1&version_id='],
    ['an empty branch_id beside a version', '?branch_id=&version_id=v_1'],
  ])('%s', (_, query) => {
    const handed = run(`${AGENTS}agent_1${query}`);
    expect(handed.result).toBe(false);
    expectHandedOver(handed);
    expect(handed.peeks).toEqual([]);
    expect(handed.quickGets).toEqual([]);
  });
});

describe('agentFastPath and who is asking', () => {
  it('hands a caller not in the key cache to the route, reading nothing and charging no rate limit', () => {
    const handed = run(`${AGENTS}agent_1?conversation_id=c_1`, { authenticated: undefined, limiterWait: 0 });
    expect(handed.result).toBe(false);
    expectHandedOver(handed);
    expect(handed.cachedCallerRequests).toEqual([handed.request]);
    expect([handed.peeks, handed.quickGets, handed.limiterChecks]).toEqual([[], [], []]);
  });

  it.each([
    ['a routed read', `${AGENTS}agent_1?conversation_id=c_1`],
    ['a head read', `${AGENTS}agent_1`],
  ])('hands %s over the rate limit to the route, which refuses it, reading no cache', (_, url) => {
    const handed = run(url, { limiterWait: 1 });
    expect(handed.result).toBe(false);
    expectHandedOver(handed);
    expect(handed.limiterChecks).toEqual([[handed.request, CREDENTIAL]]);
    expect([handed.peeks, handed.quickGets]).toEqual([[], []]);
  });

  it('answers a caller within the rate limit, charging the credential once', () => {
    const answered = run(`${AGENTS}agent_1?conversation_id=c_1`, { limiterWait: 0 });
    expect(answered.result).toBe(true);
    expectAnswered(answered);
    expect(answered.limiterChecks).toEqual([[answered.request, CREDENTIAL]]);
  });

  it('answers with no rate limit configured', () => {
    const answered = run(`${AGENTS}agent_1`);
    expect(answered.result).toBe(true);
    expectAnswered(answered);
  });
});

describe('agentFastPath on a cache miss', () => {
  it('hands a routed read the routing cache cannot answer to the route', () => {
    const handed = run(`${AGENTS}agent_1?routing_key=k_1`, { peekAnswer: undefined });
    expect(handed.result).toBe(false);
    expectHandedOver(handed);
    expect(handed.peeks).toHaveLength(1);
  });

  it('hands a head read the head cache cannot answer to the route', () => {
    const handed = run(`${AGENTS}agent_1?branch_id=br_1`, { quickGetAnswer: undefined });
    expect(handed.result).toBe(false);
    expectHandedOver(handed);
    expect(handed.quickGets).toHaveLength(1);
  });

  it('answers, once it resolves, a head read the cache answers asynchronously', async () => {
    const body = Buffer.from('{"late":true}');
    const answered = run(`${AGENTS}agent_1?version_id=v_1`, { quickGetAnswer: Promise.resolve(body) });
    expect(answered.result).toBeInstanceOf(Promise);
    expect(answered.writeHeads).toEqual([]);
    expect(await answered.result).toBe(true);
    expectAnswered(answered, body);
  });

  it('hands to the route a head read the cache misses asynchronously', async () => {
    const handed = run(`${AGENTS}agent_1?version_id=v_1`, { quickGetAnswer: Promise.resolve(undefined) });
    expect(handed.result).toBeInstanceOf(Promise);
    expect(await handed.result).toBe(false);
    expectHandedOver(handed);
  });
});
