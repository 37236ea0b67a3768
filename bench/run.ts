// `npm run bench`: every performance figure against a baseline measured in the same run.
// (Issue 8 grows this into the full suite; today: the merge-base figure.)
import { benchMergeBase } from './merge-base.bench.js';

const rows = [...(await benchMergeBase())];
console.log('| figure | value | baseline in the same run | ratio | target |');
console.log('|---|---|---|---|---|');
for (const row of rows) console.log(`| ${row.name} | ${row.value} | ${row.baseline} | ${row.ratio.toFixed(2)}× | ${row.target} |`);
