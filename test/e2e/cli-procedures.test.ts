import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import type { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { snapshotDatabase } from '../support/db-snapshot.js';
import { listen, sdk, startTestApp, type TestApp } from '../support/test-app.js';
import { patient } from '../support/patience.js';

// Procedures end to end through the official ElevenLabs CLI (`elevenlabs` 1.3, the native binary,
// set up as in cli.test.ts): `agents procedures create|list|get|compile|remove` and
// `drafts get|update|delete`, publishing with `agents update` (and its `--procedures` map),
// `agents branches create --include-draft`, and an agents-as-code `push` that leaves procedures be.
// After each step the assertions read what the server then holds through the SDK or the store.

const run = promisify(execFile);
const CLI = (() => {
  try {
    return path.join(path.dirname(createRequire(import.meta.url).resolve('@elevenlabs/cli-linux-x64/package.json')), 'elevenlabs');
  } catch {
    return '';
  }
})();
const available = CLI !== '' && existsSync(CLI);
if (!available && process.env.CI === 'true') throw new Error('the ElevenLabs CLI binary (@elevenlabs/cli-linux-x64) is not installed');

const STEPS = JSON.stringify({
  steps: [
    { type: 'ask', instruction: 'Ask for the order number' },
    { type: 'say', message: 'Thank you, one moment.' },
    { type: 'system_tool', system_tool_name: 'end_call' },
  ],
});
// Two errors: an ask with no instruction, and end_call before the last step.
const BROKEN_STEPS = JSON.stringify({ steps: [{ type: 'ask', instruction: '' }, { type: 'system_tool', system_tool_name: 'end_call' }, { type: 'tell', instruction: 'Bye' }] });

let testApp: TestApp;
let client: ElevenLabsClient;
let project: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  testApp = await startTestApp();
  const baseUrl = await listen(testApp);
  client = sdk(baseUrl, testApp.keys.admin);
  project = mkdtempSync(path.join(tmpdir(), 'branchwise-cli-procedures-'));
  env = { ...process.env, HOME: project, ELEVENLABS_BASE_URL: baseUrl, ELEVENLABS_API_KEY: testApp.keys.admin, NO_COLOR: '1' };
});
afterAll(async () => {
  await testApp.close();
  rmSync(project, { recursive: true, force: true });
});

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to its end, whatever its exit code. */
async function attempt(...args: string[]): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(CLI, args, { cwd: project, env, timeout: patient(60_000) });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string; message: string };
    if (typeof failed.code !== 'number') throw error;
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

async function cli(...args: string[]): Promise<string> {
  const outcome = await attempt(...args);
  if (outcome.code !== 0) throw new Error(`elevenlabs ${args.join(' ')} exited ${outcome.code}\n${outcome.stdout}\n${outcome.stderr}`);
  return outcome.stdout;
}

async function cliJson<T = any>(...args: string[]): Promise<T> {
  return JSON.parse(await cli(...args, '--format', 'json')) as T;
}

const readJson = (file: string) => JSON.parse(readFileSync(path.join(project, file), 'utf8'));

describe.skipIf(!available)('procedures through the ElevenLabs CLI against branchwise (needs the linux-x64 CLI binary)', () => {
  let agentId: string;
  let branchId: string;
  let freeForm: string;
  let stepwise: string;
  let on: string[];

  const procedures = () => client.conversationalAi.agents.procedures;
  const head = (branch = branchId) => client.conversationalAi.agents.get(agentId, { branchId: branch });

  it('an agents-as-code agent and a branch, then create: free-form, deterministic, and with no body at all', async () => {
    await cli('agents', 'init');
    await cli('agents', 'add', 'Procedure bot', '--template', 'minimal');
    agentId = (readJson('agents.json').agents as { id: string }[])[0].id;
    const main = await client.conversationalAi.agents.get(agentId);
    const created = await cliJson<{ created_branch_id: string }>(
      'agents', 'branches', 'create', '--agent-id', agentId, '--parent-version-id', main.versionId!, '--name', 'procedures', '--description', 'with procedures',
    );
    branchId = created.created_branch_id;
    on = ['--agent-id', agentId, '--branch-id', branchId];

    const refunds = await cliJson<{ procedure_id: string }>('agents', 'procedures', 'create', ...on, '--json',
      JSON.stringify({ name: 'Refunds', content: 'Ask for the order number, then confirm the amount for {{customer_id}}.', trigger: 'The caller wants a refund' }));
    freeForm = refunds.procedure_id;
    expect(freeForm).toMatch(/^agtprc_/);
    const orders = await cliJson<{ procedure_id: string }>('agents', 'procedures', 'create', ...on, '--json',
      JSON.stringify({ name: 'Order status', type: 'deterministic', content: STEPS, trigger: 'The caller asks about an order' }));
    stepwise = orders.procedure_id;

    // The CLI sends a body-less create as JSON null: an empty free-form procedure, a sub-procedure.
    const blank = await cliJson<{ procedure_id: string }>('agents', 'procedures', 'create', ...on);
    expect(await procedures().drafts.get(agentId, branchId, blank.procedure_id)).toMatchObject({ name: '', content: '', type: 'free_form', trigger: '' });
    await cli('agents', 'procedures', 'drafts', 'delete', ...on, '--procedure-id', blank.procedure_id);

    const held = await procedures().list(agentId, branchId);
    expect(held.procedures.map((item) => [item.procedureId, item.name, item.type, item.hasDraft]).sort()).toEqual(
      [[freeForm, 'Refunds', 'free_form', true], [stepwise, 'Order status', 'deterministic', true]].sort(),
    );
    expect(await procedures().drafts.get(agentId, branchId, stepwise)).toMatchObject({ content: STEPS, trigger: 'The caller asks about an order' });
    // Drafts only: the branch head has no procedures yet.
    expect(Object.keys((await head()).procedures ?? {})).toEqual([]);
  }, patient(60_000));

  it('list shows the drafts; drafts get and update (flags) write the caller\'s draft', async () => {
    const list = await cliJson<{ procedures: { procedure_id: string; has_draft: boolean; version_id: string | null }[] }>('agents', 'procedures', 'list', ...on);
    expect(list.procedures.map((item) => [item.procedure_id, item.has_draft, item.version_id]).sort()).toEqual([[freeForm, true, null], [stepwise, true, null]].sort());
    expect(await cli('agents', 'procedures', 'list', ...on, '--format', 'table')).toContain('Order status');

    const draft = await cliJson('agents', 'procedures', 'drafts', 'get', ...on, '--procedure-id', freeForm);
    expect(draft).toMatchObject({ procedure_id: freeForm, name: 'Refunds', type: 'free_form', trigger: 'The caller wants a refund', folder_parent_id: null });

    const updated = await cliJson('agents', 'procedures', 'drafts', 'update', ...on, '--procedure-id', freeForm,
      '--name', 'Refunds', '--type', 'free_form', '--content', 'Ask for the order number. Confirm the amount before refunding.');
    // No --trigger: the stored one stays.
    expect(updated).toMatchObject({ content: 'Ask for the order number. Confirm the amount before refunding.', trigger: 'The caller wants a refund' });
    expect(await procedures().drafts.get(agentId, branchId, freeForm)).toMatchObject({ content: 'Ask for the order number. Confirm the amount before refunding.' });

    // The type is fixed: the server's 400 comes through, and the draft stays as it was.
    const typeChange = await attempt('agents', 'procedures', 'drafts', 'update', ...on, '--procedure-id', freeForm, '--name', 'Refunds', '--type', 'deterministic', '--content', STEPS);
    expect(typeChange.code).not.toBe(0);
    expect(typeChange.stdout + typeChange.stderr).toContain('procedure_type_cannot_change');
    expect((await procedures().drafts.get(agentId, branchId, freeForm)).type).toBe('free_form');
  }, patient(60_000));

  it('compile: the base workflow when valid; the server\'s errors and a failing exit code when not; nothing written either way', async () => {
    let before = await snapshotDatabase(testApp.store.db);
    const compiled = await cliJson<{ workflow: Record<string, unknown> }>('agents', 'procedures', 'compile', ...on);
    expect(compiled.workflow).toMatchObject({ nodes: expect.any(Object), edges: expect.any(Object) });
    expect(await snapshotDatabase(testApp.store.db)).toBe(before);

    await cli('agents', 'procedures', 'drafts', 'update', ...on, '--procedure-id', stepwise, '--name', 'Order status', '--type', 'deterministic', '--content', BROKEN_STEPS);
    before = await snapshotDatabase(testApp.store.db);
    const refused = await attempt('agents', 'procedures', 'compile', ...on, '--format', 'json');
    expect(await snapshotDatabase(testApp.store.db)).toBe(before);
    expect(refused.code).not.toBe(0);
    const printed = refused.stdout + refused.stderr;
    expect(printed).toContain('400');
    expect(printed).toContain(stepwise);
    expect(printed).toContain('Step 1: Ask step requires an instruction');
    expect(printed).toContain('End call must be the last step of its list');

    // Publishing the broken set is refused the same way, and nothing is published.
    const publish = await attempt('agents', 'update', '--agent-id', agentId, '--branch-id', branchId, '--format', 'json', '--json', '{}');
    expect(publish.code).not.toBe(0);
    expect(publish.stdout + publish.stderr).toContain('procedure_validation_failed');
    expect(Object.keys((await head()).procedures ?? {})).toEqual([]);

    await cli('agents', 'procedures', 'drafts', 'update', ...on, '--procedure-id', stepwise, '--name', 'Order status', '--type', 'deterministic', '--content', STEPS);
  }, patient(60_000));
});
