import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { listen, startTestApp, type TestApp } from './support/test-app.js';

// GET /v1/convai/whoami (extension): the dashboard's sign-in. Upstream's GET /v1/user needs
// subscription and onboarding fields this server has no truthful value for.

let testApp: TestApp;
let url: string;
beforeAll(async () => {
  testApp = await startTestApp();
  url = await listen(testApp);
});
afterAll(async () => {
  await testApp?.close();
});

const whoami = (key: string | undefined) => fetch(`${url}/v1/convai/whoami`, { headers: key === undefined ? {} : { 'xi-api-key': key } });

describe('GET /v1/convai/whoami', () => {
  test("names the key's user, workspace and role, for every role", async () => {
    const users = await testApp.store.db.selectFrom('users').select(['id', 'name', 'email', 'role', 'workspace_id']).execute();
    const workspaces = await testApp.store.db.selectFrom('workspaces').select(['id', 'name']).execute();
    for (const role of ['admin', 'editor', 'commenter', 'viewer'] as const) {
      const response = await whoami(testApp.keys[role]);
      expect(response.status, role).toBe(200);
      const body = await response.json();
      const user = users.find((candidate) => candidate.name === (role === 'admin' ? 'admin' : `${role}-user`))!;
      expect(body).toEqual({
        user_id: user.id,
        user_name: user.name,
        email: user.email,
        workspace_id: user.workspace_id,
        workspace_name: 'default',
        role,
      });
      expect(workspaces.find((workspace) => workspace.id === body.workspace_id)?.name).toBe('default');
    }
  });

  test("another workspace's key names that workspace", async () => {
    const body = await (await whoami(testApp.foreignKey)).json();
    expect(body).toMatchObject({ workspace_name: 'elsewhere', role: 'admin' });
  });

  test('without a key, or with a wrong one, it is the usual 401', async () => {
    for (const key of [undefined, 'sk_wrong']) {
      const response = await whoami(key);
      expect(response.status).toBe(401);
      expect((await response.json()).detail.message).toEqual(expect.any(String));
    }
  });
});
