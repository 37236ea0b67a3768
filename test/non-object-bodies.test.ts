import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { expectValidationError, locs, routeName, routeRequests, sampleBody, urlOf, type World } from './support/route-requests.js';
import { startTestApp } from './support/test-app.js';

// Every route with a JSON body wants an object: any other JSON value (`null` included, which used to
// pass as "no body") is a 422 at ["body"] that writes nothing. Generated over the route table, so
// a new route with a body is covered without a line here. The one exception is a body upstream
// declares as `null`-able (procedure create): there `null` is all defaults, and only `null`.

const testApp = await startTestApp();
const { keys } = testApp;
const { send, refused, createWorld } = routeRequests(testApp);
afterAll(() => testApp.close());

let world: World;
beforeAll(async () => {
  world = await createWorld();
});

// The signed post-call webhook refuses an unsigned body before reading it (test/experiments-webhooks.test.ts).
const bodyRoutes = testApp.app.routes.filter((route) => route.body !== undefined && route.permission !== 'public');
/** Its body schema admits `null` (upstream: "body optional or null"). */
const takesNull = (route: (typeof bodyRoutes)[number]) => (route.body as { safeParse(value: unknown): { success: boolean } }).safeParse(null).success;

/** The JSON values that are not objects, the ones a hand-written list would forget first. */
const FIXED = ['null', 'true', 'false', '0', '-1.5', '""', '"{}"', '[]', '[{}]', '[null]'];

/** Any JSON text whose top-level value is not an object. */
const nonObjectJson = fc
  .jsonValue({ maxDepth: 2 })
  .filter((value) => typeof value !== 'object' || value === null || Array.isArray(value))
  .map((value) => JSON.stringify(value))
  // fast-check favours a `__proto__` key, which the parser refuses first, as json_invalid at
  // ["body", 0] (test/bad-input.test.ts): a refusal for another reason than the type.
  .filter((text) => !text.includes('"__proto__"'));

describe('non-object JSON bodies', () => {
  it('the route table has routes with a body', () => {
    expect(bodyRoutes.length).toBeGreaterThanOrEqual(10);
  });

  for (const route of bodyRoutes) {
    describe(routeName(route), () => {
      const request = (payload: string) => ({ method: route.method, url: urlOf(route, world), key: keys.admin, payload });

      it.each(FIXED.filter((payload) => payload !== 'null' || !takesNull(route)))('%s: 422 at ["body"], nothing written', async (payload) => {
        const issues = expectValidationError(await refused(request(payload)));
        expect(locs(issues)).toContainEqual(['body']);
      });

      it('any generated non-object JSON: 422 at ["body"], nothing written', async () => {
        await fc.assert(
          fc.asyncProperty(takesNull(route) ? nonObjectJson.filter((text) => text !== 'null') : nonObjectJson, async (payload) => {
            const issues = expectValidationError(await refused(request(payload)));
            expect(locs(issues)).toContainEqual(['body']);
          }),
          { numRuns: Number(process.env.FUZZ_RUNS ?? 8) },
        );
      });

    });
  }

  // After every refusal above: these write, and a refusal's snapshot must see only its own request.
  it.each(bodyRoutes.map((route) => [routeName(route), route] as const))(
    '%s: its sample object body is not refused at ["body"] (the refusals above are about the type)',
    async (_, route) => {
      const response = await send({ method: route.method, url: urlOf(route, world), key: keys.admin, payload: sampleBody(route, world) });
      const refusedAtBody = response.statusCode === 422 && locs(expectValidationError(response)).some((loc) => loc.length === 1 && loc[0] === 'body');
      expect(refusedAtBody, response.body.slice(0, 300)).toBe(false);
    },
  );

  it('only procedure create takes a null body, and answers it as one with every default', async () => {
    expect(bodyRoutes.filter(takesNull).map(routeName)).toEqual(['POST /v1/convai/agents/:agent_id/branches/:branch_id/procedures']);
    const url = `/v1/convai/agents/${world.agentId}/branches/${world.branchId}/procedures`;
    const created = await send({ method: 'POST', url, key: keys.admin, payload: 'null' });
    expect(created.statusCode, created.body).toBe(200);
    const { procedure_id: procedureId } = created.json() as { procedure_id: string };
    const draft = await send({ method: 'GET', url: `${url}/${procedureId}/draft`, key: keys.admin });
    expect(draft.json()).toMatchObject({ procedure_id: procedureId, name: '', content: '', type: 'free_form', trigger: '' });
  });

  it('PATCH agent with no body at all still changes nothing and answers 200 (absent is not null)', async () => {
    const response = await send({ method: 'PATCH', url: `/v1/convai/agents/${world.agentId}`, key: keys.admin });
    expect(response.statusCode, response.body.slice(0, 300)).toBe(200);
  });
});
