import path from 'node:path';
import { existsSync, readdirSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { sdk } from '../support/test-app.js';
import { type Dashboard, signIn, startDashboard } from './support.js';

/** The session's items (the key and whose it is); `branchwise.ended` may say why a session ended. */
const KEY_ITEMS = "Object.keys(sessionStorage).filter((name) => name === 'branchwise.key' || name === 'branchwise.who')";

let dashboard: Dashboard;
beforeAll(async () => {
  dashboard = await startDashboard();
});
afterAll(async () => {
  await dashboard?.close();
});

describe('the dashboard is served from the API server', () => {
  test('every dashboard path answers with the page, uncached, under a strict CSP', async () => {
    for (const route of ['/', '/sign-in', '/agents', '/agents/agent_123/anything']) {
      const response = await fetch(`${dashboard.url}${route}`);
      expect(response.status, route).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(response.headers.get('cache-control')).toBe('no-cache');
      expect(response.headers.get('content-security-policy')).toBe(
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
      );
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      const html = await response.text();
      expect(html).toMatch(/<script type="module" crossorigin src="\/assets\/[^"]+\.js"><\/script>/);
      // No inline script or style: every script and stylesheet is a file.
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/<style|style=/);
    }
  });

  test('hashed assets are cached for a year, with the same security headers', async () => {
    const html = await (await fetch(dashboard.url)).text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1];
    const response = await fetch(`${dashboard.url}${script}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/javascript/);
    // Read in full: a body left unread keeps its connection busy, and the server's close waits for it.
    expect((await response.text()).length).toBeGreaterThan(1_000);
    expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(response.headers.get('content-security-policy')).toMatch(/^default-src 'self'/);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const missing = await fetch(`${dashboard.url}/assets/nothing-here.js`);
    expect(missing.status).toBe(404);
    await missing.arrayBuffer();
  });

  test('the API answers as before: an unknown /v1 path is the JSON 404, and keys are still required', async () => {
    const unknown = await fetch(`${dashboard.url}/v1/x`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/^application\/json/);
    expect(unknown.headers.get('content-security-policy')).toBeNull();
    expect((await unknown.json()).detail).toMatchObject({ status: 'not_found', message: 'No route for GET /v1/x.' });
    const keyless = await fetch(`${dashboard.url}/v1/convai/agents`);
    expect(keyless.status).toBe(401);
    await keyless.arrayBuffer();
  });
});

describe('signing in', () => {
  test('the key opens the dashboard, shows who signed in, lives in sessionStorage only and is gone after sign-out', async () => {
    const page = await dashboard.newPage();
    await page.goto('/');
    await page.waitForURL('**/sign-in?next=%2Fagents');
    await signIn(page, dashboard.testApp.keys.editor);
    await page.waitForURL('**/agents');
    const topBar = page.getByRole('banner');
    await expect.poll(() => topBar.textContent()).toContain('editor-user');
    expect(await topBar.textContent()).toContain('default');
    expect(await topBar.getByText('editor', { exact: true }).count()).toBe(1);
    expect(page.url()).not.toContain(dashboard.testApp.keys.editor);
    expect(await page.evaluate("sessionStorage.getItem('branchwise.key')")).toBe(dashboard.testApp.keys.editor);
    expect(await page.evaluate('JSON.stringify(localStorage)')).toBe('{}');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL('**/sign-in');
    expect(await page.evaluate(KEY_ITEMS)).toEqual([]);
    await page.goto('/agents');
    await page.waitForURL('**/sign-in?next=%2Fagents');
  });

  test('a wrong key is refused with the server message and nothing is kept', async () => {
    const page = await dashboard.newPage();
    await page.goto('/sign-in');
    await signIn(page, 'sk_not_a_key');
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/key/i);
    expect(page.url()).toMatch(/\/sign-in$/);
    expect(await page.evaluate(KEY_ITEMS)).toEqual([]);
  });

  test('a link opened while signed out comes back after sign-in', async () => {
    const page = await dashboard.newPage();
    await page.goto('/agents?search=support');
    await page.waitForURL('**/sign-in?next=*');
    await signIn(page, dashboard.testApp.keys.viewer);
    await page.waitForURL((url) => url.pathname === '/agents' && url.searchParams.get('search') === 'support');
    expect(await page.getByLabel('Search').inputValue()).toBe('support');
  });

  test('a key revoked while signed in sends the user to sign in, saying why, and back after', async () => {
    const created = await dashboard.testApp.app.workspaces.createKey('default', 'short-lived', 'viewer');
    const page = await dashboard.newPage();
    await page.goto('/sign-in');
    await signIn(page, created.key);
    await page.waitForURL('**/agents');
    expect(await dashboard.testApp.app.workspaces.revokeKey('default', created.keyId)).toBe(true);
    // A revocation reaches the key cache within a second (README, Keys), not at once.
    const whoami = () => fetch(`${dashboard.url}/v1/convai/whoami`, { headers: { 'xi-api-key': created.key } }).then((response) => response.status);
    await expect.poll(whoami, { timeout: 5_000 }).toBe(401);
    await page.goto('/agents?tag=after');
    await page.waitForURL('**/sign-in?next=%2Fagents%3Ftag%3Dafter');
    await expect.poll(() => page.getByRole('alert').first().textContent()).toMatch(/^You were signed out: .+/);
    expect(await page.evaluate(KEY_ITEMS)).toEqual([]);
    await signIn(page, dashboard.testApp.keys.viewer);
    await page.waitForURL('**/agents?tag=after');
  });

  test("a refusal of the old key that arrives after the user signed in again does not end the new session", async () => {
    const created = await dashboard.testApp.app.workspaces.createKey('default', 'slow-answer', 'editor');
    const page = await dashboard.newPage();
    await page.goto('/sign-in');
    await signIn(page, created.key);
    await page.waitForURL('**/agents');
    // The list's read must have been answered before the key is revoked: a read refused with the
    // current key ends the session, rightly, and that is not what this test is about.
    await page.getByText(/^\d+ on this page$/).waitFor();
    // An action sent with the old key is held until the user has signed in with another key.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let heldRequest!: () => void;
    const held = new Promise<void>((resolve) => (heldRequest = resolve));
    await page.route((url) => url.pathname === '/v1/convai/agents/create', async (route) => {
      if (route.request().headers()['xi-api-key'] === created.key) {
        heldRequest();
        await released;
      }
      await route.continue();
    });
    await page.getByLabel('New agent').fill('Slow answer');
    await page.getByRole('button', { name: 'Create agent' }).click();
    await held;
    expect(await dashboard.testApp.app.workspaces.revokeKey('default', created.keyId)).toBe(true);
    const whoami = () => fetch(`${dashboard.url}/v1/convai/whoami`, { headers: { 'xi-api-key': created.key } }).then((response) => response.status);
    await expect.poll(whoami, { timeout: 5_000 }).toBe(401);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(page, dashboard.testApp.keys.viewer);
    await page.waitForURL('**/agents');
    const refused = page.waitForResponse((response) => response.request().headers()['xi-api-key'] === created.key);
    release();
    expect((await refused).status()).toBe(401);
    // What the page does with that answer, it does within a few frames.
    await page.waitForTimeout(500);
    expect(page.url()).not.toContain('/sign-in');
    expect(await page.evaluate(KEY_ITEMS)).not.toEqual([]);
  });

  test('an unknown dashboard path shows the not-found screen', async () => {
    const page = await dashboard.signedInPage('viewer');
    await page.goto('/agents/agent_missing/nowhere/at/all');
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Page not found');
  });
});

describe('the harness', () => {
  test('catches a CSP violation and a console error in a page', async () => {
    const page = await dashboard.newPage();
    await page.goto('/sign-in');
    await page.getByLabel('API key').waitFor();
    const before = dashboard.problems.length;
    await page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=\"https://example.invalid/x.png\">')");
    await page.evaluate("console.error('deliberate')");
    await expect.poll(() => dashboard.problems.length).toBeGreaterThanOrEqual(before + 2);
    const seen = dashboard.problems.splice(before);
    expect(seen.some((problem) => problem.includes('CSP violation: img-src'))).toBe(true);
    expect(seen.some((problem) => problem.includes('deliberate'))).toBe(true);
  });
});

describe('the agents screen', () => {
  test('creates, finds, duplicates and deletes agents', async () => {
    const client = sdk(dashboard.url, dashboard.testApp.keys.admin);
    await client.conversationalAi.agents.create({ name: 'Billing helper', tags: ['billing'], conversationConfig: {} });
    const page = await dashboard.signedInPage('editor');

    await page.getByLabel('New agent').fill('Support line');
    await page.getByRole('button', { name: 'Create agent' }).click();
    await expect.poll(() => page.getByRole('status').last().textContent()).toContain('Agent “Support line” created');
    await page.getByRole('link', { name: 'Support line' }).waitFor();
    const listed = await client.conversationalAi.agents.list({ search: 'Support line' });
    expect(listed.agents.map((agent) => agent.name)).toEqual(['Support line']);

    await page.getByLabel('Search').fill('billing');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL('**/agents?search=billing');
    await expect.poll(() => page.getByRole('link', { name: /Support line|Billing helper/ }).allTextContents()).toEqual(['Billing helper']);

    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByRole('button', { name: 'Show agents tagged billing' }).click();
    await page.waitForURL('**/agents?tag=billing');
    await expect.poll(() => page.getByRole('link', { name: /Support line|Billing helper/ }).allTextContents()).toEqual(['Billing helper']);
    await page.getByRole('button', { name: 'Clear' }).click();

    // A 422 (a list of issues, upstream's validation shape) is shown with its field and message.
    await page.evaluate("document.querySelector('input[name=name]').removeAttribute('maxlength')");
    await page.getByLabel('New agent').fill('x'.repeat(600));
    await page.getByRole('button', { name: 'Create agent' }).click();
    await page.getByText(/^The agent was not created: name: .*512/).waitFor();

    await page.getByRole('button', { name: 'Duplicate Support line' }).click();
    await page.getByRole('link', { name: 'Support line (copy)' }).waitFor();
    expect((await client.conversationalAi.agents.list({ search: 'Support line' })).agents.map((agent) => agent.name).sort()).toEqual([
      'Support line',
      'Support line (copy)',
    ]);

    await page.getByRole('button', { name: 'Delete Support line (copy)' }).click();
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.getByRole('heading').textContent()).toBe('Delete “Support line (copy)”?');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect((await client.conversationalAi.agents.list({ search: 'Support line (copy)' })).agents).toHaveLength(1);

    await page.getByRole('button', { name: 'Delete Support line (copy)' }).click();
    await dialog.getByRole('button', { name: 'Delete agent' }).click();
    await page.getByRole('link', { name: 'Support line (copy)' }).waitFor({ state: 'detached' });
    expect((await client.conversationalAi.agents.list({ search: 'Support line (copy)' })).agents).toHaveLength(0);
  });

  test('pages through agents with a cursor', async () => {
    const client = sdk(dashboard.url, dashboard.testApp.keys.admin);
    for (let index = 0; index < 32; index++) await client.conversationalAi.agents.create({ name: `Paged ${String(index).padStart(2, '0')}`, conversationConfig: {} });
    const page = await dashboard.signedInPage('viewer');
    await page.goto('/agents?search=Paged');
    const names = () => page.getByRole('link', { name: /^Paged / }).allTextContents();
    await expect.poll(async () => (await names()).length).toBe(30);
    const first = await names();
    await page.getByRole('button', { name: 'Next' }).click();
    await expect.poll(async () => (await names()).length).toBe(2);
    expect(new Set([...first, ...(await names())]).size).toBe(32);
    expect(page.url()).toContain('cursor=');
    await page.getByRole('button', { name: 'Previous' }).click();
    await expect.poll(names).toEqual(first);
    // A viewer cannot write: no create form, no row actions.
    expect(await page.getByRole('button', { name: 'Create agent' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: /^Delete / }).count()).toBe(0);
  });

  test('screenshots at desktop and phone width', async () => {
    for (const [name, viewport] of [
      ['agents-1280x800.png', { width: 1280, height: 800 }],
      ['agents-390x844.png', { width: 390, height: 844 }],
    ] as const) {
      const page = await dashboard.signedInPage('admin', viewport);
      await page.getByRole('table').waitFor();
      const file = path.join(dashboard.artifactsDir, name);
      await page.screenshot({ path: file, fullPage: true });
      expect(existsSync(file)).toBe(true);
      // Nothing wider than the screen except inside the table's own scroller.
      const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
      expect(overflow, name).toBe(0);
    }
    expect(readdirSync(dashboard.artifactsDir).sort()).toEqual(['agents-1280x800.png', 'agents-390x844.png']);
  });
});
