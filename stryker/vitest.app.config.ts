import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vitest/config';

// The test files of the app mutation run (stryker/app.config.mjs): the few fast files written for
// the mutated modules, on SQLite only. With the SDK, access-matrix and merge test files as well,
// a mutant that every request reaches (roleAllows, the fast path) reran them all: 1–3 minutes
// each here, 11 hours for the run. The dialect does not change what these modules do (only
// src/db/ knows it), and PostgreSQL would need the throwaway cluster of test/global-setup.ts.
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: [
      'test/units/routing-cache.test.ts',
      'test/units/fast-path.test.ts',
      'test/units/role-rules.test.ts',
      'test/key-cache.test.ts',
      'test/fast-path-answers.test.ts',
      'test/fast-path-isolation.test.ts',
      'test/deployment-rules.test.ts',
    ],
    env: { TEST_DIALECT: 'sqlite' },
    setupFiles: ['stryker/fast-check-runs.ts'],
    // Importing the app (fastify, 600 generated zod schemas) takes seconds: once per worker, not
    // once per file and mutant. Mutants are switched at run time, so sharing modules is safe.
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
