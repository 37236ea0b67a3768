#!/usr/bin/env node
// The README's first steps with the official JS SDK, runnable as it is from the project folder
// (the SDK comes with `npm ci`; outside it, `npm install @elevenlabs/elevenlabs-js` first):
//
//   ELEVENLABS_API_KEY=sk_… node examples/quickstart.mjs          # BRANCHWISE_URL defaults to http://127.0.0.1:8080
//
// It creates an agent, a branch with a warmer greeting and a commit on that branch, and prints their ids.
import { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';

const client = new ElevenLabsClient({
  apiKey: process.env.ELEVENLABS_API_KEY,
  baseUrl: process.env.BRANCHWISE_URL ?? 'http://127.0.0.1:8080',
});
const { agentId } = await client.conversationalAi.agents.create({
  name: 'Quickstart bot',
  conversationConfig: { agent: { firstMessage: 'Hi!', prompt: { prompt: 'You are helpful.' } } },
});
const main = await client.conversationalAi.agents.get(agentId);
const { createdBranchId } = await client.conversationalAi.agents.branches.create(agentId, {
  parentVersionId: main.versionId, name: 'warmer-greeting', description: 'Try a warmer greeting',
});
const commit = await client.conversationalAi.agents.update(agentId, {
  branchId: createdBranchId, conversationConfig: { agent: { firstMessage: 'Hello, lovely to hear from you!' } },
  versionDescription: 'warmer greeting',
});
console.log(JSON.stringify({ agent_id: agentId, main_branch_id: main.mainBranchId, branch_id: createdBranchId, version_id: commit.versionId }));
