import { injectAs, okJson, type TestApp } from './test-app.js';

// Objects the tests make through the API, the one way every test file makes them.

export interface CreateAgentOptions {
  /** Whose key creates it: the test app's admin unless told. */
  key?: string;
  name?: string;
  /** The agent's `conversation_config`: a one-line prompt unless told. */
  conversationConfig?: Record<string, unknown>;
}

export interface CreatedAgent {
  agentId: string;
  mainBranchId: string;
  /** Its first version, main's head. */
  versionId: string;
}

/** Creates an agent (`POST /v1/convai/agents/create`, which must answer 200) and returns its id: one request. */
export async function createAgentId(testApp: TestApp, options: CreateAgentOptions = {}): Promise<string> {
  const { key = testApp.keys.admin, name = 'A', conversationConfig = { agent: { prompt: { prompt: 'hi' } } } } = options;
  const response = await injectAs(testApp, 'POST', '/v1/convai/agents/create', key, { conversation_config: conversationConfig, name });
  return okJson<{ agent_id: string }>(response).agent_id;
}

/** Creates an agent and reads it back: its id, main branch and first version (two requests). */
export async function createAgent(testApp: TestApp, options: CreateAgentOptions = {}): Promise<CreatedAgent> {
  const agentId = await createAgentId(testApp, options);
  const agent = okJson<{ main_branch_id: string; version_id: string }>(
    await injectAs(testApp, 'GET', `/v1/convai/agents/${agentId}`, options.key ?? testApp.keys.admin),
  );
  return { agentId, mainBranchId: agent.main_branch_id, versionId: agent.version_id };
}
