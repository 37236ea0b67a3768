#!/usr/bin/env node
// Which config does a new conversation get? Run it the way a voice runtime would, once per
// incoming conversation:
//
//   BRANCHWISE_URL=http://127.0.0.1:8080 ELEVENLABS_API_KEY=sk_… \
//     node examples/serve-conversation.mjs agent_… conv_123 [--branch agtbrch_… | --version agtvrsn_…]
//
// Without --branch/--version the active deployment decides, by the conversation id: the same
// conversation always gets the same branch while the split stands. Use a caller's phone number
// or user id as the key (`routing_key` instead of `conversation_id`) to keep a caller on one branch.
import { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';

const [agentId, conversationId, pinKind, pinId] = process.argv.slice(2);
if (!agentId || !conversationId) {
  console.error('usage: serve-conversation.mjs AGENT_ID CONVERSATION_ID [--branch ID | --version ID]');
  process.exit(2);
}

const client = new ElevenLabsClient({
  apiKey: process.env.ELEVENLABS_API_KEY,
  baseUrl: process.env.BRANCHWISE_URL ?? 'http://127.0.0.1:8080',
});

// A pin (an explicit branch or version) bypasses the split; a 0% branch can still be reached.
const pin = pinKind === '--branch' ? { branchId: pinId } : pinKind === '--version' ? { versionId: pinId } : {};
const agent = await client.conversationalAi.agents.get(agentId, pin, {
  queryParams: { conversation_id: conversationId },
});

console.log(
  JSON.stringify({
    conversation_id: conversationId,
    branch_id: agent.branchId,
    version_id: agent.versionId,
    first_message: agent.conversationConfig.agent?.firstMessage,
    llm: agent.conversationConfig.agent?.prompt?.llm,
    voice_id: agent.conversationConfig.tts?.voiceId,
  }),
);
