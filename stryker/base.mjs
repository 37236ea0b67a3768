// Options shared by the two mutation runs (`npm run mutate`); docs/testing.md says what each
// mutates, how long it takes on two cores and what survives.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export const base = {
  testRunner: 'vitest',
  // Each mutant runs only the tests that reached it in the dry run.
  coverageAnalysis: 'perTest',
  // A mutant reached only outside any test (module load, a file's beforeAll) would rerun every
  // test of the run: hours on two cores. Such mutants are reported as ignored, and counted in
  // docs/testing.md; a mutant reached by a test too runs that test as usual.
  ignoreStatic: true,
  // Two cores, shared with other work: one vitest per core at most.
  concurrency: 2,
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  thresholds: { high: 90, low: 80, break: null },
};

/**
 * The options of one run: its vitest config and report files are named after it. To mutate a
 * part of a run only, name the files in MUTATE (comma-separated) and the reports in REPORT:
 * `MUTATE=src/domain/lru.ts REPORT=lru npm run mutate:domain`.
 */
export function run(name, files) {
  const mutate = process.env.MUTATE ? process.env.MUTATE.split(',') : files;
  const report = process.env.REPORT ?? name;
  return {
    ...base,
    mutate,
    vitest: { configFile: `stryker/vitest.${name}.config.ts`, related: false },
    htmlReporter: { fileName: `reports/mutation/${report}.html` },
    jsonReporter: { fileName: `reports/mutation/${report}.json` },
    incrementalFile: `reports/mutation/${report}-incremental.json`,
  };
}
