// The dashboard in chromium (playwright-core, Debian's chromium), against a real server on SQLite
// serving a fresh build of web/: the first screen's JS+CSS gzipped; the history and agent pages of an
// agent with 10,000 versions (10 branches, merges) until the first click is answered, against an
// agent with 10; the diff of two 30 KB configs, rendered, against two 1 KB ones.
// Alone: `npx tsx bench/dashboard.bench.ts [--quick]`.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import type { Page } from 'playwright-core';

import { type Dashboard, startDashboard } from '../test/browser/support.js';
import { largeConversationConfig } from '../test/support/builders.js';
import { injectAs } from '../test/support/test-app.js';

export interface DashboardFigure {
  name: string;
  value: string;
  baseline: string;
  ratio: string;
  target: string;
}

const BIG_HISTORY = 10_000;
const BRANCHES = 10;

export async function benchDashboard(quick: boolean): Promise<DashboardFigure[]> {
  const dashboard = await startDashboard();
  try {
    const rounds = quick ? 3 : 7;
    const figures: DashboardFigure[] = [];
    const bundle = await firstScreenBytes(dashboard);
    figures.push({
      name: 'dashboard: first screen JS+CSS, gzipped',
      value: `${(bundle.gzipped / 1024).toFixed(1)} KB`,
      baseline: `${(bundle.raw / 1024).toFixed(1)} KB before gzip (${bundle.files} files)`,
      ratio: '—',
      target: '≤ 60 KB',
    });

    const small = await seedHistory(dashboard, 10);
    const big = await seedHistory(dashboard, BIG_HISTORY);
    const page = await dashboard.signedInPage('admin');
    const historyBig = await median(rounds, () => historyInteractive(page, big));
    const historySmall = await median(rounds, () => historyInteractive(page, small));
    figures.push({
      name: `dashboard: history page of ${BIG_HISTORY.toLocaleString('en')} versions (${BRANCHES} branches), load to first click answered`,
      value: `${historyBig.toFixed(0)} ms`,
      baseline: `${historySmall.toFixed(0)} ms at 10 versions`,
      ratio: `${(historyBig / historySmall).toFixed(2)}×`,
      target: '≤ 1,000 ms',
    });
    const agentBig = await median(rounds, () => agentPageInteractive(page, big));
    const agentSmall = await median(rounds, () => agentPageInteractive(page, small));
    figures.push({
      name: `dashboard: agent page (branches table) of ${BIG_HISTORY.toLocaleString('en')} versions, load to first click answered`,
      value: `${agentBig.toFixed(0)} ms`,
      baseline: `${agentSmall.toFixed(0)} ms at 10 versions`,
      ratio: `${(agentBig / agentSmall).toFixed(2)}×`,
      target: '≤ 1,000 ms',
    });

    const bigDiff = await seedDiff(dashboard, 30_000);
    const smallDiff = await seedDiff(dashboard, 1_000);
    const renderBig = await median(rounds, async () => (await diffTimes(page, bigDiff)).render);
    const renderSmall = await median(rounds, async () => (await diffTimes(page, smallDiff)).render);
    const wallBig = await median(rounds, async () => (await diffTimes(page, bigDiff)).wall);
    figures.push({
      name: `dashboard: diff of two 30 KB configs (${bigDiff.changes} changed paths, a word diff of the prompt), data to rendered`,
      value: `${renderBig.toFixed(1)} ms (${wallBig.toFixed(0)} ms from navigation)`,
      baseline: `${renderSmall.toFixed(1)} ms for two 1 KB configs`,
      ratio: `${(renderBig / Math.max(renderSmall, 0.1)).toFixed(2)}×`,
      target: '≤ 100 ms',
    });
    return figures;
  } finally {
    await dashboard.close();
  }
}

/** Every script and stylesheet the first page loads (index.html's), gzipped as a server would send them. */
async function firstScreenBytes(dashboard: Dashboard): Promise<{ raw: number; gzipped: number; files: number }> {
  const html = await (await fetch(`${dashboard.url}/sign-in`)).text();
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+\.(?:js|css))"/g)].map((match) => match[1]);
  let raw = 0;
  let gzipped = 0;
  for (const asset of new Set(assets)) {
    const bytes = Buffer.from(await (await fetch(`${dashboard.url}${asset}`)).arrayBuffer());
    raw += bytes.length;
    gzipped += gzipSync(bytes, { level: 9 }).length;
  }
  return { raw, gzipped, files: new Set(assets).size };
}

async function call<T>(dashboard: Dashboard, method: 'GET' | 'POST' | 'PATCH', url: string, body?: unknown): Promise<T> {
  const response = await injectAs(dashboard.testApp, method, url, dashboard.testApp.keys.admin, body);
  if (response.statusCode !== 200) throw new Error(`${method} ${url}: ${response.statusCode} ${response.body.slice(0, 300)}`);
  return response.json() as T;
}

/** An agent with `versions` versions round-robin over main and up to nine branches, a branch merged into main every 400. */
async function seedHistory(dashboard: Dashboard, versions: number): Promise<string> {
  const { agent_id: agentId } = await call<{ agent_id: string }>(dashboard, 'POST', '/v1/convai/agents/create', {
    name: `History of ${versions}`,
    conversation_config: { agent: { first_message: 'Hello', prompt: { prompt: 'You are a support agent.' } } },
  });
  const agent = await call<{ main_branch_id: string; version_id: string }>(dashboard, 'GET', `/v1/convai/agents/${agentId}`);
  const branches = [agent.main_branch_id];
  let made = 1;
  for (let index = 1; index < Math.min(BRANCHES, versions); index++, made++) {
    const created = await call<{ created_branch_id: string }>(dashboard, 'POST', `/v1/convai/agents/${agentId}/branches`, {
      parent_version_id: agent.version_id,
      name: `branch-${index}`,
      description: '',
    });
    branches.push(created.created_branch_id);
  }
  for (let step = 0; made < versions; step++, made++) {
    if (made % 1000 === 0) process.stderr.write(`  seeding: ${made} of ${versions} versions\n`);
    const branchId = branches[step % branches.length];
    if (step > 0 && step % 400 === 0 && branches.length > 1) {
      const source = branches[1 + ((step / 400) % (branches.length - 1))];
      await call(dashboard, 'POST', `/v1/convai/agents/${agentId}/branches/${source}/merge?target_branch_id=${agent.main_branch_id}`, {
        force: true,
        archive_source_branch: false,
      });
      continue;
    }
    const change = branchId === agent.main_branch_id ? { first_message: `Hello ${step}` } : { prompt: { prompt: `You are support agent ${step}.` } };
    await call(dashboard, 'PATCH', `/v1/convai/agents/${agentId}?branch_id=${branchId}`, { conversation_config: { agent: change } });
  }
  return agentId;
}

async function median(rounds: number, measure: () => Promise<number>): Promise<number> {
  await measure(); // warm: the bundle in the browser's cache, the server's statements prepared
  const times: number[] = [];
  for (let round = 0; round < rounds; round++) times.push(await measure());
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** From navigation to the history screen until a click on the first version's checkbox shows in the page. */
async function historyInteractive(page: Page, agentId: string): Promise<number> {
  await page.goto('about:blank');
  const started = performance.now();
  await page.goto(`/agents/${agentId}/history`, { waitUntil: 'commit' });
  await page.locator('.graph-row input[type="checkbox"]').first().click();
  await page.getByText('1 of 2 picked').waitFor();
  return performance.now() - started;
}

/** From navigation to the agent page until "Show archived branches" is ticked and the table reloaded with it. */
async function agentPageInteractive(page: Page, agentId: string): Promise<number> {
  await page.goto('about:blank');
  const started = performance.now();
  await page.goto(`/agents/${agentId}`, { waitUntil: 'commit' });
  await page.locator('[data-cell="live"]').first().waitFor();
  await page.getByLabel('Show archived branches').check();
  await page.waitForURL('**?archived=1');
  return performance.now() - started;
}

/** Two versions of a config of `bytes`: the prompt with words changed through it, the model, and three tools. */
async function seedDiff(dashboard: Dashboard, bytes: number): Promise<{ agentId: string; from: string; to: string; changes: number }> {
  const config = largeConversationConfig(bytes);
  const { agent_id: agentId } = await call<{ agent_id: string }>(dashboard, 'POST', '/v1/convai/agents/create', { name: `Diff ${bytes}`, conversation_config: config });
  const first = await call<{ version_id: string }>(dashboard, 'GET', `/v1/convai/agents/${agentId}`);
  const words = config.agent.prompt.prompt.split(' ');
  const changedPrompt = words.map((word, index) => (index % 97 === 0 && word === 'helpful' ? 'friendly' : word)).join(' ');
  const tools = config.agent.prompt.tools.map((tool, index) => (index % 4 === 0 ? { ...tool, description: `${tool.description} Now with refunds.` } : tool));
  const second = await call<{ version_id: string }>(dashboard, 'PATCH', `/v1/convai/agents/${agentId}`, {
    conversation_config: { ...config, agent: { ...config.agent, prompt: { ...config.agent.prompt, prompt: changedPrompt, llm: 'gpt-4o', temperature: 0.5, tools } } },
  });
  const diff = await call<{ changes: unknown[] }>(dashboard, 'GET', `/v1/convai/agents/${agentId}/diff?from_version_id=${first.version_id}&to_version_id=${second.version_id}`);
  return { agentId, from: first.version_id, to: second.version_id, changes: diff.changes.length };
}

/** The diff screen: from the data's arrival to its render (the screen's performance marks), and from navigation. */
async function diffTimes(page: Page, diff: { agentId: string; from: string; to: string }): Promise<{ render: number; wall: number }> {
  await page.goto('about:blank');
  const started = performance.now();
  await page.goto(`/agents/${diff.agentId}/diff?from=${diff.from}&to=${diff.to}`, { waitUntil: 'commit' });
  await page.locator('.diff-summary').waitFor();
  const wall = performance.now() - started;
  const render = await page.evaluate(() => {
    const [data] = performance.getEntriesByName('branchwise:diff-data');
    const [rendered] = performance.getEntriesByName('branchwise:diff-rendered');
    return rendered.startTime - data.startTime;
  });
  return { render, wall };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const started = Date.now();
  const figures = await benchDashboard(process.argv.includes('--quick'));
  console.log('| figure | value | baseline in the same run | ratio | target |\n|---|---|---|---|---|');
  for (const figure of figures) console.log(`| ${figure.name} | ${figure.value} | ${figure.baseline} | ${figure.ratio} | ${figure.target} |`);
  console.log(`(${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
}
