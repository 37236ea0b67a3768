import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { build } from 'vite';

import type { Role } from '../../src/domain/caller.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../support/chromium.js';
import { listen, startTestApp, type TestApp } from '../support/test-app.js';

// The dashboard's browser tests: a real server (listening, SQLite, a temp data dir) serving a fresh
// build of web/, and Debian's chromium driven by playwright-core. Any console error, uncaught page
// error or CSP violation in a page fails the test (`close()` reports them).

/**
 * web/ built once per content: into the temp dir, named by a hash of the sources, the Vite
 * config and the lockfile. The tests always see the current sources, and a file that starts its
 * dashboard again (or the next run) reuses the build. Written to a temp name and renamed, so
 * test files building at the same time never see half a build.
 */
let built: Promise<string> | undefined;
function buildDashboardOnce(): Promise<string> {
  built ??= (async () => {
    const outDir = path.join(tmpdir(), `branchwise-web-${sourcesHash()}`);
    if (existsSync(path.join(outDir, 'index.html'))) return outDir;
    const partial = `${outDir}.${randomUUID()}`;
    await build({ configFile: path.resolve('web/vite.config.ts'), logLevel: 'warn', build: { outDir: partial, emptyOutDir: true } });
    try {
      renameSync(partial, outDir);
    } catch (error) {
      // Another test file finished the same build first.
      rmSync(partial, { recursive: true, force: true });
      if (!existsSync(path.join(outDir, 'index.html'))) throw error;
    }
    return outDir;
  })();
  return built;
}

function sourcesHash(): string {
  const hash = createHash('sha256');
  const files = ['web/index.html', 'web/vite.config.ts', 'package-lock.json', ...readdirSync('web/src', { recursive: true, encoding: 'utf8' }).map((name) => `web/src/${name}`)];
  for (const file of files.sort()) {
    if (!statSync(file).isFile()) continue;
    hash.update(file).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

export interface Dashboard {
  testApp: TestApp;
  /** The server's base URL (`http://127.0.0.1:port`). */
  url: string;
  browser: Browser;
  /** A temp dir for what a test writes (screenshots); removed by `close()` unless KEEP_BROWSER_ARTIFACTS=1. */
  artifactsDir: string;
  /** A new page of its own browser context (its own sessionStorage), watched for errors. */
  newPage(viewport?: { width: number; height: number }): Promise<Page>;
  /** A new page, signed in through the sign-in screen with the key of `role` (default admin), on the agents screen. */
  signedInPage(role?: Role, viewport?: { width: number; height: number }): Promise<Page>;
  /** The console errors, page errors and CSP violations seen so far, in every page. */
  problems: string[];
  /** Closes everything; throws if any page had a console error, a page error or a CSP violation. */
  close(): Promise<void>;
}

/** How long closing the browser (its contexts, then the process) may take before it is killed. */
const BROWSER_CLOSE_MS = 15_000;

/**
 * Whether `work` finished within `ms`. A failure within `ms` is thrown; one after it is dropped
 * (by then the caller has moved on).
 */
async function withinMs(ms: number, work: Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const finished = work.then(
    () => true as const,
    (error: unknown) => {
      if (late) return false as const;
      throw error;
    },
  );
  try {
    const inTime = await Promise.race([finished, timedOut]);
    late = !inTime;
    return inTime;
  } finally {
    clearTimeout(timer);
  }
}

export async function startDashboard(): Promise<Dashboard> {
  const distDir = await buildDashboardOnce();
  const testApp = await startTestApp({ dashboardDir: distDir });
  const url = await listen(testApp);
  // Launched as a server so that a browser that will not exit can be killed (`close()`).
  const browserServer = await chromium.launchServer({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const browser = await chromium.connect(browserServer.wsEndpoint());
  const artifactsDir = mkdtempSync(path.join(tmpdir(), 'branchwise-browser-'));
  const contexts: BrowserContext[] = [];
  const problems: string[] = [];

  const newPage = async (viewport = { width: 1280, height: 800 }) => {
    const context = await browser.newContext({ baseURL: url, viewport });
    contexts.push(context);
    // Also caught as a console message by Chromium; the event names the directive for sure.
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => {
        console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || 'inline code'}`);
      });
    });
    // A wait that never ends fails here, naming what it waited for, before the test's own timeout.
    context.setDefaultTimeout(15_000);
    await delayApiReads(context);
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`page error on ${page.url()}: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() !== 'error') return;
      // Chromium logs every HTTP error answer to fetch this way; the app handles those itself
      // (and the tests check what it shows). Anything else is a defect.
      if (message.text().startsWith('Failed to load resource: the server responded with a status of')) return;
      problems.push(`console error on ${page.url()}: ${message.text()}`);
    });
    return page;
  };

  return {
    testApp,
    url,
    browser,
    artifactsDir,
    newPage,
    problems,
    async signedInPage(role: Role = 'admin', viewport?: { width: number; height: number }) {
      const page = await newPage(viewport);
      await page.goto('/sign-in');
      await signIn(page, testApp.keys[role]);
      await page.waitForURL('**/agents');
      return page;
    },
    async close() {
      // Chromium sometimes does not exit when asked (Playwright then waits for it without end), and
      // a context with a page stuck in it may not close: closing the browser is bounded, and it is
      // killed if it is not gone in time. The server's close waits for responses still being
      // written for at most a grace (test-app.ts `closeApp`); any other hang is a defect, and the
      // hook's timeout says so.
      const closedInTime = await withinMs(BROWSER_CLOSE_MS, (async () => {
        for (const context of contexts) await context.close();
        await browser.close();
        await browserServer.close();
      })());
      if (!closedInTime) {
        console.warn(`the browser did not close within ${BROWSER_CLOSE_MS} ms; killed`);
        await browserServer.kill();
      }
      await testApp.close();
      if (process.env.KEEP_BROWSER_ARTIFACTS !== '1') rmSync(artifactsDir, { recursive: true, force: true });
      if (problems.length > 0) throw new Error(`the pages reported problems:\n${problems.join('\n')}`);
    },
  };
}

/**
 * The most an API read of a test page waits before it goes to the server. On a quiet machine
 * every answer arrives within a frame or two, so a test that reads the screen before its data
 * arrived passes almost always and fails once in a few hundred runs (a form's select read before
 * its options came). Each read waits a different while, so answers also arrive out of order:
 * a screen must show loaded data only, whatever the timing, and the tests wait for it.
 * `BRANCHWISE_TEST_API_READ_DELAY_MS` sets another bound, to hunt such races with longer delays.
 */
const API_READ_DELAY_MS = Number(process.env.BRANCHWISE_TEST_API_READ_DELAY_MS ?? 120);

async function delayApiReads(context: BrowserContext): Promise<void> {
  await context.route(
    (url) => url.pathname.startsWith('/v1/'),
    async (route) => {
      if (route.request().method() === 'GET') await new Promise((resolve) => setTimeout(resolve, Math.random() * API_READ_DELAY_MS));
      await route.fallback();
    },
  );
}

/** Fills the sign-in form with `key` and submits it. */
export async function signIn(page: Page, key: string): Promise<void> {
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
