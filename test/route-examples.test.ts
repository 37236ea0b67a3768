import { readFileSync } from 'node:fs';

import { afterAll, describe, expect, it } from 'vitest';
import * as z from 'zod';

import type { RouteDefinition } from '../src/http/route.js';
import { type Fixture, optionalReferences, pathParams, queryIds, requiredQuery, routeName, sampleBody } from './support/route-requests.js';
import { startTestApp } from './support/test-app.js';

// Every route carries the example request the fuzz suite, the access matrix and the bad-input
// tests send (src/http/route-example.ts), and says whether upstream has it. A route added with a
// complete example is covered by those suites with no other test edit; these checks make sure
// the example is complete.

// Top-level await: the route table must exist before the per-route tests are declared.
const testApp = await startTestApp();
afterAll(() => testApp.close());
const routes = testApp.app.routes;

/** Stand-in ids: the checks here look at the example's shape, not at a database. */
const IDS: Fixture = {
  agentId: 'agent_example',
  mainBranchId: 'agtbrch_example_main',
  mainVersionId: 'agtvrsn_example_main',
  branchId: 'agtbrch_example_branch',
  branchVersionId: 'agtvrsn_example_branch',
  deploymentId: 'agtdpl_example',
  proposalId: 'agtmprop_example',
  reviewerUserId: 'user_example',
  procedureId: 'agtprc_example',
  procedureVersionId: 'agtprcv_example',
  guardedRolloutId: 'agtgrol_example',
  webhookId: 'owh_example',
  metricKey: 'csat_example',
};

function queryKeys(route: RouteDefinition): string[] {
  return route.query instanceof z.ZodObject ? Object.keys(route.query.shape) : [];
}

/** The operations of upstream's API (the spec the wire schemas are generated from). */
const UPSTREAM_OPERATIONS = new Set(
  Object.values(JSON.parse(readFileSync(new URL('../spec/openapi-agents.json', import.meta.url), 'utf8')).paths as Record<string, Record<string, { operationId: string }>>).flatMap(
    (operations) => Object.values(operations).map((operation) => operation.operationId),
  ),
);

describe('every route carries a complete example request', () => {
  it('has routes', () => {
    expect(routes.length).toBeGreaterThanOrEqual(20);
  });

  it.each(routes.map((route) => [routeName(route), route] as const))('%s', (_, route) => {
    const example = route.example;
    expect(example, `${routeName(route)} has no example: give its defineRoute one (src/http/route-example.ts)`).toBeDefined();
    // Every placeholder takes one of the example ids, and nothing else is named.
    expect(Object.keys(example!.params ?? {}).sort()).toEqual(pathParams(route).sort());
    // A body exactly when the route takes one.
    expect(example!.body !== undefined, 'an example body exactly when the route has a body').toBe(route.body !== undefined);
    if (route.body) expect(sampleBody(route, IDS)).toBeTypeOf('object');
    // Query ids classified are the route's own query parameters.
    for (const name of Object.keys(queryIds(route))) expect(queryKeys(route), `queryIds names ${name}`).toContain(name);
    // The required query, with or without every optional reference, passes the query schema.
    const references = optionalReferences(route, IDS);
    for (const query of [requiredQuery(route, IDS), { ...requiredQuery(route, IDS), ...references.query }]) {
      if (!route.query) {
        expect(query).toEqual({});
        continue;
      }
      const result = (route.query as z.ZodType).safeParse(query);
      expect(result.success, JSON.stringify(result.error?.issues)).toBe(true);
    }
  });
});

describe('extensions: routes upstream does not have', () => {
  const extensions = routes.filter((route) => route.extension).map(routeName).sort();

  it('are exactly the routes whose operation is not in upstream\'s spec', () => {
    expect(UPSTREAM_OPERATIONS.size).toBeGreaterThan(20);
    const notUpstream = routes.filter((route) => !UPSTREAM_OPERATIONS.has(route.operationId)).map(routeName).sort();
    expect(extensions.length).toBeGreaterThan(0);
    expect(extensions).toEqual(notUpstream);
  });

  it('are flagged `x-branchwise-extension: true` in /openapi.json, and no other operation is', async () => {
    const response = await testApp.app.server.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const paths = (response.json() as { paths: Record<string, Record<string, Record<string, unknown>>> }).paths;
    const flagged: string[] = [];
    for (const [path, operations] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        if ('x-branchwise-extension' in operation) {
          expect(operation['x-branchwise-extension']).toBe(true);
          flagged.push(`${method.toUpperCase()} ${path.replace(/\{([a-z_]+)\}/g, ':$1')}`);
        }
      }
    }
    expect(flagged.sort()).toEqual(extensions);
  });
});
