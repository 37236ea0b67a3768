// Mutation score per file from Stryker's JSON reports: `node stryker/score.mjs reports/mutation/*.json`.
// Prints a Markdown table (score = (killed + timed out) / (those + survived + no coverage), as
// Stryker counts it; ignored mutants are listed apart), then every surviving mutant.
import { readFileSync } from 'node:fs';

const rows = [];
const survivors = [];
for (const file of process.argv.slice(2).filter((name) => !name.includes('incremental'))) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  for (const [path, { mutants, source }] of Object.entries(report.files)) {
    const count = (...statuses) => mutants.filter((mutant) => statuses.includes(mutant.status)).length;
    const detected = count('Killed', 'Timeout');
    const undetected = count('Survived', 'NoCoverage');
    const score = detected + undetected === 0 ? 100 : (100 * detected) / (detected + undetected);
    rows.push(`| ${path} | ${score.toFixed(1)}% | ${detected} | ${count('Survived')} | ${count('NoCoverage')} | ${count('Ignored')} | ${count('RuntimeError', 'CompileError')} |`);
    const lines = source.split('\n');
    for (const mutant of mutants.filter((m) => m.status === 'Survived' || m.status === 'NoCoverage')) {
      const { start, end } = mutant.location;
      const original =
        start.line === end.line
          ? lines[start.line - 1].slice(start.column - 1, end.column - 1)
          : `${lines[start.line - 1].slice(start.column - 1)} …`;
      const squash = (text) => String(text ?? '').replace(/\s+/g, ' ').slice(0, 100);
      survivors.push(`${path}:${start.line}:${start.column} ${mutant.status} ${mutant.mutatorName}: ${squash(original)}  =>  ${squash(mutant.replacement)}`);
    }
  }
}
console.log('| file | score | killed + timed out | survived | no coverage | ignored (static) | errors |');
console.log('|---|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
console.log();
for (const survivor of survivors) console.log(survivor);
