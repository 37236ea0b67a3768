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
const rows: { name: string; value: string; baseline: string; ratio: string; target: string }[] = [];

const { dialects, postgresNote, stop } = await benchDialects();
try {
  for (const dialect of dialects) {
    for (const figure of await benchHttp(quick ? 2 : 4, quick ? 1 : 5, dialect)) {
      rows.push({ ...figure, ratio: `${figure.ratio.toFixed(2)}× req/s, ${figure.p99Ratio.toFixed(2)}× p99` });
    }
  }
  for (const dialect of dialects) rows.push(await benchCommits(quick ? 2 : 5, dialect));
  for (const figure of await benchMergeBase()) rows.push({ ...figure, ratio: `${figure.ratio.toFixed(2)}×` });
  for (const dialect of dialects) for (const figure of await benchInProcess(quick, dialect, dialect === dialects[0])) rows.push(figure);
  rows.push(await benchMemory(quick, dialects[0]));
  for (const dialect of dialects) rows.push(...(await benchEventLoop(quick, dialect)));
  rows.push(...(await benchDashboard(quick)));
  for (const dialect of dialects) rows.push(...(await benchExperiments(quick, dialect)));
} finally {
  stop();
}

const header = [
  `# branchwise benchmarks${quick ? ' (--quick: short runs, figures are rough)' : ''}`,
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
writeFileSync(resultsFile(quick), `${table}\n`);
