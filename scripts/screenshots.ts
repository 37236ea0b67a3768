// Regenerates the dashboard's screenshots in docs/screenshots/: `npm run screenshots`.
//
// Starts the server as `npm start` does (a fresh SQLite store in a temp dir, any free port), makes an
// agent with some history through the public API (a branch, commits on both sides, a merge, a 90/10
// split), and photographs a few screens in Debian's chromium at 1280×800.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS } from '../test/support/chromium.js';

const OUT = path.resolve('docs/screenshots');
const dataDir = mkdtempSync(path.join(tmpdir(), 'branchwise-screenshots-'));
const key = `sk_${randomBytes(24).toString('hex')}`;

const server = spawn(process.execPath, ['bin/branchwise.mjs', 'serve'], {
  env: { ...process.env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', BRANCHWISE_BOOTSTRAP_API_KEY: key },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const baseUrl = await new Promise<string>((resolve, reject) => {
  let output = '';
  server.stdout.on('data', (chunk: Buffer) => {
    output += chunk;
    const url = /^Listening on (http:\/\/[^/\s]+)\//m.exec(output)?.[1];
    if (url) resolve(url);
  });
  server.on('exit', (code) => reject(new Error(`the server exited with ${code}:\n${output}`)));
});

async function api<T>(method: string, route: string, body?: unknown): Promise<T> {
  const response = await fetch(`${baseUrl}${route}`, {
    method,
    headers: { 'xi-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${route} → ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

const prompt = (text: string, version_description: string) => ({ conversation_config: { agent: { prompt: { prompt: text } } }, version_description });

try {
  const { agent_id: agentId } = await api<{ agent_id: string }>('POST', '/v1/convai/agents/create', {
    name: 'Support line',
    tags: ['support'],
    conversation_config: { agent: { first_message: 'Hello! How can I help you today?', prompt: { prompt: 'You are a helpful support agent.' } } },
  });
  const agents = `/v1/convai/agents/${agentId}`;
  const { main_branch_id: mainId } = await api<{ main_branch_id: string }>('GET', agents);
  await api('PATCH', agents, prompt('You are a helpful support agent. Answer in two sentences at most.', 'Shorter answers'));
  const { created_branch_id: canaryId } = await api<{ created_branch_id: string }>('POST', `${agents}/branches`, {
    name: 'warmer-tone',
    description: 'A warmer greeting and a friendlier prompt',
    parent_version_id: (await api<{ version_id: string }>('GET', agents)).version_id,
  });
  await api('PATCH', `${agents}?branch_id=${canaryId}`, prompt('You are a warm, friendly support agent. Answer in two sentences at most, and thank the caller.', 'A warmer prompt'));
  await api('PATCH', `${agents}?branch_id=${canaryId}`, { conversation_config: { agent: { first_message: 'Hi there! Thanks for calling — what can I do for you?' } }, version_description: 'A friendlier greeting' });
  await api('PATCH', agents, { conversation_config: { agent: { prompt: { temperature: 0.4 } } }, version_description: 'Temperature 0.4' });
  await api('POST', `${agents}/deployments`, {
    deployment_request: {
      requests: [
        { branch_id: mainId, deployment_strategy: { type: 'percentage', traffic_percentage: 90 } },
        { branch_id: canaryId, deployment_strategy: { type: 'percentage', traffic_percentage: 10 } },
      ],
    },
  });

  mkdirSync(OUT, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const page = await browser.newPage({ baseURL: baseUrl, viewport: { width: 1280, height: 800 } });
  await page.goto('/sign-in');
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/agents');

  const shots: [string, string, string][] = [
    ['agents.png', '/agents', 'Support line'],
    ['agent.png', `/agents/${agentId}`, 'warmer-tone'],
    ['history.png', `/agents/${agentId}/history`, 'warmer-tone'],
    ['deploy.png', `/agents/${agentId}/deploy?split=${mainId}:75,${canaryId}:25`, 'warmer-tone'],
  ];
  for (const [file, url, waitForText] of shots) {
    await page.goto(url);
    await page.getByText(waitForText).filter({ visible: true }).first().waitFor();
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: path.join(OUT, file) });
    console.log(`docs/screenshots/${file}`);
  }
  await browser.close();
} finally {
  server.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
}
