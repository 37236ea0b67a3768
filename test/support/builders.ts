/** A config of about `bytes` bytes, shaped like a real agent's: a long prompt and many tools. */
export function largeConversationConfig(bytes = 20_000) {
  const tools = Array.from({ length: 12 }, (_, i) => ({
    type: 'webhook',
    name: `tool_${i}`,
    description: `Looks up record ${i} in the CRM and returns the customer's open orders and their status.`,
    api_schema: { url: `https://example.com/api/tool/${i}`, method: 'GET' },
  }));
  const fixed = JSON.stringify({ tools }).length;
  return {
    agent: {
      first_message: 'Hello! How can I help you today?',
      language: 'en',
      prompt: {
        prompt: 'You are a helpful support agent. '.repeat(Math.max(1, Math.floor((bytes - fixed - 2_000) / 33))),
        llm: 'gemini-2.5-flash',
        temperature: 0.3,
        tools,
      },
    },
    tts: { voice_id: 'voice_test_1' },
  };
}
