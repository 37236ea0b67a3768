import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vitest/config';

// The test files of the domain mutation run (stryker/domain.config.mjs): pure, no database.
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    // MUTATION_TESTS (comma-separated globs) narrows the run to a module's own tests, e.g.
    // `MUTATION_TESTS=test/domain/content-tree.test.ts`: a lower bound on its score, in a fraction
    // of the time.
    include: process.env.MUTATION_TESTS ? process.env.MUTATION_TESTS.split(',') : ['test/domain/**/*.test.ts'],
    env: { TEST_DIALECT: 'sqlite' },
    setupFiles: ['stryker/fast-check-runs.ts'],
    // Modules are imported once per worker, not once per file and mutant (mutants are switched at
    // run time, so sharing them is safe); the dry run took 58 s isolated and 10 s shared here.
    isolate: false,
    // Instrumented code on a busy two-core machine: the rollback property takes 10 s plain.
    testTimeout: 180_000,
  },
});
