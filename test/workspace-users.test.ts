import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { injectAs, okJson, startTestApp, type TestApp, userIdsByRole } from './support/test-app.js';

// Extension: GET /v1/convai/workspace/users lists the caller's workspace's users (names for the ids
// that merge proposals carry, and the reviewers a client offers).

interface UsersAnswer {
  users: { user_id: string; name: string; email: string; role: string }[];
}

let testApp: TestApp;
beforeAll(async () => {
  testApp = await startTestApp();
});
afterAll(() => testApp?.close());

describe('GET /v1/convai/workspace/users (extension)', () => {
  it("lists the caller's workspace's users by name with their roles, to any role, and no other workspace's", async () => {
    const ids = await userIdsByRole(testApp);
    const seen = okJson<UsersAnswer>(await injectAs(testApp, 'GET', '/v1/convai/workspace/users', testApp.keys.viewer));
    expect(seen.users.map((user) => [user.name, user.role, user.user_id])).toEqual([
      ['admin', 'admin', ids.admin],
      ['commenter-user', 'commenter', ids.commenter],
      ['editor-user', 'editor', ids.editor],
      ['viewer-user', 'viewer', ids.viewer],
    ]);

    const added = await testApp.app.workspaces.createKey('default', 'a-reviewer', 'editor');
    const after = okJson<UsersAnswer>(await injectAs(testApp, 'GET', '/v1/convai/workspace/users', added.key));
    expect(after.users.map((user) => user.name)).toEqual(['a-reviewer', 'admin', 'commenter-user', 'editor-user', 'viewer-user']);

    const foreign = okJson<UsersAnswer>(await injectAs(testApp, 'GET', '/v1/convai/workspace/users', testApp.foreignKey));
    expect(foreign.users.map((user) => user.role)).toEqual(['admin']);
    expect(foreign.users.map((user) => user.user_id)).not.toContain(ids.admin);

    expect((await injectAs(testApp, 'GET', '/v1/convai/workspace/users', null)).statusCode).toBe(401);
  });
});
