import { createHash } from 'node:crypto';

import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { openStore } from '../src/db/connect.js';
import type { Permission, Role } from '../src/domain/caller.js';
import { workspacesService } from '../src/features/workspaces/workspaces.service.js';
import type { RouteDefinition } from '../src/http/route.js';
import { snapshotDatabase } from './support/db-snapshot.js';
import {
  describeResponse,
  expectApiError,
  expectClean,
  type Fixture,
  idNamesOf,
  observable,
  pathValues,
  referencingRequest,
  routeName,
  routeRequests,
  type Send,
  snapshotDiff,
  UNKNOWN_KEY,
  unknownIdLike,
} from './support/route-requests.js';
import { startServerProcess } from './support/server-process.js';
import { createTestDatabase, listen, startTestApp } from './support/test-app.js';

// Who may do what (issue 9, item 4), generated from the route table: every route against every
// kind of caller, protected branches, and how API keys are kept: hashed at rest, looked up by
// hash, never in a table or a log line in plain text.

// Top-level await: the route table must exist before the per-route tests are declared.
const testApp = await startTestApp();
const { app, store, keys, foreignKey } = testApp;
const requests = routeRequests(testApp);
afterAll(() => testApp.close());

const ROLES: Role[] = ['viewer', 'commenter', 'editor', 'admin'];
const RANK: Record<Role, number> = { viewer: 0, commenter: 1, editor: 2, admin: 3 };
/** The least role each permission admits. */
const LEAST_ROLE: Record<Exclude<Permission, 'public'>, Role> = { read: 'viewer', comment: 'commenter', write: 'editor', admin: 'admin' };

/**
 * The permission each route must declare, from decisions.md D22: viewers read, commenters also comment
 * on and review merge proposals, editors write; a few routes are admin-only. A new route that
 * fits none of these, or declares something else, fails the test until this says why.
 */
const COMMENT_ROUTES = new Set([
  'POST /v1/convai/agents/:agent_id/merge-proposals/:merge_proposal_id/reviews',
  'POST /v1/convai/agents/:agent_id/merge-proposals/:merge_proposal_id/comments',
]);
/** Issue 9, item 6: the audit trail is readable by admins; issue 20: outcome webhooks (their secrets) are admins'. */
const ADMIN_ROUTES = new Set([
  'GET /v1/convai/audit-events',
  'POST /v1/convai/outcome-webhooks',
  'GET /v1/convai/outcome-webhooks',
  'DELETE /v1/convai/outcome-webhooks/:webhook_id',
]);
/**
 * Routes that take no API key: they authenticate each request themselves, so the key matrix
 * does not apply. Upstream's signed post-call webhook: test/experiments-webhooks.test.ts proves
 * that nothing unsigned, stale or signed with another secret is stored, whatever key it carries.
 */
const PUBLIC_ROUTES = new Set(['POST /v1/convai/outcome-webhooks/:webhook_id']);

function expectedPermission(route: RouteDefinition): Permission {
  const name = routeName(route);
  if (ADMIN_ROUTES.has(name)) return 'admin';
  if (COMMENT_ROUTES.has(name)) return 'comment';
  return route.method === 'GET' ? 'read' : 'write';
}

type Caller = 'no key' | 'unknown key' | 'revoked key' | Role | 'another workspace admin';
const CALLERS: Caller[] = ['no key', 'unknown key', 'revoked key', ...ROLES, 'another workspace admin'];

/** An admin key that worked (so it sits in the key cache) and was then revoked. */
let revokedKey: string;

function keyOf(caller: Caller): string | null {
  switch (caller) {
    case 'no key':
      return null;
    case 'unknown key':
      return UNKNOWN_KEY;
    case 'revoked key':
      return revokedKey;
    case 'another workspace admin':
      return foreignKey;
    default:
      return keys[caller];
  }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/** A fixture of the same shape whose every id exists nowhere (same prefixes and lengths). */
function unknownFixture(fixture: Fixture): Fixture {
  return Object.fromEntries(Object.entries(fixture).map(([name, id]) => [name, unknownIdLike(id as string)])) as unknown as Fixture;
}

/**
 * The route's sample request (URL with its required query, body) against a fixture, as a caller,
 * with every optional field that names another object set to a real one (its example's `references`).
 */
function sampleRequest(route: RouteDefinition, fixture: Fixture, key: string | null, pathOverrides: Record<string, string> = {}): Send {
  return { method: route.method, key, ...referencingRequest(route, fixture, undefined, pathOverrides) };
}

function describeSend(request: Send): string {
  return `${request.method} ${request.url}${request.payload === undefined ? '' : ` ${JSON.stringify(request.payload)}`}`;
}

/** The database as last seen in this test, so that refusals in a row share snapshots. */
let known: string | undefined;
beforeEach(() => {
  known = undefined;
});

async function expectNothingWritten(request: Send): Promise<LightMyRequestResponse> {
  const before = (known ??= await snapshotDatabase(store.db));
  const response = await requests.send(request);
  known = await snapshotDatabase(store.db);
  expect(snapshotDiff(before, known), `${describeSend(request)} changed the database (${describeResponse(response)})`).toEqual([]);
  return response;
}

async function sendAllowed(request: Send): Promise<LightMyRequestResponse> {
  known = undefined;
  return requests.send(request);
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/** Ours (reads only: every route that writes gets a fixture of its own), and the other workspace's. */
let shared: Fixture;
let foreign: Fixture;

beforeAll(async () => {
  shared = await requests.createFixture();
  foreign = await requests.createFixture(foreignKey, 'Elsewhere');
  const revoked = await app.workspaces.createKey('default', 'revoked-user', 'admin');
  expect((await requests.send({ method: 'GET', url: '/v1/convai/agents', key: revoked.key })).statusCode).toBe(200);
  expect(await app.workspaces.revokeKey('default', revoked.keyId)).toBe(true);
  revokedKey = revoked.key;
});

const routes = app.routes;

describe('the route table declares the permissions the matrix expects', () => {
  it('has routes', () => {
    expect(routes.length).toBeGreaterThanOrEqual(20);
  });

  it.each(routes.map((route) => [routeName(route), route] as const))('%s', (_, route) => {
    if (PUBLIC_ROUTES.has(routeName(route))) {
      expect(route.permission).toBe('public');
      return;
    }
    expect(['read', 'comment', 'write', 'admin'], `${routeName(route)} must need a key`).toContain(route.permission);
    expect(route.permission).toBe(expectedPermission(route));
  });
});

// ---------------------------------------------------------------------------------------------
// The matrix: every route × every caller
// ---------------------------------------------------------------------------------------------

for (const route of routes.filter((route) => !PUBLIC_ROUTES.has(routeName(route)))) {
  const needed = LEAST_ROLE[route.permission as Exclude<Permission, 'public'>] ?? 'admin';
  // Under an agent, or naming another object of the workspace (an outcome webhook): another
  // workspace's admin must find it as missing as an id that exists nowhere.
  const underAgent = route.url.includes(':agent_id') || route.url.includes(':webhook_id');

  describe(routeName(route), () => {
    for (const caller of CALLERS) {
      const key = () => keyOf(caller);

      if (caller === 'no key') {
        it('no key: 401 missing_api_key, nothing written', async () => {
          expectApiError(await expectNothingWritten(sampleRequest(route, shared, key())), 401, 'authentication_error', 'missing_api_key');
        });
      } else if (caller === 'unknown key' || caller === 'revoked key') {
        it(`${caller}: 401 invalid_api_key, nothing written`, async () => {
          expectApiError(await expectNothingWritten(sampleRequest(route, shared, key())), 401, 'authentication_error', 'invalid_api_key');
        });
      } else if (caller === 'another workspace admin') {
        if (underAgent) {
          it('another workspace admin: 404 not_found, never 403, nothing written, and the same answer as for ids that exist nowhere', async () => {
            const ours = await expectNothingWritten(sampleRequest(route, shared, key()));
            expectApiError(ours, 404, 'not_found');
            const nowhere = unknownFixture(shared);
            const unknown = await expectNothingWritten(sampleRequest(route, nowhere, key()));
            expect(observable(ours, idNamesOf(shared))).toEqual(observable(unknown, idNamesOf(nowhere)));
          });

          // Under their own agent, one of our ids (a branch, a version, a proposal...) must look
          // exactly like an id that exists nowhere.
          for (const param of route.url.match(/:([a-z_]+)/g)!.map((name) => name.slice(1)).filter((name) => name !== 'agent_id')) {
            it(`another workspace admin, their agent with our :${param}: the same 404 as for a :${param} that exists nowhere`, async () => {
              const ourId = pathValues(route, shared)[param];
              const unknownId = pathValues(route, unknownFixture(shared))[param];
              const ours = await expectNothingWritten(sampleRequest(route, foreign, key(), { [param]: ourId }));
              expectApiError(ours, 404, 'not_found');
              const unknown = await expectNothingWritten(sampleRequest(route, foreign, key(), { [param]: unknownId }));
              const names = (id: string) => new Map([...idNamesOf(foreign), [id, param]]);
              expect(observable(ours, names(ourId))).toEqual(observable(unknown, names(unknownId)));
            });
          }
        } else {
          it('another workspace admin: an admin in its own workspace, not refused', async () => {
            const response = await sendAllowed(sampleRequest(route, shared, key()));
            expectClean(response);
            expect([401, 403, 404], describeResponse(response)).not.toContain(response.statusCode);
          });
        }
      } else if (RANK[caller] < RANK[needed]) {
        it(`${caller}: 403 authorization_error, nothing written`, async () => {
          expectApiError(await expectNothingWritten(sampleRequest(route, shared, key())), 403, 'authorization_error');
        });
      } else {
        it(`${caller}: allowed (not 401 or 403)`, async () => {
          // A route that writes gets a fixture of its own: what one role's request changed (a
          // merge, a delete) must not decide another role's answer.
          const fixture = route.method === 'GET' ? shared : await requests.createFixture();
          const response = await sendAllowed(sampleRequest(route, fixture, key()));
          expectClean(response);
          expect([401, 403], describeResponse(response)).not.toContain(response.statusCode);
        });
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Protected branches: data-dependent rules the route permission cannot express (decisions.md D22)
// ---------------------------------------------------------------------------------------------

interface ProtectedCase {
  name: string;
  /** Which branch of the fixture gets `admin_perms_required`. */
  protect: 'main' | 'branch';
  /** Runs before the editor's attempt, as admin (for example a second deployment to roll back from). */
  prepare?: (fixture: Fixture) => Promise<Record<string, string>>;
  request: (fixture: Fixture, prepared: Record<string, string>) => Omit<Send, 'key'>;
}

const agentPath = (fixture: Fixture) => `/v1/convai/agents/${fixture.agentId}`;
const SPLIT_90_10 = (fixture: Fixture) => ({
  deployment_request: {
    requests: [
      { branch_id: fixture.mainBranchId, deployment_strategy: { type: 'percentage', traffic_percentage: 90 } },
      { branch_id: fixture.branchId, deployment_strategy: { type: 'percentage', traffic_percentage: 10 } },
    ],
  },
});

const PROTECTED_CASES: ProtectedCase[] = [
  {
    name: 'commit to a protected main',
    protect: 'main',
    request: (f) => ({ method: 'PATCH', url: agentPath(f), payload: { conversation_config: { agent: { first_message: 'edited' } } } }),
  },
  {
    name: 'commit to a protected branch (branch_id)',
    protect: 'branch',
    request: (f) => ({ method: 'PATCH', url: `${agentPath(f)}?branch_id=${f.branchId}`, payload: { conversation_config: { agent: { first_message: 'edited' } } } }),
  },
  {
    name: 'merge into a protected main',
    protect: 'main',
    request: (f) => ({ method: 'POST', url: `${agentPath(f)}/branches/${f.branchId}/merge?target_branch_id=${f.mainBranchId}`, payload: { archive_source_branch: false } }),
  },
  {
    name: 'merge a proposal into a protected main',
    protect: 'main',
    request: (f) => ({ method: 'POST', url: `${agentPath(f)}/merge-proposals/${f.proposalId}/merge`, payload: { archive_source_branch: false } }),
  },
  {
    name: 'restore an earlier version onto a protected branch',
    protect: 'branch',
    request: (f) => ({ method: 'POST', url: `${agentPath(f)}/branches/${f.branchId}/restore`, payload: { version_id: f.mainVersionId } }),
  },
  {
    name: 'rebase a protected branch onto main',
    protect: 'branch',
    request: (f) => ({ method: 'POST', url: `${agentPath(f)}/branches/${f.branchId}/rebase` }),
  },
  {
    name: "change a protected branch's share of traffic",
    protect: 'branch',
    request: (f) => ({ method: 'POST', url: `${agentPath(f)}/deployments`, payload: SPLIT_90_10(f) }),
  },
  {
    name: "preview a change of a protected branch's share of traffic",
    protect: 'branch',
    request: (f) => ({ method: 'POST', url: `${agentPath(f)}/deployments/preview`, payload: SPLIT_90_10(f) }),
  },
  {
    name: "roll back to a split with another share for a protected branch",
    protect: 'main',
    prepare: async (f) => {
      await requests.ok(await requests.send({ method: 'POST', url: `${agentPath(f)}/deployments`, key: keys.admin, payload: SPLIT_90_10(f) }));
      return {};
    },
    request: (f) => ({ method: 'POST', url: `${agentPath(f)}/deployments/${f.deploymentId}/rollback` }),
  },
  {
    name: 'preview a rollback to a split with another share for a protected branch',
    protect: 'main',
    prepare: async (f) => {
      await requests.ok(await requests.send({ method: 'POST', url: `${agentPath(f)}/deployments`, key: keys.admin, payload: SPLIT_90_10(f) }));
      return {};
    },
    request: (f) => ({ method: 'POST', url: `${agentPath(f)}/deployments/${f.deploymentId}/rollback/preview` }),
  },
  {
    // Deleting the agent takes its protected main with it (README, Differences).
    name: 'delete an agent whose main is protected',
    protect: 'main',
    request: (f) => ({ method: 'DELETE', url: agentPath(f) }),
  },
  {
    name: 'rename a protected branch',
    protect: 'branch',
    request: (f) => ({ method: 'PATCH', url: `${agentPath(f)}/branches/${f.branchId}`, payload: { name: 'Renamed' } }),
  },
  {
    name: 'archive a protected branch',
    protect: 'branch',
    request: (f) => ({ method: 'PATCH', url: `${agentPath(f)}/branches/${f.branchId}`, payload: { is_archived: true } }),
  },
  {
    name: "lift a branch's protection",
    protect: 'branch',
    request: (f) => ({ method: 'PATCH', url: `${agentPath(f)}/branches/${f.branchId}`, payload: { protection_status: 'writer_perms_required' } }),
  },
  {
    name: 'protect an unprotected branch',
    protect: 'main',
    request: (f) => ({ method: 'PATCH', url: `${agentPath(f)}/branches/${f.branchId}`, payload: { protection_status: 'admin_perms_required' } }),
  },
];

async function protectedFixture(protect: ProtectedCase['protect']): Promise<Fixture> {
  const fixture = await requests.createFixture();
  const branchId = protect === 'main' ? fixture.mainBranchId : fixture.branchId;
  const response = await requests.send({
    method: 'PATCH',
    url: `${agentPath(fixture)}/branches/${branchId}`,
    key: keys.admin,
    payload: { protection_status: 'admin_perms_required' },
  });
  expect(response.statusCode, describeResponse(response)).toBe(200);
  return fixture;
}

describe('protected branches (admin_perms_required)', () => {
  it.each(PROTECTED_CASES.map((testCase) => [testCase.name, testCase] as const))('%s: the editor gets 403 and nothing is written; the admin may', async (_, testCase) => {
    const fixture = await protectedFixture(testCase.protect);
    const prepared = (await testCase.prepare?.(fixture)) ?? {};
    const request = testCase.request(fixture, prepared);
    expectApiError(await expectNothingWritten({ ...request, key: keys.editor }), 403, 'authorization_error');
    const byAdmin = await sendAllowed({ ...request, key: keys.admin });
    expectClean(byAdmin);
    expect([200, 204], describeResponse(byAdmin)).toContain(byAdmin.statusCode);
  });

  it('protection is per branch: the editor still commits to an unprotected branch while main is protected', async () => {
    const fixture = await protectedFixture('main');
    const response = await requests.send({
      method: 'PATCH',
      url: `${agentPath(fixture)}?branch_id=${fixture.branchId}`,
      key: keys.editor,
      payload: { conversation_config: { agent: { first_message: 'on the unprotected branch' } } },
    });
    expect(response.statusCode, describeResponse(response)).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------
// API keys at rest, in lookups and in logs
// ---------------------------------------------------------------------------------------------

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Every 16-character piece of a key's secret part: a key must not show even in part. */
function keyPieces(key: string): string[] {
  const secret = key.replace(/^sk_/, '');
  return Array.from({ length: secret.length - 15 }, (_, i) => secret.slice(i, i + 16));
}

describe('API keys', () => {
  it('are stored as their SHA-256, and no key shows in plain text (or in part) anywhere in the database', async () => {
    const created = [keys.admin, keys.editor, keys.commenter, keys.viewer, foreignKey, revokedKey];
    const rows = await store.db.selectFrom('api_keys').select(['key_hash', 'key_prefix']).execute();
    const hashes = new Set(rows.map((row) => row.key_hash));
    for (const key of created) expect(hashes, 'the stored value of a key is its SHA-256').toContain(sha256Hex(key));
    // The prefix kept to tell keys apart in a list is too short to be a secret.
    for (const row of rows) expect(row.key_prefix.length).toBeLessThanOrEqual(8);
    const everything = await snapshotDatabase(store.db);
    for (const key of created) {
      expect(everything.includes(key), 'a key in plain text').toBe(false);
      expect(keyPieces(key).filter((piece) => everything.includes(piece)), 'a piece of a key').toEqual([]);
    }
  });

  // Keys are compared in constant time by looking them up by their SHA-256 (workspaces.service
  // `authenticate` → store `callerByKeyHash`): the index search then depends on the hash, which
  // a caller cannot steer toward a stored one, not on how many leading characters of a real key
  // they guessed, as comparing the keys themselves would. This proves the lookup goes by hash
  // alone: a row whose hash is replaced answers to the key of the new hash, and no longer to its own.
  it('are looked up by the SHA-256 of the presented key, and by nothing else', async () => {
    const original = await app.workspaces.createKey('default', 'hash-lookup-user', 'viewer');
    const substitute = 'sk_a-key-that-was-never-issued-but-whose-hash-is-stored';
    await store.db.updateTable('api_keys').set({ key_hash: sha256Hex(substitute) }).where('id', '=', original.keyId).execute();
    const list = (key: string) => requests.send({ method: 'GET', url: '/v1/convai/agents', key });
    expect((await list(substitute)).statusCode).toBe(200);
    expectApiError(await list(original.key), 401, 'authentication_error', 'invalid_api_key');
  });

  it('a revoked key stops working at once, also on the fast path right after it served from the key cache', async () => {
    const key = await app.workspaces.createKey('default', 'soon-revoked-user', 'editor');
    const baseUrl = await listen(testApp);
    const read = () => fetch(`${baseUrl}/v1/convai/agents/${shared.agentId}`, { headers: { 'xi-api-key': key.key } });
    const served = app.fastPath.served;
    expect((await read()).status).toBe(200);
    expect((await read()).status).toBe(200);
    expect(app.fastPath.served, 'the second read came from the fast path').toBeGreaterThan(served);
    await app.workspaces.revokeKey('default', key.keyId);
    const refused = await read();
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { detail: { code: string } }).detail.code).toBe('invalid_api_key');
    const list = await requests.send({ method: 'GET', url: '/v1/convai/agents', key: key.key });
    expectApiError(list, 401, 'authentication_error', 'invalid_api_key');
  });

  // buildApp takes `logger: boolean` only, not a destination: its log lines cannot be captured in
  // process. The server as users run it (`npm start`) logs to stdout, which a child process gives us.
  it('never show in the log, at the most verbose level, for requests that pass or fail', async () => {
    const database = await createTestDatabase();
    const setup = await openStore(database.options);
    const workspaces = workspacesService(setup);
    const admin = (await workspaces.bootstrap(undefined))!;
    const editor = await workspaces.createKey('default', 'editor-user', 'editor');
    const viewer = await workspaces.createKey('default', 'viewer-user', 'viewer');
    const revoked = await workspaces.createKey('default', 'revoked-user', 'admin');
    await workspaces.revokeKey('default', revoked.keyId);
    const elsewhere = await workspaces.createWorkspace('elsewhere');
    await setup.close();

    const server = await startServerProcess({
      DATA_DIR: database.options.dataDir,
      DATABASE_URL: database.options.databaseUrl ?? '',
      BRANCHWISE_BOOTSTRAP_API_KEY: '',
      LOG_LEVEL: 'trace',
    });
    const allKeys = [admin.key, editor.key, viewer.key, revoked.key, elsewhere.key, UNKNOWN_KEY];
    try {
      const call = (method: string, path: string, key: string, body?: string) =>
        fetch(`${server.url}${path}`, { method, headers: { 'xi-api-key': key, 'content-type': 'application/json' }, body });
      const created = await call('POST', '/v1/convai/agents/create', editor.key, '{"name":"Logged","conversation_config":{}}');
      expect(created.status).toBe(200);
      const agentId = ((await created.json()) as { agent_id: string }).agent_id;
      const statuses = [
        (await call('GET', `/v1/convai/agents/${agentId}`, admin.key)).status, // the fast path's first, uncached read
        (await call('GET', `/v1/convai/agents/${agentId}`, admin.key)).status,
        (await call('GET', `/v1/convai/agents/${agentId}?conversation_id=c1`, viewer.key)).status,
        (await call('GET', '/v1/convai/agents/agent_0000000000000000000000000z', admin.key)).status,
        (await call('PATCH', `/v1/convai/agents/${agentId}`, viewer.key, '{"name":"No"}')).status,
        (await call('PATCH', `/v1/convai/agents/${agentId}`, editor.key, '{bad json')).status,
        (await call('GET', `/v1/convai/agents/${agentId}`, elsewhere.key)).status,
        (await call('GET', '/v1/convai/agents', revoked.key)).status,
        (await call('GET', '/v1/convai/agents', UNKNOWN_KEY)).status,
        (await call('GET', '/v1/convai/no-such-route', admin.key)).status,
      ];
      expect(statuses).toEqual([200, 200, 200, 404, 403, 422, 404, 401, 401, 404]);
    } finally {
      await server.stop('SIGTERM');
      await database.drop();
    }
    const log = server.output();
    // Not vacuous: the server did log the requests above.
    expect(log).toContain('/v1/convai/agents/create');
    for (const key of allKeys) {
      expect(log.includes(key), 'a key in the log').toBe(false);
      expect(keyPieces(key).filter((piece) => log.includes(piece)), 'a piece of a key in the log').toEqual([]);
    }
  });
});
