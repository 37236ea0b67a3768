import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vitest/config';

// The test files of the fast-path mutation run (stryker/fastpath.config.mjs): the unit tests of the
// fast path and the routing cache, and the socket test that compares the fast path's answers with
// the full route's. Against the app run's files (the isolation matrix over a socket included) each
// of these mutants took 24 s on average here, 2 hours for the two modules; the matrix is shown to
// catch a fast path or cache that stops checking the workspace by breaking it by hand (docs/testing.md).
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['test/units/fast-path.test.ts', 'test/units/routing-cache.test.ts', 'test/fast-path-answers.test.ts'],
    env: { TEST_DIALECT: 'sqlite' },
    setupFiles: ['stryker/fast-check-runs.ts'],
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
