import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { listen, sdk, startTestApp, type TestApp } from '../support/test-app.js';

// The README's "Serving conversations" example, run as written against a listening server.

const run = promisify(execFile);
const example = path.resolve('examples/serve-conversation.mjs');
let testApp: TestApp;
let baseUrl: string;

beforeAll(async () => {
  testApp = await startTestApp();
  baseUrl = await listen(testApp);
});
afterAll(() => testApp.close());

async function serve(...args: string[]) {
  const { stdout } = await run(process.execPath, [example, ...args], {
    env: { ...process.env, BRANCHWISE_URL: baseUrl, ELEVENLABS_API_KEY: testApp.keys.viewer },
  });
  return JSON.parse(stdout) as { branch_id: string; version_id: string; first_message: string };
}

describe('examples/serve-conversation.mjs', () => {
  it('gets the routed config for a conversation, and a pinned one with --branch or --version', async () => {
    const client = sdk(baseUrl, testApp.keys.editor);
    const { agentId } = await client.conversationalAi.agents.create({ conversationConfig: { agent: { firstMessage: 'main' } } });
    const main = await client.conversationalAi.agents.get(agentId);
    const { createdBranchId, createdVersionId } = await client.conversationalAi.agents.branches.create(agentId, {
      parentVersionId: main.versionId!,
      name: 'canary',
      description: '',
      conversationConfig: { agent: { firstMessage: 'canary' } },
    });
    await client.conversationalAi.agents.deployments.create(agentId, {
      deploymentRequest: {
        requests: [
          { branchId: main.mainBranchId!, deploymentStrategy: { trafficPercentage: 0 } },
          { branchId: createdBranchId, deploymentStrategy: { trafficPercentage: 100 } },
        ],
      },
    });
    expect(await serve(agentId, 'conv_123')).toMatchObject({ branch_id: createdBranchId, first_message: 'canary' });
    expect(await serve(agentId, 'conv_123', '--branch', main.mainBranchId!)).toMatchObject({ branch_id: main.mainBranchId, first_message: 'main' });
    expect(await serve(agentId, 'conv_123', '--version', createdVersionId)).toMatchObject({ version_id: createdVersionId });
    // Three node processes that load the SDK: 2–3 s on a quiet machine, 30 s seen under load 16.
  }, 120_000);
});
