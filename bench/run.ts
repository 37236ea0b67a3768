// `npm run bench` (or `npm run bench -- --quick`): every performance figure against a baseline
// measured in the same run, printed as a table and written to bench/results.md (a --quick run: to
// bench/results-quick.md, git-ignored, so CI never overwrites the committed figures).
import { writeFileSync } from 'node:fs';
import os from 'node:os';

import { benchCommits } from './commits.bench.js';
import { benchDashboard } from './dashboard.bench.js';
import { benchDialects } from './databases.js';
import { benchEventLoop } from './event-loop.bench.js';
import { benchExperiments } from './experiments.bench.js';
import { benchHttp, HTTP_SETUP } from './http.bench.js';
import { benchInProcess } from './in-process.bench.js';
import { benchMemory } from './memory.bench.js';
import { benchMergeBase } from './merge-base.bench.js';
import { resultsFile } from './results-file.js';

const quick = process.argv.includes('--quick');
// `--only=experiments,http`: those groups only (a partial run: the table goes to the console, and
// to bench/results-partial.md, never over the committed bench/results.md).
const only = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length).split(',');
const want = (group: string) => only === undefined || only.includes(group);
const rows: { name: string; value: string; baseline: string; ratio: string; target: string }[] = [];

const { dialects, postgresNote, stop } = await benchDialects();
try {
  if (want('http')) {
    for (const dialect of dialects) {
      for (const figure of await benchHttp(quick ? 2 : 4, quick ? 1 : 5, dialect)) {
        rows.push({ ...figure, ratio: `${figure.ratio.toFixed(2)}× req/s, ${figure.p99Ratio.toFixed(2)}× p99` });
      }
    }
  }
  if (want('commits')) for (const dialect of dialects) rows.push(await benchCommits(quick ? 2 : 5, dialect));
  if (want('merge-base')) for (const figure of await benchMergeBase()) rows.push({ ...figure, ratio: `${figure.ratio.toFixed(2)}×` });
  if (want('in-process')) for (const dialect of dialects) for (const figure of await benchInProcess(quick, dialect, dialect === dialects[0])) rows.push(figure);
  if (want('memory')) rows.push(await benchMemory(quick, dialects[0]));
  if (want('event-loop')) for (const dialect of dialects) rows.push(...(await benchEventLoop(quick, dialect)));
  if (want('dashboard')) rows.push(...(await benchDashboard(quick)));
  if (want('experiments')) for (const dialect of dialects) rows.push(...(await benchExperiments(quick, dialect)));
} finally {
  stop();
}

const header = [
  `# branchwise benchmarks${quick ? ' (--quick: short runs, figures are rough)' : ''}${only ? ` (only ${only.join(', ')})` : ''}`,
  '',
  `${new Date().toISOString()} · ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'} · ${Math.round(os.totalmem() / 2 ** 30)} GiB · Node ${process.version} · ${os.platform()} ${os.release()}`,
  '',
  `Load by wrk in its own process. ${HTTP_SETUP} ${postgresNote}.`,
  '',
  '| figure | value | baseline in the same run | ratio | target |',
  '|---|---|---|---|---|',
];
const table = [...header, ...rows.map((row) => `| ${row.name} | ${row.value} | ${row.baseline} | ${row.ratio} | ${row.target} |`)].join('\n');
console.log(table);
writeFileSync(only ? 'bench/results-partial.md' : resultsFile(quick), `${table}\n`);
