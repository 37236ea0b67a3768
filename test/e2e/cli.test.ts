import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import type { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { listen, sdk, startTestApp, type TestApp } from '../support/test-app.js';
import { CLI, CLI_AVAILABLE, cliEnv } from '../support/cli.js';
import { patient } from '../support/patience.js';

// The official ElevenLabs CLI (`elevenlabs` 1.3, the native binary that @elevenlabs/cli installs
// from its platform package) run as a child process in a temp folder against a listening
// branchwise: the agents-as-code flow and the API commands, asserting on what it prints and writes
// and on what the server then holds. Where the binary comes from: test/support/cli.ts.

const run = promisify(execFile);
const available = CLI_AVAILABLE;
const TEMPLATES = ['default', 'minimal', 'voice-only', 'text-only', 'customer-service', 'assistant'];

let testApp: TestApp;
let client: ElevenLabsClient;
let project: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  testApp = await startTestApp();
  const baseUrl = await listen(testApp);
  client = sdk(baseUrl, testApp.keys.admin);
  project = mkdtempSync(path.join(tmpdir(), 'branchwise-cli-'));
  env = cliEnv(project, baseUrl, testApp.keys.admin);
});
afterAll(async () => {
  await testApp.close();
  rmSync(project, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(CLI, args, { cwd: project, env, timeout: patient(60_000) });
    return stdout;
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`elevenlabs ${args.join(' ')} failed: ${failed.message}\n${failed.stdout ?? ''}\n${failed.stderr ?? ''}`);
  }
}

async function cliJson<T = any>(...args: string[]): Promise<T> {
  return JSON.parse(await cli(...args, '--format', 'json')) as T;
}

const readJson = (file: string) => JSON.parse(readFileSync(path.join(project, file), 'utf8'));

describe.skipIf(!available)('the ElevenLabs CLI against branchwise (needs the linux-x64 CLI binary)', () => {
  let agentId: string;
  let mainId: string;
  let stagingId: string;

  it('init, then add an agent from every template the CLI offers', async () => {
    await cli('agents', 'init');
    expect(readJson('agents.json')).toEqual({ agents: [] });
    for (const template of TEMPLATES) {
      const out = await cli('agents', 'add', `Bot ${template}`, '--template', template);
      expect(out).toContain(`Added agent 'Bot ${template}'`);
    }
    const registry = readJson('agents.json').agents as { id: string; config: string }[];
    expect(registry).toHaveLength(TEMPLATES.length);
    for (const entry of registry) {
      const agent = await client.conversationalAi.agents.get(entry.id);
      expect(agent.name).toBe(readJson(entry.config).name);
    }
    agentId = registry[0].id;
    expect(await cli('agents', 'status')).toContain('Bot default');
  });

  it('pushes an edited config as a new version with its description, and every field round-trips', async () => {
    const file = 'agent_configs/Bot-default.json';
    const config = readJson(file);
    config.conversation_config.agent.first_message = 'Hello from the file';
    writeFileSync(path.join(project, file), JSON.stringify(config, null, 2));
    const out = await cli('agents', 'push', '--version-description', 'greeting from the file');
    expect(out).toContain('Updated agent Bot default');
    // The CLI compares what it sent with what comes back and warns about anything not kept.
    expect(out).not.toContain('not persisted');
    const agent = await client.conversationalAi.agents.get(agentId);
    expect(agent.conversationConfig.agent?.firstMessage).toBe('Hello from the file');
    mainId = agent.mainBranchId!;
    const version = await client.conversationalAi.agents.versions.get(agentId, agent.versionId!);
    expect(version.versionDescription).toBe('greeting from the file');
    expect(version.seqNoInBranch).toBe(2);
  });

  it('creates a branch and pushes to it by name', async () => {
    const head = await cliJson<{ version_id: string }>('agents', 'get', '--agent-id', agentId);
    const created = await cliJson<{ created_branch_id: string }>(
      'agents', 'branches', 'create', '--agent-id', agentId, '--parent-version-id', head.version_id, '--name', 'staging', '--description', 'try things',
    );
    stagingId = created.created_branch_id;
    const file = 'agent_configs/Bot-default.json';
    const config = readJson(file);
    config.conversation_config.agent.first_message = 'Hello from staging';
    writeFileSync(path.join(project, file), JSON.stringify(config, null, 2));
    const out = await cli('agents', 'push', '--agent', agentId, '--branch', 'staging', '--version-description', 'staging greeting');
    expect(out).toContain('Pushing to branch: staging');
    expect((await client.conversationalAi.agents.get(agentId, { branchId: stagingId })).conversationConfig.agent?.firstMessage).toBe('Hello from staging');
    expect((await client.conversationalAi.agents.get(agentId)).conversationConfig.agent?.firstMessage).toBe('Hello from the file');
  });

  it('deploys 90/10 and pulls every branch into files', async () => {
    const request = (branchId: string, percentage: number) => ({ branch_id: branchId, deployment_strategy: { type: 'percentage', traffic_percentage: percentage } });
    const deployed = await cliJson('agents', 'deployments', 'create', '--agent-id', agentId, '--json', JSON.stringify({ deployment_request: { requests: [request(mainId, 90), request(stagingId, 10)] } }));
    expect(deployed.traffic_percentage_branch_id_map).toEqual({ [mainId]: 90, [stagingId]: 10 });
    expect((await client.conversationalAi.agents.branches.get(agentId, stagingId)).currentLivePercentage).toBe(10);

    const out = await cli('agents', 'pull', '--all', '--all-branches', '--yes');
    expect(out).toContain("Branch 'staging'");
    const entry = (readJson('agents.json').agents as any[]).find((item) => item.id === agentId);
    expect(entry.branches.staging).toMatchObject({ branch_id: stagingId, config: 'agent_configs/Bot-default.staging.json' });
    expect(readJson('agent_configs/Bot-default.staging.json').conversation_config.agent.first_message).toBe('Hello from staging');
    expect(readJson('agent_configs/Bot-default.json').conversation_config.agent.first_message).toBe('Hello from the file');
  });

  it('previews and merges the branch into main, then pulls the merged config', async () => {
    const preview = await cliJson('agents', 'branches', 'preview_merge', '--agent-id', agentId, '--source-branch-id', stagingId, '--target-branch-id', mainId);
    expect(preview).toMatchObject({ conflicts: [], source_identical_to_target: false });
    expect(preview.conversation_config.agent.first_message).toBe('Hello from staging');
    const merged = await cliJson('agents', 'branches', 'merge', '--agent-id', agentId, '--source-branch-id', stagingId, '--target-branch-id', mainId);
    expect(merged).toMatchObject({ source_archived: true, moved_traffic_percentage: 10 });
    expect((await client.conversationalAi.agents.branches.get(agentId, mainId)).currentLivePercentage).toBe(100);

    await cli('agents', 'pull', '--agent', agentId, '--update', '--yes');
    expect(readJson('agent_configs/Bot-default.json').conversation_config.agent.first_message).toBe('Hello from staging');
  });

  it('answers the API commands in JSON and in the table format', async () => {
    const list = await cliJson<{ agents: { agent_id: string }[] }>('agents', 'list');
    expect(list.agents.map((agent) => agent.agent_id)).toContain(agentId);
    expect(await cli('agents', 'list', '--format', 'table')).toContain('Bot default');
    const summaries = await cliJson<Record<string, { status: string }>>('agents', 'summaries', 'get', '--agent-ids', agentId);
    expect(summaries[agentId].status).toBe('success');

    const branches = await cliJson<{ results: { id: string; name: string }[] }>('agents', 'branches', 'list', '--agent-id', agentId, '--include-archived', 'true');
    expect(branches.results.map((branch) => branch.name).sort()).toEqual(['Main', 'staging']);
    expect(await cli('agents', 'branches', 'list', '--agent-id', agentId, '--format', 'table')).toContain('writer_perms_required');
    const main = await cliJson<{ most_recent_versions: { id: string }[] }>('agents', 'branches', 'get', '--agent-id', agentId, '--branch-id', mainId);
    const version = await cliJson<{ seq_no_in_branch: number }>('agents', 'versions', 'get', '--agent-id', agentId, '--version-id', main.most_recent_versions[0].id);
    expect(version.seq_no_in_branch).toBe(3);

    const head = await cliJson<{ version_id: string }>('agents', 'get', '--agent-id', agentId);
    const feature = await cliJson<{ created_branch_id: string }>(
      'agents', 'branches', 'create', '--agent-id', agentId, '--parent-version-id', head.version_id, '--name', 'feature', '--description', '',
    );
    const renamed = await cliJson('agents', 'branches', 'update', '--agent-id', agentId, '--branch-id', feature.created_branch_id, '--name', 'feature-2');
    expect(renamed.name).toBe('feature-2');
    await cliJson('agents', 'update', '--agent-id', agentId, '--json', JSON.stringify({ conversation_config: { agent: { language: 'de' } } }));
    const rebasePreview = await cliJson('agents', 'branches', 'preview_rebase', '--agent-id', agentId, '--branch-id', feature.created_branch_id);
    expect(rebasePreview.conversation_config.agent.language).toBe('de');
    await cliJson('agents', 'branches', 'rebase', '--agent-id', agentId, '--branch-id', feature.created_branch_id);
    expect((await client.conversationalAi.agents.get(agentId, { branchId: feature.created_branch_id })).conversationConfig.agent?.language).toBe('de');

    await cli('agents', 'drafts', 'create', '--agent-id', agentId, '--branch-id', feature.created_branch_id, '--json',
      JSON.stringify({ conversation_config: { agent: { first_message: 'draft' } }, platform_settings: {}, workflow: {}, name: 'Bot default' }));
    const withDraft = await client.conversationalAi.agents.branches.list(agentId);
    expect(withDraft.results.find((branch) => branch.id === feature.created_branch_id)?.draftExists).toBe(true);
    await cli('agents', 'drafts', 'delete', '--agent-id', agentId, '--branch-id', feature.created_branch_id);
    expect((await client.conversationalAi.agents.branches.list(agentId)).results.find((branch) => branch.id === feature.created_branch_id)?.draftExists).toBe(false);

    const copy = await cliJson<{ agent_id: string }>('agents', 'duplicate', '--agent-id', agentId, '--name', 'Copied bot');
    expect((await client.conversationalAi.agents.get(copy.agent_id)).name).toBe('Copied bot');
    await cli('agents', 'delete', '--agent-id', copy.agent_id);
    const gone = await client.conversationalAi.agents.get(copy.agent_id).catch((error: unknown) => (error as { statusCode: number }).statusCode);
    expect(gone).toBe(404);
  }, patient(120_000)); // about 20 CLI processes one after another: 28 s and over 30 s on this 2-core machine at load average 10

  it('answers commands outside the product with upstream\'s 404 shape, promptly', async () => {
    const failed = (await run(CLI, ['agents', 'tools', 'list', '--format', 'json'], { cwd: project, env, timeout: patient(30_000) }).catch((error: unknown) => error)) as {
      stdout: string;
      code: number;
    };
    expect(failed.code).not.toBe(0);
    expect(failed.stdout).toContain('"code": 404');
    expect(failed.stdout).toContain('not_found');
  });
});
