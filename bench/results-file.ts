/**
 * Where a bench run writes its table. A full run writes `bench/results.md`, the committed figures
 * the READMEs quote; a `--quick` run (CI's) writes `bench/results-quick.md`, which git ignores, so
 * rough figures never overwrite measured ones.
 */
export function resultsFile(quick: boolean): URL {
  return new URL(quick ? './results-quick.md' : './results.md', import.meta.url);
}
