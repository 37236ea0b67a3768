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
      const line = mutant.location.start.line;
      survivors.push(`${path}:${line} ${mutant.status} ${mutant.mutatorName}: ${lines[line - 1].trim().slice(0, 110)}  =>  ${String(mutant.replacement ?? '').replace(/\s+/g, ' ').slice(0, 90)}`);
    }
  }
}
console.log('| file | score | killed + timed out | survived | no coverage | ignored (static) | errors |');
console.log('|---|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
console.log();
for (const survivor of survivors) console.log(survivor);
