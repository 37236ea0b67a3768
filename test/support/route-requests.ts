import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';

import type { Role } from '../../src/domain/caller.js';
import type { RouteDefinition } from '../../src/http/route.js';
import { EXAMPLE_ID_KINDS, type ExampleIds, type IdKind, type RouteExample } from '../../src/http/route-example.js';
import { snapshotDatabase } from './db-snapshot.js';
import { type CreatedAgent, createAgent as createSharedAgent } from './fixtures.js';
import type { TestApp } from './test-app.js';

// Requests against every route of the route table, a fixture every route's sample request works
// with, and the checks every refusal must pass (decisions.md D2). Shared by the bad-input, fuzz and
// access-matrix tests.

export const UNKNOWN_KEY = 'sk_000000000000000000000000000000000000000000000000';
/** Well-formed ids (prefix + 28 base-32 characters) that no row has. */
export const UNKNOWN_ID: Record<string, string> = {
  agent_id: 'agent_0000000000000000000000000z',
  branch_id: 'agtbrch_0000000000000000000000000z',
  version_id: 'agtvrsn_0000000000000000000000000z',
  procedure_id: 'agtprc_0000000000000000000000000z',
};
/** An id with the prefix and length of `id` that no row has: compared with `id`, only existence differs. */
export function unknownIdLike(id: string): string {
  return id.replace(/[^_]+$/, (suffix) => `${'0'.repeat(suffix.length - 1)}z`);
}
/** Roles that each permission shuts out (decisions.md D22: viewer never writes, commenter only comments). */
export const ROLES_REFUSED: Record<RouteDefinition['permission'], Role[]> = {
  public: [],
  read: [],
  comment: ['viewer'],
  write: ['viewer', 'commenter'],
  admin: ['viewer', 'commenter', 'editor'],
};

// ---------------------------------------------------------------------------------------------
// Requests and the checks every refusal must pass
// ---------------------------------------------------------------------------------------------

export interface Send {
  method: RouteDefinition['method'];
  url: string;
  /** `null`: no `xi-api-key` header at all. */
  key: string | null;
  /** An object is sent as JSON; a string or a Buffer is sent as it is (for malformed bodies). */
  payload?: unknown;
  contentType?: string;
}

/** What the caller sees when something goes wrong must never show how the server is built. */
export const INTERNALS = /\n\s*at |\\n\s*at |\bat \S+ \(|\bat (file:|node:|\/)|\.ts:\d+|\.m?js:\d+:\d+|node_modules|\bstack\b/;

export function describeResponse(response: LightMyRequestResponse): string {
  return `HTTP ${response.statusCode}: ${response.body.slice(0, 600)}`;
}

export function expectClean(response: LightMyRequestResponse): void {
  expect(response.statusCode, describeResponse(response)).toBeLessThan(500);
  expect(response.body, 'the body leaks internals').not.toMatch(INTERNALS);
}

/** A refusal in the `{"detail": {status, code, type, message, request_id}}` shape. */
export function expectApiError(response: LightMyRequestResponse, status: number, type: string, code?: string): void {
  expectClean(response);
  expect(response.statusCode, describeResponse(response)).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const body = response.json() as { detail: Record<string, unknown> };
  expect(body).toEqual({
    detail: {
      status: code ?? expect.any(String),
      code: code ?? expect.any(String),
      type,
      message: expect.any(String),
      request_id: expect.stringMatching(/^req_[0-9a-f]{24}$/),
    },
  });
  expect(body.detail.status).toBe(body.detail.code);
  expect(body.detail.message).not.toBe('');
}

export interface Issue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** A FastAPI-shaped 422 (`{"detail": [{loc, msg, type}]}`); returns its issues. */
export function expectValidationError(response: LightMyRequestResponse): Issue[] {
  expectClean(response);
  expect(response.statusCode, describeResponse(response)).toBe(422);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const body = response.json() as { detail: Issue[] };
  expect(Object.keys(body)).toEqual(['detail']);
  expect(Array.isArray(body.detail), describeResponse(response)).toBe(true);
  expect(body.detail.length).toBeGreaterThan(0);
  for (const issue of body.detail) {
    expect(Object.keys(issue).sort()).toEqual(['loc', 'msg', 'type']);
    expect(['body', 'query', 'path']).toContain(issue.loc[0]);
    for (const segment of issue.loc) expect(['string', 'number']).toContain(typeof segment);
    expect(typeof issue.msg).toBe('string');
    expect(issue.msg).not.toBe('');
    expect(typeof issue.type).toBe('string');
  }
  return body.detail;
}

export function locs(issues: Issue[]): (string | number)[][] {
  return issues.map((issue) => issue.loc);
}

/** What a caller receives: an `inject` response, or one read from a socket (see `socketResponse`). */
export interface SeenResponse {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}

/** A response read through a real socket (`fetch`), in the shape of an `inject` one. */
export async function socketResponse(response: Response): Promise<SeenResponse> {
  return { statusCode: response.status, headers: Object.fromEntries(response.headers), body: await response.text() };
}

/**
 * The response a caller sees with every id it sent replaced by the name of what it stands for,
 * and without the request id: two answers that are equal here reveal nothing to tell them apart.
 */
export function observable(response: SeenResponse, idNames: Map<string, string>) {
  let text = response.body;
  for (const [id, name] of idNames) text = text.replaceAll(id, `<${name}>`);
  const body = JSON.parse(text) as { detail?: { request_id?: string } };
  if (body.detail?.request_id) body.detail.request_id = '<request id>';
  // Content-length stays: the ids compared have the same length, so the bodies must too.
  const headers = Object.fromEntries(Object.entries(response.headers).filter(([name]) => name !== 'date'));
  return { status: response.statusCode, headers, body };
}

export function idNamesOf(fixture: Fixture): Map<string, string> {
  return new Map(Object.entries(fixture).map(([name, id]) => [id as string, name]));
}

/** The rows that differ between two snapshots, one line per row, for a readable failure. */
export function snapshotDiff(before: string, after: string): string[] {
  const [old, now] = [JSON.parse(before), JSON.parse(after)] as Record<string, unknown[]>[];
  const lines: string[] = [];
  for (const table of Object.keys(now)) {
    const was = new Set(old[table].map((row) => JSON.stringify(row)));
    const is = new Set(now[table].map((row) => JSON.stringify(row)));
    for (const row of was) if (!is.has(row)) lines.push(`- ${table} ${row.slice(0, 300)}`);
    for (const row of is) if (!was.has(row)) lines.push(`+ ${table} ${row.slice(0, 300)}`);
  }
  return lines;
}

/** Like encodeURIComponent, but a lone surrogate goes out as its WTF-8 bytes instead of throwing. */
export function percentEncode(text: string): string {
  let out = '';
  for (const char of text) {
    const unit = char.charCodeAt(0);
    if (char.length === 1 && unit >= 0xd800 && unit <= 0xdfff) {
      const bytes = [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)];
      out += bytes.map((byte) => `%${byte.toString(16).toUpperCase()}`).join('');
    } else out += encodeURIComponent(char);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Fixture: an agent with a second branch, and another workspace's agent
// ---------------------------------------------------------------------------------------------

/**
 * The example agent every route's example request is written against (src/http/route-example.ts):
 * an agent with a second branch, a main that moved on, its first deployment and an open proposal.
 */
export type Fixture = ExampleIds;

export interface World extends Fixture {
  foreignAgentId: string;
  foreignMainBranchId: string;
  foreignVersionId: string;
  /** Another agent in our own workspace: its ids do not belong under our agent. */
  otherAgentId: string;
  otherMainBranchId: string;
  otherVersionId: string;
}

/** Requests through `app.server.inject`, and the fixtures they build, for one test app. */
export function routeRequests(testApp: TestApp) {
  const { app, store, keys, foreignKey } = testApp;
  async function send({ method, url, key, payload, contentType = 'application/json' }: Send): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = {};
    if (key !== null) headers['xi-api-key'] = key;
    if (payload !== undefined) headers['content-type'] = contentType;
    const body = payload === undefined ? undefined : typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
    return app.server.inject({ method, url, headers, ...(body === undefined ? {} : { payload: body }) });
  }

  /** Runs a request that must be refused and checks that it wrote nothing. */
  async function refused(request: Send): Promise<LightMyRequestResponse> {
    const before = await snapshotDatabase(store.db);
    const response = await send(request);
    const after = await snapshotDatabase(store.db);
    expect(snapshotDiff(before, after), `${request.method} ${request.url.slice(0, 200)} changed the database (${describeResponse(response)})`).toEqual([]);
    expect(after).toBe(before);
    return response;
  }

  async function ok<T>(response: LightMyRequestResponse): Promise<T> {
    expect(response.statusCode, describeResponse(response)).toBe(200);
    return response.json() as T;
  }

  /** An agent of `key`'s workspace (support/fixtures.ts). */
  function createAgent(key: string, name = 'A'): Promise<CreatedAgent> {
    return createSharedAgent(testApp, { key, name });
  }

  /** A fixture owned by `key`'s workspace (ours unless told). */
  async function createFixture(key = keys.admin, name = 'A'): Promise<Fixture> {
    const { agentId, versionId: firstVersionId, mainBranchId } = await createAgent(key, name);
    // A branch with a change of its own, and a main that moved on since: every merge and rebase
    // route then has real work to do with the sample request.
    const created = await ok<{ created_branch_id: string; created_version_id: string }>(
      await send({
        method: 'POST',
        url: `/v1/convai/agents/${agentId}/branches`,
        key,
        payload: {
          parent_version_id: firstVersionId,
          name: 'Experiment',
          description: 'A second branch',
          conversation_config: { agent: { first_message: 'from the branch' } },
        },
      }),
    );
    // A procedure folder published on the branch (its head maps it to a version), which its
    // author has a draft of again: procedure routes then have a draft to compile and a folder to
    // create procedures in.
    const procedures = `/v1/convai/agents/${agentId}/branches/${created.created_branch_id}/procedures`;
    const { procedure_id: procedureId } = await ok<{ procedure_id: string }>(
      await send({ method: 'POST', url: procedures, key, payload: { name: 'Greetings', type: 'folder' } }),
    );
    const published = await ok<{ version_id: string; procedures: Record<string, { version_id: string }> }>(
      await send({ method: 'PATCH', url: `/v1/convai/agents/${agentId}?branch_id=${created.created_branch_id}`, key, payload: {} }),
    );
    await ok(await send({ method: 'PATCH', url: `${procedures}/${procedureId}/draft`, key, payload: { name: 'Greetings (renamed)', content: '', type: 'folder' } }));
    const main = await ok<{ version_id: string }>(
      await send({
        method: 'PATCH',
        url: `/v1/convai/agents/${agentId}`,
        key,
        payload: { conversation_config: { agent: { language: 'de' } } },
      }),
    );
    // A guarded rollout of the branch, rolled back at once: its routes have a rollout to read and
    // act on, and the split is free again for the deployment routes (the rollback is the active deployment).
    const { guarded_rollout_id: guardedRolloutId } = await ok<{ guarded_rollout_id: string }>(
      await send({
        method: 'POST',
        url: `/v1/convai/agents/${agentId}/guarded-rollouts`,
        key,
        payload: {
          branch_id: created.created_branch_id,
          steps: [{ traffic_percentage: 10, min_duration_secs: 60, min_outcomes_per_branch: 100 }],
          guard_metrics: [{ metric_key: 'call_successful', max_regression: 0.05 }],
        },
      }),
    );
    await ok(await send({ method: 'POST', url: `/v1/convai/agents/${agentId}/guarded-rollouts/${guardedRolloutId}/rollback`, key }));
    const history = await ok<{ results: { id: string }[] }>(
      await send({ method: 'GET', url: `/v1/convai/agents/${agentId}/deployments`, key }),
    );
    const { workspace_id: workspaceId } = await store.db.selectFrom('agents').select('workspace_id').where('id', '=', agentId).executeTakeFirstOrThrow();
    const users = await store.db.selectFrom('users').select(['id', 'name']).where('workspace_id', '=', workspaceId).orderBy('id').execute();
    const reviewerUserId = (users.find((user) => user.name === 'editor-user') ?? users[0]).id;
    const proposal = await ok<{ created_merge_proposal_id: string }>(
      await send({
        method: 'POST',
        url: `/v1/convai/agents/${agentId}/merge-proposals`,
        key,
        payload: {
          source_branch_id: created.created_branch_id,
          target_branch_id: mainBranchId,
          title: 'Fixture proposal',
          requested_reviewer_user_ids: [reviewerUserId],
        },
      }),
    );
    // An outcome webhook of the workspace (made by its admin: webhooks are workspace-wide, and an
    // editor may own the fixture) and a metric fed by events, with a key no other fixture's agent
    // has (so that ours under another agent is unknown there).
    const workspaceAdminKey = key === foreignKey ? foreignKey : keys.admin;
    const { webhook_id: webhookId } = await ok<{ webhook_id: string }>(
      await send({ method: 'POST', url: '/v1/convai/outcome-webhooks', key: workspaceAdminKey, payload: { name: 'Fixture webhook' } }),
    );
    const metricKey = `csat_${agentId.slice(-10)}`;
    await ok(
      await send({
        method: 'POST',
        url: `/v1/convai/agents/${agentId}/metrics`,
        key,
        payload: { metric_key: metricKey, name: 'CSAT', kind: 'mean', higher_is_better: true, source: { type: 'event' } },
      }),
    );
    return {
      agentId,
      mainBranchId,
      mainVersionId: main.version_id,
      branchId: created.created_branch_id,
      branchVersionId: published.version_id,
      deploymentId: history.results[0].id,
      proposalId: proposal.created_merge_proposal_id,
      reviewerUserId,
      procedureId,
      procedureVersionId: published.procedures[procedureId].version_id,
      guardedRolloutId,
      webhookId,
      metricKey,
    };
  }

  /** A fixture, an agent of another workspace (named "Elsewhere") and another agent of ours. */
  async function createWorld(): Promise<World> {
    const fixture = await createFixture();
    const foreign = await createAgent(foreignKey, 'Elsewhere');
    const other = await createAgent(keys.admin, 'Other');
    return {
      ...fixture,
      foreignAgentId: foreign.agentId,
      foreignMainBranchId: foreign.mainBranchId,
      foreignVersionId: foreign.versionId,
      otherAgentId: other.agentId,
      otherMainBranchId: other.mainBranchId,
      otherVersionId: other.versionId,
    };
  }

  return { send, refused, ok, createAgent, createFixture, createWorld };
}

// ---------------------------------------------------------------------------------------------
// Every route's URL and the example request it carries (src/http/route-example.ts)
// ---------------------------------------------------------------------------------------------

export function routeName(route: RouteDefinition): string {
  return `${route.method} ${route.url}`;
}

/** The route's example request; every route of the table has one (the route-examples test checks). */
export function exampleOf(route: RouteDefinition): RouteExample {
  if (!route.example) throw new Error(`no example for ${routeName(route)}; give its defineRoute an example`);
  return route.example;
}

export function pathParams(route: RouteDefinition): string[] {
  return [...route.url.matchAll(/:([a-z_]+)/g)].map((match) => match[1]);
}

/** The values of the route's `:placeholders` for a fixture, from its example. */
export function pathValues(route: RouteDefinition, fixture: Fixture): Record<string, string> {
  const params = exampleOf(route).params ?? {};
  return Object.fromEntries(Object.entries(params).map(([param, id]) => [param, fixture[id]]));
}

/** What the id in the route's `:param` names. */
export function pathIdKind(route: RouteDefinition, param: string): IdKind {
  const id = exampleOf(route).params?.[param];
  if (id === undefined) throw new Error(`no example id for :${param} in ${routeName(route)}; add it to the example's params`);
  return EXAMPLE_ID_KINDS[id];
}

/** The query parameters the route names ids with: their kind and role, from its example. */
export function queryIds(route: RouteDefinition): NonNullable<RouteExample['queryIds']> {
  return exampleOf(route).queryIds ?? {};
}

/**
 * The optional fields of the route that name other objects, with real values from the fixture
 * (`RouteExample.references`): the access matrix sends them with every sample request, the fuzz
 * suite in every combination; `expected_*` versions are the heads of a fresh fixture.
 */
export function optionalReferences(route: RouteDefinition, fixture: Fixture, sent: (name: string) => boolean = () => true) {
  return exampleOf(route).references?.(fixture, sent) ?? {};
}

/** The query parameters a route requires, so that a refusal is caused by the one thing a test changes. */
export function requiredQuery(route: RouteDefinition, fixture: Fixture): Record<string, string> {
  return exampleOf(route).query?.(fixture) ?? {};
}

/** The route's URL with its placeholders filled and its required query; `overrides` replace single values, `query` adds. */
export function urlOf(route: RouteDefinition, fixture: Fixture, overrides: Record<string, string> = {}, extraQuery: Record<string, string> = {}): string {
  const values = pathValues(route, fixture);
  const path = route.url.replace(/:([a-z_]+)/g, (_, name: string) => {
    const value = overrides[name] ?? values[name];
    if (value === undefined) throw new Error(`no example value for :${name} in ${route.url}; add it to the example's params`);
    return encodeURIComponent(value);
  });
  const query = { ...requiredQuery(route, fixture), ...extraQuery };
  return Object.keys(query).length > 0 ? `${path}?${new URLSearchParams(query).toString()}` : path;
}

/**
 * The route's sample request with its optional references (all, or the `only` ones): URL and body.
 */
export function referencingRequest(route: RouteDefinition, fixture: Fixture, only?: (name: string) => boolean, pathOverrides: Record<string, string> = {}) {
  const sent = only ?? (() => true);
  const references = optionalReferences(route, fixture, sent);
  const keep = <T>(entries: Record<string, T> = {}) => Object.fromEntries(Object.entries(entries).filter(([name]) => sent(name)));
  const body = sampleBody(route, fixture);
  return {
    url: urlOf(route, fixture, pathOverrides, keep(references.query)),
    payload: body === undefined ? undefined : { ...body, ...keep(references.body) },
  };
}

/**
 * A body the route accepts with the fixture (its example's), so that a refusal in these tests is
 * caused by the one thing each test changes.
 */
export function sampleBody(route: RouteDefinition, fixture: Fixture): Record<string, unknown> | undefined {
  if (!route.body) return undefined;
  const make = exampleOf(route).body;
  if (!make) throw new Error(`no example body for ${routeName(route)}; add one to its example`);
  return make(fixture);
}

/** What each of the fixture's ids names, by id. */
export function idKindsOf(fixture: Fixture): Map<string, IdKind> {
  return new Map((Object.keys(EXAMPLE_ID_KINDS) as (keyof Fixture)[]).map((name) => [fixture[name], EXAMPLE_ID_KINDS[name]]));
}
