import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vitest/config';

// The test files of the app mutation run (stryker/app.config.mjs): the fast ones that exercise the
// mutated modules, on SQLite only. The dialect does not change what these modules do (only
// src/db/ knows it), and PostgreSQL would need the throwaway cluster of test/global-setup.ts.
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: [
      'test/domain/routing-cache.test.ts',
      'test/key-cache.test.ts',
      'test/fast-path-answers.test.ts',
      'test/deployment-rules.test.ts',
      'test/access-matrix.test.ts',
      'test/stamped-reads.test.ts',
      'test/merge-resolutions-query.test.ts',
      'test/e2e/deployments.sdk.test.ts',
      'test/e2e/merges.sdk.test.ts',
    ],
    env: { TEST_DIALECT: 'sqlite' },
    setupFiles: ['stryker/fast-check-runs.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
