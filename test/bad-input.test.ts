import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';

import { snapshotDatabase } from './support/db-snapshot.js';
import {
  describeResponse,
  expectApiError,
  expectClean,
  expectValidationError,
  locs,
  pathParams,
  percentEncode,
  ROLES_REFUSED,
  routeName,
  routeRequests,
  sampleBody,
  type Send,
  snapshotDiff,
  UNKNOWN_ID,
  UNKNOWN_KEY,
  urlOf,
  type World,
} from './support/route-requests.js';
import { startTestApp } from './support/test-app.js';

// Bad input of every kind, against every route in the route table: each is refused with a clean
// 4xx in the documented shape (decisions.md D2), never a 5xx or a stack trace, and writes nothing.

// Top-level await: the route table must exist before the per-route tests are declared.
const testApp = await startTestApp();
const { app, store, keys, foreignKey } = testApp;
const { send, refused, ok, createAgent, createFixture, createWorld } = routeRequests(testApp);
afterAll(() => testApp.close());

const TWO_AND_A_HALF_MB = 2_500_000;

// Requests, checks and the fixture are in ./support/route-requests.ts (the fuzz and access-matrix
// tests use them too).

let world: World;

beforeAll(async () => {
  world = await createWorld();
});

/** For a field, the first value of a wrong type that the route's schema refuses there. */
function wrongValueFor(field: z.ZodType): unknown {
  const candidates: unknown[] = ['a string where something else belongs', 12345, { unexpected: 'object' }, [1, 2, 3], true];
  return candidates.find((candidate) => !field.safeParse(candidate).success);
}

// A route that takes no key (the signed post-call webhook) refuses an unsigned request before it
// reads its body: test/experiments-webhooks.test.ts covers its bad input, signed.
const routes = app.routes.filter((route) => route.permission !== 'public');
const agentRoutes = routes.filter((route) => route.url.includes(':agent_id'));
const bodyRoutes = routes.filter((route) => route.body !== undefined);

// ---------------------------------------------------------------------------------------------
// Every route
// ---------------------------------------------------------------------------------------------

describe('the route table under test', () => {
  it('has routes, routes under an agent and routes with a body', () => {
    // Guards the loops below against silently testing nothing.
    expect(routes.length).toBeGreaterThanOrEqual(11);
    expect(agentRoutes.length).toBeGreaterThanOrEqual(8);
    expect(bodyRoutes.length).toBeGreaterThanOrEqual(5);
  });

  it.each(bodyRoutes.map((route) => [routeName(route), route] as const))('the sample body of %s passes its schema', (_, route) => {
    const body = sampleBody(route, world);
    const result = (route.body as z.ZodType).safeParse(body);
    expect(result.success, JSON.stringify(result.error?.issues)).toBe(true);
  });
});

for (const route of routes) {
  describe(routeName(route), () => {
    const request = (overrides: Partial<Send> & Pick<Send, 'key'>): Send => ({
      method: route.method,
      url: urlOf(route, world),
      payload: sampleBody(route, world),
      ...overrides,
    });

    if (route.permission !== 'public') {
      it('without a key: 401 missing_api_key', async () => {
        expectApiError(await refused(request({ key: null })), 401, 'authentication_error', 'missing_api_key');
      });

      it('with an empty key: 401 missing_api_key', async () => {
        expectApiError(await refused(request({ key: '' })), 401, 'authentication_error', 'missing_api_key');
      });

      it('with an unknown key: 401 invalid_api_key', async () => {
        expectApiError(await refused(request({ key: UNKNOWN_KEY })), 401, 'authentication_error', 'invalid_api_key');
      });
    }

    if (route.url.includes(':agent_id')) {
      it("another workspace's admin key on our agent: 404, never 403", async () => {
        expectApiError(await refused(request({ key: foreignKey })), 404, 'not_found');
      });

      it("our admin key on another workspace's agent (and its branch and version): 404", async () => {
        const url = urlOf(route, world, {
          agent_id: world.foreignAgentId,
          branch_id: world.foreignMainBranchId,
          version_id: world.foreignVersionId,
        });
        expectApiError(await refused(request({ key: keys.admin, url })), 404, 'not_found');
      });
    }

    for (const param of pathParams(route).filter((name) => name !== 'agent_id')) {
      it(`a :${param} of another agent of ours under our agent: 404`, async () => {
        const others: Record<string, string> = { branch_id: world.otherMainBranchId, version_id: world.otherVersionId };
        const url = urlOf(route, world, { [param]: others[param] ?? `unknown_${param}` });
        expectApiError(await refused(request({ key: keys.admin, url })), 404, 'not_found');
      });
    }

    for (const param of pathParams(route)) {
      it(`an unknown :${param}: 404`, async () => {
        const url = urlOf(route, world, { [param]: UNKNOWN_ID[param] ?? `unknown_${param}` });
        expectApiError(await refused(request({ key: keys.admin, url })), 404, 'not_found');
      });
    }

    for (const role of ROLES_REFUSED[route.permission]) {
      it(`the ${role} key: 403 authorization_error`, async () => {
        expectApiError(await refused(request({ key: keys[role] })), 403, 'authorization_error');
      });
    }

    if (route.body) {
      const asAdmin = (payload: unknown, contentType?: string) => request({ key: keys.admin, payload, contentType });

      it('malformed JSON: 422 json_invalid', async () => {
        const issues = expectValidationError(await refused(asAdmin('{bad')));
        expect(issues).toEqual([expect.objectContaining({ loc: ['body', 0], type: 'json_invalid' })]);
      });

      it('truncated JSON: 422 json_invalid', async () => {
        const issues = expectValidationError(await refused(asAdmin(JSON.stringify(sampleBody(route, world)).slice(0, -4))));
        expect(issues).toEqual([expect.objectContaining({ loc: ['body', 0], type: 'json_invalid' })]);
      });

      it('a JSON array instead of an object: 422 at ["body"]', async () => {
        const issues = expectValidationError(await refused(asAdmin(JSON.stringify([sampleBody(route, world)]))));
        expect(locs(issues)).toContainEqual(['body']);
      });

      it('a JSON string instead of an object: 422 at ["body"]', async () => {
        const issues = expectValidationError(await refused(asAdmin(JSON.stringify('an object belongs here'))));
        expect(locs(issues)).toContainEqual(['body']);
      });

      it('a JSON number instead of an object: 422 at ["body"]', async () => {
        const issues = expectValidationError(await refused(asAdmin('42')));
        expect(locs(issues)).toContainEqual(['body']);
      });

      it('a __proto__ key: 422 json_invalid', async () => {
        const body = JSON.stringify(sampleBody(route, world)).replace(/^\{/, '{"__proto__":{"polluted":true},');
        const issues = expectValidationError(await refused(asAdmin(body)));
        expect(issues).toEqual([expect.objectContaining({ type: 'json_invalid' })]);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      });

      it('a 2.5 MB body: 413', async () => {
        const body = JSON.stringify({ ...sampleBody(route, world), padding: 'x'.repeat(TWO_AND_A_HALF_MB) });
        expect(body.length).toBeGreaterThan(2 * 1024 * 1024);
        expectApiError(await refused(asAdmin(body)), 413, 'invalid_request', 'payload_too_large');
      });

      it('JSON nested 10,000 levels deep: 422 json_too_deep', async () => {
        const body = `{"conversation_config":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`;
        const issues = expectValidationError(await refused(asAdmin(body)));
        expect(issues).toEqual([expect.objectContaining({ loc: ['body'], type: 'json_too_deep' })]);
      });

      it('arrays nested 10,000 levels deep: 422 json_too_deep', async () => {
        const body = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
        const issues = expectValidationError(await refused(asAdmin(body)));
        expect(issues).toEqual([expect.objectContaining({ loc: ['body'], type: 'json_too_deep' })]);
      });

      it('a text/plain body: 422 at ["body"] (it is a string, not an object)', async () => {
        const issues = expectValidationError(await refused(asAdmin(JSON.stringify(sampleBody(route, world)), 'text/plain')));
        expect(locs(issues)).toEqual([['body']]);
      });

      it('an unsupported content type: a clean 4xx in the error shape', async () => {
        const response = await refused(asAdmin('<agent name="A"/>', 'application/xml'));
        expect(response.statusCode).toBeGreaterThanOrEqual(400);
        expectApiError(response, response.statusCode, 'invalid_request');
      });

      const shape = route.body instanceof z.ZodObject ? (route.body.shape as Record<string, z.ZodType>) : {};
      for (const [field, schema] of Object.entries(shape)) {
        const wrong = wrongValueFor(schema);
        if (wrong === undefined) continue;
        it(`a wrong type for "${field}" (${JSON.stringify(wrong)}): 422 at ["body","${field}",...]`, async () => {
          const issues = expectValidationError(await refused(asAdmin({ ...sampleBody(route, world), [field]: wrong })));
          expect(
            issues.some((issue) => issue.loc[0] === 'body' && issue.loc[1] === field),
            JSON.stringify(issues),
          ).toBe(true);
        });
      }
    }

    it('the sample request itself succeeds with the admin key (the refusals above are not vacuous)', async () => {
      // A fresh fixture: the request may write (or delete) it.
      const fresh = await createFixture();
      const response = await send({ method: route.method, url: urlOf(route, fresh), key: keys.admin, payload: sampleBody(route, fresh) });
      expectClean(response);
      // Refused by the fixture's state, when its example says so (src/http/route-example.ts): past every check of the request.
      const conflict = route.example?.conflictsWith;
      if (conflict) expectApiError(response, 409, 'conflict', conflict);
      else expect([200, 204], describeResponse(response)).toContain(response.statusCode);
    });

    if (route.method === 'GET') {
      it('unknown query parameters are ignored: 200', async () => {
        const base = urlOf(route, world);
        const url = `${base}${base.includes('?') ? '&' : '?'}definitely_not_a_parameter=1&another=%F0%9F%A4%96`;
        // The least privileged role the route admits (a viewer for most reads, an admin for the audit log).
        const role = (['viewer', 'commenter', 'editor', 'admin'] as const).find((candidate) => !ROLES_REFUSED[route.permission].includes(candidate));
        const response = await send({ method: 'GET', url, key: keys[role ?? 'admin'] });
        expectClean(response);
        expect(response.statusCode, describeResponse(response)).toBe(200);
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Specific wrong types and values
// ---------------------------------------------------------------------------------------------

const agentUrl = () => `/v1/convai/agents/${world.agentId}`;
const branchesUrl = () => `/v1/convai/agents/${world.agentId}/branches`;

describe('wrong types and values in bodies', () => {
  it('PATCH agent with a string temperature: 422 at the exact loc', async () => {
    const issues = expectValidationError(
      await refused({
        method: 'PATCH',
        url: agentUrl(),
        key: keys.admin,
        payload: { conversation_config: { agent: { prompt: { temperature: 'hot' } } } },
      }),
    );
    expect(locs(issues)).toContainEqual(['body', 'conversation_config', 'agent', 'prompt', 'temperature']);
    for (const loc of locs(issues)) expect(loc.slice(0, 2)).toEqual(['body', 'conversation_config']);
  });

  it('PATCH agent with conversation_config as a string: 422 at ["body","conversation_config"]', async () => {
    const issues = expectValidationError(
      await refused({ method: 'PATCH', url: agentUrl(), key: keys.admin, payload: { conversation_config: 'hot' } }),
    );
    expect(locs(issues)).toContainEqual(['body', 'conversation_config']);
  });

  it('PATCH agent with tags that are not strings: 422 at ["body","tags",1]', async () => {
    const issues = expectValidationError(
      await refused({ method: 'PATCH', url: agentUrl(), key: keys.admin, payload: { tags: ['ok', 7] } }),
    );
    expect(locs(issues)).toContainEqual(['body', 'tags', 1]);
  });

  it('create agent without conversation_config: 422 at ["body","conversation_config"]', async () => {
    const issues = expectValidationError(
      await refused({ method: 'POST', url: '/v1/convai/agents/create', key: keys.admin, payload: { name: 'A' } }),
    );
    expect(issues.some((issue) => issue.loc[0] === 'body' && issue.loc[1] === 'conversation_config'), JSON.stringify(issues)).toBe(true);
  });

  it('create agent with an empty body: 422 at ["body","conversation_config"]', async () => {
    const issues = expectValidationError(await refused({ method: 'POST', url: '/v1/convai/agents/create', key: keys.admin, payload: '' }));
    expect(issues.some((issue) => issue.loc[0] === 'body' && issue.loc[1] === 'conversation_config'), JSON.stringify(issues)).toBe(true);
  });

  it('create agent with a wrongly typed nested value: 422 at its loc', async () => {
    const issues = expectValidationError(
      await refused({
        method: 'POST',
        url: '/v1/convai/agents/create',
        key: keys.admin,
        payload: { conversation_config: { agent: { prompt: { temperature: 'hot' } } } },
      }),
    );
    expect(locs(issues)).toContainEqual(['body', 'conversation_config', 'agent', 'prompt', 'temperature']);
  });

  it('create branch with an unknown parent_version_id: 422 at ["body","parent_version_id"]', async () => {
    const issues = expectValidationError(
      await refused({
        method: 'POST',
        url: branchesUrl(),
        key: keys.admin,
        payload: { parent_version_id: UNKNOWN_ID.version_id, name: 'Orphan', description: '' },
      }),
    );
    expect(locs(issues)).toEqual([['body', 'parent_version_id']]);
  });

  it("create branch from another workspace's version: 422 at [\"body\",\"parent_version_id\"]", async () => {
    const issues = expectValidationError(
      await refused({
        method: 'POST',
        url: branchesUrl(),
        key: keys.admin,
        payload: { parent_version_id: world.foreignVersionId, name: 'Stolen', description: '' },
      }),
    );
    expect(locs(issues)).toEqual([['body', 'parent_version_id']]);
  });

  it.each([
    ['with "!"', 'bad name!'],
    ['of 141 characters', 'b'.repeat(141)],
    ['that is empty', ''],
    ['that is only spaces', '   '],
    ['with a newline', 'two\nlines'],
  ])('create branch with a name %s: 422 at ["body","name"]', async (_, name) => {
    const issues = expectValidationError(
      await refused({
        method: 'POST',
        url: branchesUrl(),
        key: keys.admin,
        payload: { parent_version_id: world.mainVersionId, name, description: '' },
      }),
    );
    expect(locs(issues)).toContainEqual(['body', 'name']);
  });

  it('create branch with a name of exactly 140 characters is accepted (the limit is not off by one)', async () => {
    const response = await send({
      method: 'POST',
      url: branchesUrl(),
      key: keys.admin,
      payload: { parent_version_id: world.mainVersionId, name: 'c'.repeat(140), description: '' },
    });
    expect(response.statusCode, describeResponse(response)).toBe(200);
  });

  it('create branch with a name that is taken: 409 conflict', async () => {
    expectApiError(
      await refused({
        method: 'POST',
        url: branchesUrl(),
        key: keys.admin,
        payload: { parent_version_id: world.mainVersionId, name: 'Main', description: '' },
      }),
      409,
      'conflict',
    );
  });

  it('create branch with a description over 4096 characters: 422 at ["body","description"]', async () => {
    const issues = expectValidationError(
      await refused({
        method: 'POST',
        url: branchesUrl(),
        key: keys.admin,
        payload: { parent_version_id: world.mainVersionId, name: 'Long', description: 'd'.repeat(4097) },
      }),
    );
    expect(locs(issues)).toContainEqual(['body', 'description']);
  });

  it.each([
    ['with "!"', { name: 'bad name!' }, ['body', 'name']],
    ['of 141 characters', { name: 'b'.repeat(141) }, ['body', 'name']],
    ['with a description over 4096 characters', { description: 'd'.repeat(4097) }, ['body', 'description']],
    ['with an unknown protection_status', { protection_status: 'nobody_may_write' }, ['body', 'protection_status']],
    ['with is_archived as a string', { is_archived: 'yes' }, ['body', 'is_archived']],
  ])('PATCH branch %s: 422', async (_, payload, loc) => {
    // A fresh branch: if one of these is wrongly accepted, the shared fixture stays intact.
    const fresh = await createFixture();
    const url = `/v1/convai/agents/${fresh.agentId}/branches/${fresh.branchId}`;
    const issues = expectValidationError(await refused({ method: 'PATCH', url, key: keys.admin, payload }));
    expect(locs(issues)).toContainEqual(loc);
  });

  it('PATCH main branch with auto_rebase: 422 at ["body","auto_rebase"]', async () => {
    const url = `${branchesUrl()}/${world.mainBranchId}`;
    const issues = expectValidationError(await refused({ method: 'PATCH', url, key: keys.admin, payload: { auto_rebase: true } }));
    expect(locs(issues)).toEqual([['body', 'auto_rebase']]);
  });

  it("an editor changing a branch's protection: 403, nothing written", async () => {
    const url = `${branchesUrl()}/${world.branchId}`;
    expectApiError(
      await refused({ method: 'PATCH', url, key: keys.editor, payload: { protection_status: 'admin_perms_required' } }),
      403,
      'authorization_error',
    );
  });

  it('create branch from a version of another agent of ours: 422 at ["body","parent_version_id"]', async () => {
    const issues = expectValidationError(
      await refused({
        method: 'POST',
        url: branchesUrl(),
        key: keys.admin,
        payload: { parent_version_id: world.otherVersionId, name: 'Crossed', description: '' },
      }),
    );
    expect(locs(issues)).toEqual([['body', 'parent_version_id']]);
  });

  it('PATCH main branch to archived: 409 conflict', async () => {
    const url = `${branchesUrl()}/${world.mainBranchId}`;
    expectApiError(await refused({ method: 'PATCH', url, key: keys.admin, payload: { is_archived: true } }), 409, 'conflict');
  });

  it('PATCH agent with a stale expected_version_id: 409 concurrent_modification', async () => {
    const url = `${agentUrl()}?expected_version_id=${UNKNOWN_ID.version_id}`;
    expectApiError(
      await refused({ method: 'PATCH', url, key: keys.admin, payload: { name: 'Never committed' } }),
      409,
      'conflict',
      'concurrent_modification',
    );
  });
});

describe('wrong types and values in queries', () => {
  it.each(['0', '101', 'abc', '-1', '1.5', '', '1e2', '0x10'])('GET agents?page_size=%s: 422 at ["query","page_size"]', async (value) => {
    const issues = expectValidationError(await refused({ method: 'GET', url: `/v1/convai/agents?page_size=${value}`, key: keys.admin }));
    expect(locs(issues)).toEqual([['query', 'page_size']]);
  });

  it.each(['1', '100'])('GET agents?page_size=%s is accepted (the bounds are inclusive)', async (value) => {
    const response = await send({ method: 'GET', url: `/v1/convai/agents?page_size=${value}`, key: keys.admin });
    expect(response.statusCode, describeResponse(response)).toBe(200);
  });

  it.each([
    ['archived=maybe', 'archived'],
    ['show_only_owned_agents=2', 'show_only_owned_agents'],
    ['sort_direction=sideways', 'sort_direction'],
    ['sort_by=mood', 'sort_by'],
  ])('GET agents?%s: 422 at ["query",...]', async (query, field) => {
    const issues = expectValidationError(await refused({ method: 'GET', url: `/v1/convai/agents?${query}`, key: keys.admin }));
    expect(locs(issues)).toEqual([['query', field]]);
  });

  it('GET summaries with 101 agent_ids: 422 at ["query","agent_ids"]', async () => {
    const query = Array.from({ length: 101 }, (_, i) => `agent_ids=agent_${i}`).join('&');
    const issues = expectValidationError(await refused({ method: 'GET', url: `/v1/convai/agents/summaries?${query}`, key: keys.admin }));
    expect(locs(issues)[0].slice(0, 2)).toEqual(['query', 'agent_ids']);
  });

  it.each(['0', '101', 'many'])('GET branches?limit=%s: 422 at ["query","limit"]', async (value) => {
    const issues = expectValidationError(await refused({ method: 'GET', url: `${branchesUrl()}?limit=${value}`, key: keys.admin }));
    expect(locs(issues)).toEqual([['query', 'limit']]);
  });

  it("GET agent with the second branch's version_id and main's branch_id: 422", async () => {
    const url = `${agentUrl()}?version_id=${world.branchVersionId}&branch_id=${world.mainBranchId}`;
    const issues = expectValidationError(await refused({ method: 'GET', url, key: keys.admin }));
    expect(locs(issues)).toEqual([['query', 'version_id']]);
  });

  it('GET agent with a matching version_id and branch_id: 200 (the 422 above is about the mismatch)', async () => {
    const url = `${agentUrl()}?version_id=${world.branchVersionId}&branch_id=${world.branchId}`;
    const agent = await ok<{ version_id: string; branch_id: string }>(await send({ method: 'GET', url, key: keys.admin }));
    expect([agent.version_id, agent.branch_id]).toEqual([world.branchVersionId, world.branchId]);
  });

  it.each([
    ['an unknown branch_id', () => `branch_id=${UNKNOWN_ID.branch_id}`],
    ['an unknown version_id', () => `version_id=${UNKNOWN_ID.version_id}`],
    ['a known version_id with an unknown branch_id', () => `version_id=${world.mainVersionId}&branch_id=${UNKNOWN_ID.branch_id}`],
    ["another workspace's version_id", () => `version_id=${world.foreignVersionId}`],
    ["another workspace's branch_id", () => `branch_id=${world.foreignMainBranchId}`],
    ['the version_id of another agent of ours', () => `version_id=${world.otherVersionId}`],
    ['the branch_id of another agent of ours', () => `branch_id=${world.otherMainBranchId}`],
    ['a garbage version_id', () => `version_id=${encodeURIComponent("'; drop table versions; --")}`],
  ])('GET agent with %s: 404', async (_, query) => {
    expectApiError(await refused({ method: 'GET', url: `${agentUrl()}?${query()}`, key: keys.admin }), 404, 'not_found');
  });

  it.each([
    ['an unknown branch_id', () => UNKNOWN_ID.branch_id],
    ['the branch_id of another agent of ours', () => world.otherMainBranchId],
    ["another workspace's branch_id", () => world.foreignMainBranchId],
  ])('PATCH agent with %s: 404, nothing committed', async (_, branchId) => {
    const url = `${agentUrl()}?branch_id=${branchId()}`;
    expectApiError(await refused({ method: 'PATCH', url, key: keys.admin, payload: { name: 'Nowhere' } }), 404, 'not_found');
  });

  it.each([
    ['garbage', 'not-a-cursor'],
    ['base64 of a JSON object', Buffer.from('{"a":1}').toString('base64url')],
    ['base64 of a wrongly typed pair', Buffer.from('[{"x":1},"agent_x"]').toString('base64url')],
    ['base64 of non-JSON', Buffer.from('\u0000\u0001binary').toString('base64url')],
  ])('GET agents with an unknown cursor (%s): 400 invalid_cursor', async (_, cursor) => {
    const url = `/v1/convai/agents?cursor=${encodeURIComponent(cursor)}`;
    expectApiError(await refused({ method: 'GET', url, key: keys.admin }), 400, 'invalid_request', 'invalid_cursor');
  });

  it.each([
    ['a name cursor used with the default sort', '["zzz","agent_x"]'],
    ['an infinite position', '[1e400,"agent_x"]'],
    ['a negative position', '[-1,""]'],
    ['a fractional position', '[1.5,"agent_x"]'],
    ['a number cursor used with the name sort', '[5,"agent_x"]'],
  ])('GET agents with a forged but well-formed cursor (%s): never 5xx', async (_, json) => {
    const url = `/v1/convai/agents?cursor=${Buffer.from(json).toString('base64url')}`;
    expectClean(await refused({ method: 'GET', url, key: keys.admin }));
  });

  it('GET agents with invalid UTF-8 in a query value: 200 or a clean 4xx', async () => {
    expectClean(await refused({ method: 'GET', url: '/v1/convai/agents?search=%FF%FE%ED%A0%80', key: keys.admin }));
  });

  it('GET agents with a 100 kB search string: 200 or a clean 4xx, never 5xx', async () => {
    // Node's own header limit (16 kB) stops this over a socket; in process nothing does.
    expectClean(await refused({ method: 'GET', url: `/v1/convai/agents?search=${'s'.repeat(100_000)}`, key: keys.admin }));
  });

  it('GET agents with a search longer than 1,000 characters: 422 at the search (a documented limit)', async () => {
    const response = await refused({ method: 'GET', url: `/v1/convai/agents?search=${'s'.repeat(1_001)}`, key: keys.admin });
    expect(expectValidationError(response)[0].loc).toEqual(['query', 'search']);
    const longest = await ok<{ agents: unknown[] }>(await refused({ method: 'GET', url: `/v1/convai/agents?search=${'s'.repeat(1_000)}`, key: keys.admin }));
    expect(longest.agents).toEqual([]);
  });
});

describe('unknown parameters and routes', () => {
  it('PATCH agent with unknown query parameters and a body that changes nothing: 200, no version', async () => {
    const response = await refused({ method: 'PATCH', url: `${agentUrl()}?not_a_parameter=1&dry_run=true`, key: keys.admin, payload: {} });
    expect(response.statusCode, describeResponse(response)).toBe(200);
    expect((response.json() as { version_id: string }).version_id).toBe(world.mainVersionId);
  });

  it.each([
    ['GET', '/v1/convai/no-such-thing'],
    ['PUT', '/v1/convai/agents/agent_x'],
    ['POST', '/v1/convai/agents'],
    ['DELETE', '/v1/convai/agents'],
  ] as const)('%s %s: 404 in the error shape', async (method, url) => {
    const response = await refused({ method: method as Send['method'], url, key: keys.admin, payload: method === 'GET' || method === 'DELETE' ? undefined : {} });
    expectApiError(response, 404, 'not_found');
  });
});

describe('odd ids in the path', () => {
  it.each([
    ['garbage', 'not-an-id'],
    ['SQL', "agent_' or '1'='1"],
    ['an emoji', '🤖'],
    ['a NUL character (%00)', '\u0000'],
    ['dots', '..'],
  ])('GET agent with an id that is %s: 404', async (_, id) => {
    expectApiError(await refused({ method: 'GET', url: `/v1/convai/agents/${encodeURIComponent(id)}`, key: keys.admin }), 404, 'not_found');
  });

  // The router refuses path parameters over `maxParamLength` itself: no such id can exist, so
  // 404 fits decisions.md D2 and 414 fits HTTP; either way the body must be the documented shape.
  it.each([
    ['GET', `/v1/convai/agents/agent_${'x'.repeat(1_000)}`],
    ['DELETE', `/v1/convai/agents/agent_${'x'.repeat(1_000)}`],
    ['PATCH', `/v1/convai/agents/agent_${'x'.repeat(1_000)}/branches/b`],
  ] as const)('%s with an agent id longer than the router allows: 404 or 414 in the error shape', async (method, url) => {
    const response = await refused({ method, url, key: keys.admin, payload: method === 'PATCH' ? {} : undefined });
    expect([404, 414], describeResponse(response)).toContain(response.statusCode);
    expectApiError(response, response.statusCode, response.statusCode === 404 ? 'not_found' : 'invalid_request');
  });

  it('a malformed percent-encoding in the path: 400 invalid_request in the error shape', async () => {
    const response = await refused({ method: 'GET', url: '/v1/convai/agents/%E0%A4%A', key: keys.admin });
    expectApiError(response, 400, 'invalid_request');
  });

  it('invalid UTF-8 in the path: 400 or 404 in the error shape', async () => {
    const response = await refused({ method: 'GET', url: '/v1/convai/agents/%FF%FE%ED%A0%80', key: keys.admin });
    expect([400, 404], describeResponse(response)).toContain(response.statusCode);
    expectApiError(response, response.statusCode, response.statusCode === 404 ? 'not_found' : 'invalid_request');
  });
});

// ---------------------------------------------------------------------------------------------
// Huge and strange strings: accepted or refused cleanly, never a 5xx
// ---------------------------------------------------------------------------------------------

const ONE_MB = 'n'.repeat(1_000_000);

/** Letters that do not compress (a fixed LCG), so a database cannot shrink them below a limit. */
function variedText(length: number): string {
  let state = 12345;
  let text = '';
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    text += String.fromCharCode(97 + (state % 26));
  }
  return text;
}

/** An accepted write must also read back; a refusal must be clean and write nothing. */
async function acceptedOrRefusedCleanly(request: Send, readBack: (response: LightMyRequestResponse) => string | undefined) {
  const before = await snapshotDatabase(store.db);
  const response = await send(request);
  expectClean(response);
  if (response.statusCode >= 400) {
    expect(snapshotDiff(before, await snapshotDatabase(store.db)), 'a refused request changed the database').toEqual([]);
    return response;
  }
  const url = readBack(response);
  if (url !== undefined) {
    const read = await send({ method: 'GET', url, key: keys.admin });
    expectClean(read);
    expect(read.statusCode, describeResponse(read)).toBe(200);
  }
  return response;
}

const createdAgentUrl = (response: LightMyRequestResponse) => `/v1/convai/agents/${(response.json() as { agent_id: string }).agent_id}`;
const createdBranchUrl = (response: LightMyRequestResponse) =>
  `${branchesUrl()}/${(response.json() as { created_branch_id: string }).created_branch_id}`;

describe('huge strings', () => {
  // Over a documented limit: refused at the field (test/limits.test.ts holds every limit exactly).
  it('a 1 MB agent name on create: 422 at ["body","name"]', async () => {
    const response = await refused({ method: 'POST', url: '/v1/convai/agents/create', key: keys.admin, payload: { conversation_config: {}, name: ONE_MB } });
    expect(locs(expectValidationError(response))).toEqual([['body', 'name']]);
  });

  it('a 1 MB agent name on PATCH: 422 at ["body","name"]', async () => {
    const { agentId } = await createAgent(keys.admin, 'Huge rename');
    const response = await refused({ method: 'PATCH', url: `/v1/convai/agents/${agentId}`, key: keys.admin, payload: { name: ONE_MB } });
    expect(locs(expectValidationError(response))).toEqual([['body', 'name']]);
  });

  it('a 1 MB tag: 422 at ["body","tags",0]', async () => {
    const { agentId } = await createAgent(keys.admin, 'Huge tag');
    const response = await refused({ method: 'PATCH', url: `/v1/convai/agents/${agentId}`, key: keys.admin, payload: { tags: [ONE_MB] } });
    expect(locs(expectValidationError(response))).toContainEqual(['body', 'tags', 0]);
  });

  it('a 1 MB version description: accepted or refused cleanly (no documented limit)', async () => {
    const { agentId } = await createAgent(keys.admin, 'Huge description');
    await acceptedOrRefusedCleanly(
      { method: 'PATCH', url: `/v1/convai/agents/${agentId}`, key: keys.admin, payload: { conversation_config: { agent: { first_message: 'x' } }, version_description: ONE_MB } },
      () => `/v1/convai/agents/${agentId}`,
    );
  });

  it('a 10 kB agent name of varied letters: 422 at ["body","name"]', async () => {
    const response = await refused({ method: 'POST', url: '/v1/convai/agents/create', key: keys.admin, payload: { conversation_config: {}, name: variedText(10_000) } });
    expect(locs(expectValidationError(response))).toEqual([['body', 'name']]);
  });

  it('a 10 kB tag of varied letters: 422 at ["body","tags",0]', async () => {
    const response = await refused({
      method: 'POST',
      url: '/v1/convai/agents/create',
      key: keys.admin,
      payload: { conversation_config: {}, name: 'Long tag', tags: [variedText(10_000)] },
    });
    expect(locs(expectValidationError(response))).toEqual([['body', 'tags', 0]]);
  });

  it('a 1 MB prompt: accepted (config sections have no limit but the body\'s) and read back', async () => {
    const response = await send({
      method: 'POST',
      url: '/v1/convai/agents/create',
      key: keys.admin,
      payload: { conversation_config: { agent: { prompt: { prompt: ONE_MB } } }, name: 'Huge prompt' },
    });
    expect(response.statusCode, describeResponse(response)).toBe(200);
    const agent = await ok<{ conversation_config: { agent: { prompt: { prompt: string } } } }>(await send({ method: 'GET', url: createdAgentUrl(response), key: keys.admin }));
    expect(agent.conversation_config.agent.prompt.prompt).toBe(ONE_MB);
  });

  it('a 1 MB branch name: 422 at ["body","name"]', async () => {
    const issues = expectValidationError(
      await refused({
        method: 'POST',
        url: branchesUrl(),
        key: keys.admin,
        payload: { parent_version_id: world.mainVersionId, name: ONE_MB, description: '' },
      }),
    );
    expect(locs(issues)).toContainEqual(['body', 'name']);
  });

  it('a 1 MB duplicate name: 422 at ["body","name"]', async () => {
    const response = await refused({ method: 'POST', url: `${agentUrl()}/duplicate`, key: keys.admin, payload: { name: ONE_MB } });
    expect(locs(expectValidationError(response))).toEqual([['body', 'name']]);
  });
});

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe('unicode edge cases in names', () => {
  // Sent as raw JSON text so that escapes such as a lone surrogate reach the server as written.
  const NAMES: [string, string][] = [
    ['emoji', JSON.stringify('🤖 Agent 👩🏽‍💻 🇺🇦')],
    ['right-to-left text', JSON.stringify('وكيل الدعم')],
    ['a right-to-left override', JSON.stringify('abc\u202edef')],
    ['combining marks', JSON.stringify('e\u0301\u0301\u0301')],
    ['zero-width characters', JSON.stringify('a\u200b\u200d\ufeffb')],
    ['a lone high surrogate', '"lone \\ud800 surrogate"'],
    ['a lone low surrogate', '"lone \\udfff surrogate"'],
    ['a NUL character', '"nul \\u0000 inside"'],
    ['a noncharacter', '"\\uffff"'],
  ];

  it.each(NAMES)('agent name with %s: accepted and read back, or refused cleanly', async (_, nameJson) => {
    const payload = `{"conversation_config":{},"name":${nameJson}}`;
    const response = await acceptedOrRefusedCleanly(
      { method: 'POST', url: '/v1/convai/agents/create', key: keys.admin, payload },
      createdAgentUrl,
    );
    const sent = JSON.parse(nameJson) as string;
    if (response.statusCode === 200 && !LONE_SURROGATE.test(sent)) {
      const agent = await ok<{ name: string }>(await send({ method: 'GET', url: createdAgentUrl(response), key: keys.admin }));
      expect(agent.name).toBe(sent);
    }
  });

  it.each(NAMES)('agent rename to %s: accepted and read back, or refused cleanly', async (_, nameJson) => {
    const { agentId } = await createAgent(keys.admin, 'To be renamed');
    await acceptedOrRefusedCleanly(
      { method: 'PATCH', url: `/v1/convai/agents/${agentId}`, key: keys.admin, payload: `{"name":${nameJson}}` },
      () => `/v1/convai/agents/${agentId}`,
    );
  });

  it.each(NAMES)('branch name with %s: accepted and read back, or refused cleanly', async (_, nameJson) => {
    const payload = `{"parent_version_id":${JSON.stringify(world.mainVersionId)},"name":${nameJson},"description":""}`;
    await acceptedOrRefusedCleanly({ method: 'POST', url: branchesUrl(), key: keys.admin, payload }, createdBranchUrl);
  });

  // The other text a caller stores: a tag, a branch description, a version description.
  it.each(NAMES.map(([label, json], i) => [label, json, i] as const))(
    'tag, branch description and version description with %s: accepted and read back, or refused cleanly',
    async (_, textJson, i) => {
      const created = await acceptedOrRefusedCleanly(
        { method: 'POST', url: '/v1/convai/agents/create', key: keys.admin, payload: `{"conversation_config":{},"name":"Tagged","tags":[${textJson}]}` },
        createdAgentUrl,
      );
      expect(created.statusCode).toBeLessThan(500);
      const payload = `{"parent_version_id":${JSON.stringify(world.mainVersionId)},"name":"Described ${i}","description":${textJson}}`;
      await acceptedOrRefusedCleanly({ method: 'POST', url: branchesUrl(), key: keys.admin, payload }, createdBranchUrl);
      const { agentId } = await createAgent(keys.admin, 'Version described');
      await acceptedOrRefusedCleanly(
        {
          method: 'PATCH',
          url: `/v1/convai/agents/${agentId}`,
          key: keys.admin,
          payload: `{"conversation_config":{"agent":{"first_message":"changed"}},"version_description":${textJson}}`,
        },
        (response) => `/v1/convai/agents/${agentId}/versions/${(response.json() as { version_id: string }).version_id}`,
      );
    },
  );

  it.each(NAMES)('search for %s: 200 with only names that contain it, or 422 for text no name can hold', async (_, nameJson) => {
    const search = JSON.parse(nameJson) as string;
    const url = `/v1/convai/agents?page_size=100&search=${percentEncode(search)}`;
    // A lone surrogate cannot survive percent-decoding (it becomes U+FFFD); a NUL can, and no name holds one.
    if (search.includes('\u0000')) {
      expect(expectValidationError(await refused({ method: 'GET', url, key: keys.admin }))[0].loc).toEqual(['query', 'search']);
      return;
    }
    const page = await ok<{ agents: { name: string }[] }>(await refused({ method: 'GET', url, key: keys.admin }));
    // Not for lone surrogates or U+FFFF: SQLite's LIKE reads both (and the bytes a lone
    // surrogate is stored as) as U+FFFD, so "contains" has no single meaning for them.
    if (!LONE_SURROGATE.test(search) && !search.includes('\uffff')) {
      const wrong = page.agents.map((agent) => agent.name).filter((name) => !name.toLowerCase().includes(search.toLowerCase()));
      expect(wrong, 'agents whose names do not contain the search').toEqual([]);
    }
  });

  it('branch names may use letters of any script (Arabic, CJK, accents)', async () => {
    for (const name of ['فرع تجريبي', '実験ブランチ', 'Ünïcödé (v2) [x] {y} - a/b.c']) {
      const response = await send({
        method: 'POST',
        url: branchesUrl(),
        key: keys.admin,
        payload: { parent_version_id: world.mainVersionId, name, description: '' },
      });
      expect(response.statusCode, `${name}: ${describeResponse(response)}`).toBe(200);
      const branch = await ok<{ name: string }>(await send({ method: 'GET', url: createdBranchUrl(response), key: keys.admin }));
      expect(branch.name).toBe(name);
    }
  });
});

describe('search treats its special characters literally', () => {
  it.each([
    ['%', 'Discount 100% bot', '100%'],
    ['_', 'snake_case bot', 'snake_case'],
    ['\\', 'back\\slash bot', 'back\\slash'],
  ])('a search containing "%s" finds the agent whose name contains it', async (_, name, search) => {
    const { agentId } = await createAgent(keys.admin, name);
    const url = `/v1/convai/agents?page_size=100&search=${encodeURIComponent(search)}`;
    const page = await ok<{ agents: { agent_id: string }[] }>(await send({ method: 'GET', url, key: keys.admin }));
    expect(page.agents.map((agent) => agent.agent_id)).toContain(agentId);
  });

  it.each(['%', '_', '\\'])('a search for "%s" matches only names that contain it', async (search) => {
    // Agents whose names a wrongly escaped pattern would match: any character, or a backslash.
    await createAgent(keys.admin, 'No special characters here');
    await createAgent(keys.admin, 'only a back\\slash');
    const url = `/v1/convai/agents?page_size=100&search=${encodeURIComponent(search)}`;
    const page = await ok<{ agents: { name: string }[] }>(await send({ method: 'GET', url, key: keys.admin }));
    const wrong = page.agents.map((agent) => agent.name).filter((name) => !name.includes(search));
    expect(wrong).toEqual([]);
  });
});

describe('isolation on routes without an agent in the path', () => {
  it("another workspace's key does not see our agent in the list", async () => {
    const page = await ok<{ agents: { agent_id: string }[] }>(
      await send({ method: 'GET', url: '/v1/convai/agents?page_size=100', key: foreignKey }),
    );
    expect(page.agents.map((agent) => agent.agent_id)).not.toContain(world.agentId);
  });

  it("another workspace's key gets a not-found entry for our agent in summaries", async () => {
    const url = `/v1/convai/agents/summaries?agent_ids=${world.agentId}&agent_ids=${world.foreignAgentId}`;
    const summaries = await ok<Record<string, { status: string; error_code?: number }>>(
      await refused({ method: 'GET', url, key: foreignKey }),
    );
    expect(summaries[world.agentId]).toMatchObject({ status: 'failure', error_code: 404 });
    expect(summaries[world.foreignAgentId]).toMatchObject({ status: 'success' });
  });
});
