import { existsSync } from 'node:fs';

import { defineConfig } from 'vitest/config';

import { CHROMIUM } from './test/support/chromium.js';
import { patient } from './test/support/patience.js';
import { findPostgresBin } from './test/support/postgres-cluster.js';

// Every test runs twice: on SQLite and on PostgreSQL (Kysely's own practice). PostgreSQL comes
// from TEST_DATABASE_URL or a throwaway cluster of the machine's binaries. In CI a missing
// PostgreSQL fails the run; elsewhere its half is skipped, loudly.
const postgresAvailable = Boolean(process.env.TEST_DATABASE_URL) || findPostgresBin() !== undefined;
if (!postgresAvailable) {
  const message =
    'PostgreSQL not found (no TEST_DATABASE_URL, nothing under /usr/lib/postgresql/*/bin): ' +
    'the PostgreSQL half of the test suite cannot run.';
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`\n${'!'.repeat(100)}\n!! ${message}\n!! SKIPPING every PostgreSQL test. Install postgresql-15 or set TEST_DATABASE_URL.\n${'!'.repeat(100)}\n`);
}

// The dashboard's tests (test/browser) drive Debian's chromium; they run once, on SQLite. In CI a
// missing chromium fails the run; elsewhere they are skipped, loudly.
const chromiumAvailable = existsSync(CHROMIUM);
if (!chromiumAvailable) {
  const message = `Chromium not found at ${CHROMIUM}: the dashboard's browser tests (test/browser) cannot run.`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`\n${'!'.repeat(100)}\n!! ${message}\n!! SKIPPING every browser test. Install it: apt-get install -y --no-install-recommends chromium\n${'!'.repeat(100)}\n`);
}

export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    // Deadlines catch hangs; on a loaded machine they stretch (test/support/patience.ts).
    testTimeout: patient(30_000),
    // Two files at a time: vitest's default on a 2-core machine is one, and much of the suite waits
    // on PostgreSQL and on server processes it starts rather than on the CPU.
    maxWorkers: 2,
    // A worker imports the app once for all the files it runs, not once per file: the suite's import
    // time summed over files fell from 1,545 s to 95 s (same machine, load 5–11). The code keeps no
    // state between apps that a test relies on (every test starts its own app and database).
    isolate: false,
    hookTimeout: patient(60_000),
    // expect.poll waits for what a screen shows after an action: its write and the reads that
    // follow, each delayed in the browser tests (test/browser/support.ts). A second (vitest's
    // default) was less than that takes on a loaded machine. Tests that time something give their own.
    expect: { poll: { timeout: patient(10_000) } },
    projects: [
      {
        extends: true,
        test: {
          name: 'sqlite',
          include: ['test/**/*.test.ts'],
          ...(chromiumAvailable ? {} : { exclude: ['test/browser/**'] }),
          env: { TEST_DIALECT: 'sqlite' },
        },
      },
      ...(postgresAvailable
        ? [
            {
              extends: true as const,
              test: {
                name: 'postgres',
                // The pure tests and the import rules do not touch a database: once is enough.
                include: ['test/**/*.test.ts'],
                exclude: ['test/domain/**', 'test/units/**', 'test/wire/**', 'test/architecture.test.ts', 'test/browser/**'],
                env: { TEST_DIALECT: 'postgres' },
                globalSetup: ['test/global-setup.ts'],
              },
            },
          ]
        : []),
    ],
  },
});
