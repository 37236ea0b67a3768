import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, expect, test } from 'vitest';

import { injectAs, startTestApp, type TestApp } from './support/test-app.js';

// A server whose dashboard was never built still starts and serves the API; the page says how to
// build it. (The built dashboard is tested in a browser: test/browser/.)

let testApp: TestApp;
const emptyDir = mkdtempSync(path.join(tmpdir(), 'branchwise-no-dashboard-'));
beforeAll(async () => {
  testApp = await startTestApp({ dashboardDir: emptyDir });
});
afterAll(async () => {
  await testApp?.close();
  rmSync(emptyDir, { recursive: true, force: true });
});

test('without a build, the dashboard paths answer 503 in plain text saying how to build it', async () => {
  for (const url of ['/', '/agents', '/agents/agent_1/history', '/sign-in']) {
    const response = await injectAs(testApp, 'GET', url, null);
    expect(response.statusCode, url).toBe(503);
    expect(response.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(response.body).toContain('npm run build:web');
    expect(response.headers['content-security-policy']).toMatch(/^default-src 'self'/);
  }
});

test('without a build, the API is unchanged', async () => {
  expect((await injectAs(testApp, 'GET', '/v1/convai/agents', testApp.keys.viewer)).statusCode).toBe(200);
  const asset = await injectAs(testApp, 'GET', '/assets/index.js', null);
  expect(asset.statusCode).toBe(404);
  expect(asset.json().detail.status).toBe('not_found');
  const unknown = await injectAs(testApp, 'GET', '/v1/nothing', null);
  expect(unknown.statusCode).toBe(404);
  expect(unknown.headers['content-security-policy']).toBeUndefined();
});
