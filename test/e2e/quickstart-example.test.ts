import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { listen, sdk, startTestApp, type TestApp } from '../support/test-app.js';

// The README's first SDK example (examples/quickstart.mjs), run as a user runs it: plain node.

const run = promisify(execFile);
const example = path.resolve('examples/quickstart.mjs');
let testApp: TestApp;
let baseUrl: string;

beforeAll(async () => {
  testApp = await startTestApp();
  baseUrl = await listen(testApp);
});
afterAll(() => testApp.close());

describe('examples/quickstart.mjs', () => {
  it('creates an agent, a branch and a commit on it with plain node, and prints their ids', async () => {
    const { stdout } = await run(process.execPath, [example], {
      env: { ...process.env, BRANCHWISE_URL: baseUrl, ELEVENLABS_API_KEY: testApp.keys.editor },
    });
    const printed = JSON.parse(stdout) as { agent_id: string; main_branch_id: string; branch_id: string; version_id: string };
    const client = sdk(baseUrl, testApp.keys.viewer);
    const onBranch = await client.conversationalAi.agents.get(printed.agent_id, { branchId: printed.branch_id });
    expect(onBranch).toMatchObject({ name: 'Quickstart bot', versionId: printed.version_id });
    expect(onBranch.conversationConfig.agent?.firstMessage).toBe('Hello, lovely to hear from you!');
    const onMain = await client.conversationalAi.agents.get(printed.agent_id);
    expect(onMain).toMatchObject({ branchId: printed.main_branch_id });
    expect(onMain.conversationConfig.agent?.firstMessage).toBe('Hi!');
  });

  it('is what the README shows', () => {
    const code = readFileSync(example, 'utf8');
    const shown = code.slice(code.indexOf('const client'), code.indexOf('console.log'));
    expect(readFileSync('README.md', 'utf8')).toContain(shown.trim());
  });
});
