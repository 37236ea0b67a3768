import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import type { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { snapshotDatabase } from '../support/db-snapshot.js';
import { failure } from '../support/sdk-errors.js';
import { listen, sdk, startTestApp, type TestApp } from '../support/test-app.js';
import { CLI, CLI_AVAILABLE, cliEnv } from '../support/cli.js';
import { patient } from '../support/patience.js';

// Procedures end to end through the official ElevenLabs CLI (`elevenlabs` 1.3, the native binary,
// set up as in cli.test.ts): `agents procedures create|list|get|compile|remove` and
// `drafts get|update|delete`, publishing with `agents update` (and its `--procedures` map),
// `agents branches create --include-draft`, and an agents-as-code `push` that leaves procedures be.
// After each step the assertions read what the server then holds through the SDK or the store.

const run = promisify(execFile);
const available = CLI_AVAILABLE;

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
  env = cliEnv(project, baseUrl, testApp.keys.admin);
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

    // Without --json the CLI sends no body at all (content-length 0): an empty free-form sub-procedure.
    const blank = await cliJson<{ procedure_id: string }>('agents', 'procedures', 'create', ...on);
    expect(await procedures().drafts.get(agentId, branchId, blank.procedure_id)).toMatchObject({ name: '', content: '', type: 'free_form', trigger: '' });
    // Never published, so discarding its draft deletes it.
    await cli('agents', 'procedures', 'drafts', 'delete', ...on, '--procedure-id', blank.procedure_id);
    expect((await failure(procedures().drafts.get(agentId, branchId, blank.procedure_id))).statusCode).toBe(404);

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

    // `--trigger null` is sent as JSON null and keeps the stored trigger; `--trigger ''` clears it.
    await cli('agents', 'procedures', 'drafts', 'update', ...on, '--procedure-id', freeForm, '--name', 'Refunds', '--type', 'free_form',
      '--content', 'Ask for the order number. Confirm the amount before refunding.', '--trigger', 'null');
    expect((await procedures().drafts.get(agentId, branchId, freeForm)).trigger).toBe('The caller wants a refund');
    await cli('agents', 'procedures', 'drafts', 'update', ...on, '--procedure-id', stepwise, '--name', 'Order status', '--type', 'deterministic', '--content', STEPS, '--trigger', '');
    expect((await procedures().drafts.get(agentId, branchId, stepwise)).trigger).toBe('');
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
    expect(refused.code).toBe(1);
    // The CLI prints the server's flat `{"errors": …}` body under `error.details`, every error of the procedure.
    const printed = JSON.parse(refused.stdout).error;
    expect(printed).toMatchObject({ code: 400, reason: 'badRequest' });
    expect(Object.keys(printed.details.errors)).toEqual([stepwise]);
    expect(printed.details.errors[stepwise]).toEqual([
      { path: 'steps[0].ask.instruction', message: 'Step 1: Ask step requires an instruction' },
      { path: 'steps[1].system_tool', message: 'Step 2: End call must be the last step of its list' },
    ]);
    // In the table format the same errors go to stderr, one line a field.
    const table = await attempt('agents', 'procedures', 'compile', ...on, '--format', 'table');
    expect(table.code).toBe(1);
    expect(table.stderr).toContain(`${stepwise}[0].message: Step 1: Ask step requires an instruction`);

    // Publishing the broken set is refused the same way, and nothing is published.
    const publish = await attempt('agents', 'update', '--agent-id', agentId, '--branch-id', branchId, '--format', 'json', '--json', '{}');
    expect(publish.code).not.toBe(0);
    expect(publish.stdout + publish.stderr).toContain('procedure_validation_failed');
    expect(Object.keys((await head()).procedures ?? {})).toEqual([]);

    await cli('agents', 'procedures', 'drafts', 'update', ...on, '--procedure-id', stepwise, '--name', 'Order status', '--type', 'deterministic', '--content', STEPS);
  }, patient(60_000));

  let firstVersions: Record<string, string>;
  let firstAgentVersion: string;

  it('publish with agents update, then get the head, a version and an agent version\'s', async () => {
    const published = await cliJson<{ version_id: string; procedures: Record<string, { version_id: string }> }>(
      'agents', 'update', '--agent-id', agentId, '--branch-id', branchId, '--version-description', 'two procedures');
    const agent = await head();
    expect(agent.versionId).toBe(published.version_id);
    expect(Object.keys(agent.procedures ?? {}).sort()).toEqual([freeForm, stepwise].sort());
    firstVersions = { [freeForm]: agent.procedures![freeForm].versionId!, [stepwise]: agent.procedures![stepwise].versionId! };
    firstAgentVersion = agent.versionId!;
    expect(published.procedures[freeForm].version_id).toBe(firstVersions[freeForm]);
    // The drafts are cleared.
    expect((await procedures().list(agentId, branchId)).procedures.map((item) => item.hasDraft)).toEqual([false, false]);
    const list = await cliJson<{ procedures: { procedure_id: string; version_id: string | null }[] }>('agents', 'procedures', 'list', ...on);
    expect(Object.fromEntries(list.procedures.map((item) => [item.procedure_id, item.version_id]))).toEqual(firstVersions);

    const atHead = await cliJson('agents', 'procedures', 'get', ...on, '--procedure-id', stepwise);
    expect(atHead).toMatchObject({ procedure_id: stepwise, version_id: firstVersions[stepwise], type: 'deterministic', content: STEPS });

    // A second version of the free-form one, published; the first is still there by id and by agent version.
    await cli('agents', 'procedures', 'drafts', 'update', ...on, '--procedure-id', freeForm, '--name', 'Refunds', '--type', 'free_form',
      '--content', 'Refund only with a receipt.', '--trigger', 'The caller wants money back');
    await cli('agents', 'update', '--agent-id', agentId, '--branch-id', branchId, '--version-description', 'receipts');
    const second = (await head()).procedures![freeForm].versionId!;
    expect(second).not.toBe(firstVersions[freeForm]);
    expect(await cliJson('agents', 'procedures', 'get', ...on, '--procedure-id', freeForm)).toMatchObject({ version_id: second, content: 'Refund only with a receipt.', trigger: 'The caller wants money back' });
    expect(await cliJson('agents', 'procedures', 'get', ...on, '--procedure-id', freeForm, '--version-id', firstVersions[freeForm]))
      .toMatchObject({ version_id: firstVersions[freeForm], content: 'Ask for the order number. Confirm the amount before refunding.', trigger: 'The caller wants a refund' });
    expect(await cliJson('agents', 'procedures', 'get', ...on, '--procedure-id', freeForm, '--agent-version-id', firstAgentVersion))
      .toMatchObject({ version_id: firstVersions[freeForm] });
    const listed = await cliJson<{ procedures: { procedure_id: string; version_id: string }[] }>('agents', 'procedures', 'list', ...on, '--agent-version-id', firstAgentVersion);
    expect(Object.fromEntries(listed.procedures.map((item) => [item.procedure_id, item.version_id]))).toEqual(firstVersions);

    const missing = await attempt('agents', 'procedures', 'get', ...on, '--procedure-id', 'agtprc_nosuchprocedure00000000000', '--format', 'json');
    expect(missing.code).not.toBe(0);
    expect(missing.stdout + missing.stderr).toContain('404');
  }, patient(90_000));

  it('agents update --procedures sets the map: back to the first version, then without the deterministic one', async () => {
    const pinned = { [freeForm]: { procedure_id: freeForm, version_id: firstVersions[freeForm] }, [stepwise]: { procedure_id: stepwise, version_id: firstVersions[stepwise] } };
    await cli('agents', 'update', '--agent-id', agentId, '--branch-id', branchId, '--procedures', JSON.stringify(pinned));
    let agent = await head();
    expect(Object.fromEntries(Object.entries(agent.procedures ?? {}).map(([id, ref]) => [id, ref.versionId]))).toEqual(firstVersions);

    await cli('agents', 'update', '--agent-id', agentId, '--branch-id', branchId, '--procedures', JSON.stringify({ [freeForm]: pinned[freeForm] }));
    agent = await head();
    expect(Object.keys(agent.procedures ?? {})).toEqual([freeForm]);

    // A version that is not one of the procedure's is refused, and the map stays.
    const refused = await attempt('agents', 'update', '--agent-id', agentId, '--branch-id', branchId, '--format', 'json',
      '--procedures', JSON.stringify({ [freeForm]: { procedure_id: freeForm, version_id: firstVersions[stepwise] } }));
    expect(refused.code).not.toBe(0);
    expect(refused.stdout + refused.stderr).toContain('400');
    expect((await head()).versionId).toBe(agent.versionId);

    // Back to both, at their latest versions, for what follows.
    await cli('agents', 'update', '--agent-id', agentId, '--branch-id', branchId, '--procedures', JSON.stringify(pinned));
    expect(Object.keys((await head()).procedures ?? {}).sort()).toEqual([freeForm, stepwise].sort());
  }, patient(60_000));

  it('drafts delete discards a draft; remove stages a removal that the next publish makes', async () => {
    await cli('agents', 'procedures', 'drafts', 'update', ...on, '--procedure-id', freeForm, '--name', 'Refunds v3', '--type', 'free_form', '--content', 'Scratch.');
    expect((await procedures().drafts.get(agentId, branchId, freeForm)).name).toBe('Refunds v3');
    const discarded = await cliJson('agents', 'procedures', 'drafts', 'delete', ...on, '--procedure-id', freeForm);
    expect(discarded).toEqual({ procedure_id: freeForm });
    expect(await procedures().drafts.get(agentId, branchId, freeForm)).toMatchObject({ name: 'Refunds', content: 'Ask for the order number. Confirm the amount before refunding.' });
    expect((await procedures().list(agentId, branchId)).procedures.every((item) => !item.hasDraft)).toBe(true);

    const removed = await cliJson('agents', 'procedures', 'remove', ...on, '--procedure-id', stepwise);
    expect(removed).toEqual({ procedure_id: stepwise });
    // Staged: gone from the caller's list, still on the head until published.
    expect((await procedures().list(agentId, branchId)).procedures.map((item) => item.procedureId)).toEqual([freeForm]);
    expect(Object.keys((await head()).procedures ?? {}).sort()).toEqual([freeForm, stepwise].sort());
    await cli('agents', 'update', '--agent-id', agentId, '--branch-id', branchId, '--version-description', 'no order status');
    expect(Object.keys((await head()).procedures ?? {})).toEqual([freeForm]);
    // Its versions stay readable by version.
    expect(await cliJson('agents', 'procedures', 'get', ...on, '--procedure-id', stepwise, '--version-id', firstVersions[stepwise])).toMatchObject({ content: STEPS });
  }, patient(60_000));

  it('branches create --include-draft starts the branch from the caller\'s procedure drafts, left on the parent', async () => {
    const drafted = await cliJson<{ procedure_id: string }>('agents', 'procedures', 'create', ...on, '--json', JSON.stringify({ name: 'Escalation', content: 'Offer a human.', trigger: 'The caller is upset' }));
    const tip = (await head()).versionId!;
    const created = await cliJson<{ created_branch_id: string }>('agents', 'branches', 'create', '--agent-id', agentId, '--parent-version-id', tip,
      '--name', 'with-draft', '--description', '', '--include-draft', 'true');
    const child = await head(created.created_branch_id);
    expect(Object.keys(child.procedures ?? {}).sort()).toEqual([freeForm, drafted.procedure_id].sort());
    expect(child.procedures![drafted.procedure_id].versionId).toMatch(/^agtprcv_/);
    expect((await procedures().list(agentId, branchId)).procedures.find((item) => item.procedureId === drafted.procedure_id)?.hasDraft).toBe(true);
    expect(Object.keys((await head()).procedures ?? {})).toEqual([freeForm]);

    // Only from the branch tip: an earlier version is refused, and no branch is made.
    const refused = await attempt('agents', 'branches', 'create', '--agent-id', agentId, '--parent-version-id', firstAgentVersion, '--name', 'stale', '--description', '',
      '--include-draft', 'true', '--format', 'json');
    expect(refused.code).not.toBe(0);
    expect(JSON.parse(refused.stdout).error).toMatchObject({ code: 422, message: 'include_draft requires parent_version_id to be the tip of its branch.' });
    expect((await client.conversationalAi.agents.branches.list(agentId)).results.map((branch) => branch.name)).not.toContain('stale');

    // Without the flag the new branch takes the tip's procedures only.
    const plain = await cliJson<{ created_branch_id: string }>('agents', 'branches', 'create', '--agent-id', agentId, '--parent-version-id', tip, '--name', 'without-draft', '--description', '');
    expect(Object.keys((await head(plain.created_branch_id)).procedures ?? {})).toEqual([freeForm]);
    await cli('agents', 'procedures', 'drafts', 'delete', ...on, '--procedure-id', drafted.procedure_id);
  }, patient(60_000));

  it('an agents-as-code push to the branch keeps its procedures', async () => {
    const file = (readJson('agents.json').agents as { config: string }[])[0].config;
    const config = readJson(file);
    config.conversation_config.agent.first_message = 'Hello from the file';
    writeFileSync(path.join(project, file), JSON.stringify(config, null, 2));
    const before = await head();
    const out = await cli('agents', 'push', '--agent', agentId, '--branch', 'procedures', '--version-description', 'greeting from the file');
    expect(out).toContain('Pushing to branch: procedures');
    expect(out).not.toContain('not persisted');
    const after = await head();
    expect(after.versionId).not.toBe(before.versionId);
    expect(after.conversationConfig.agent?.firstMessage).toBe('Hello from the file');
    expect(after.procedures).toEqual(before.procedures);

    // A pulled config file has no procedures, so a push sends none: like any PATCH without a
    // `procedures` map, it publishes the caller's pending procedure drafts with the config.
    await cli('agents', 'pull', '--agent', agentId, '--all-branches', '--yes');
    expect(Object.keys(readJson(file))).not.toContain('procedures');
    await cli('agents', 'procedures', 'drafts', 'update', ...on, '--procedure-id', freeForm, '--name', 'Refunds', '--type', 'free_form', '--content', 'Pushed along.');
    await cli('agents', 'push', '--agent', agentId, '--branch', 'procedures', '--version-description', 'with a draft');
    const pushed = await head();
    expect(Object.keys(pushed.procedures ?? {})).toEqual([freeForm]);
    expect(pushed.procedures![freeForm].versionId).not.toBe(before.procedures![freeForm].versionId);
    expect((await procedures().get(agentId, branchId, freeForm)).content).toBe('Pushed along.');

    // An invalid pending draft fails the push's PATCH: the CLI reports it (and exits 0), nothing is published.
    const broken = await cliJson<{ procedure_id: string }>('agents', 'procedures', 'create', ...on, '--json', JSON.stringify({ name: 'Broken', type: 'deterministic', content: BROKEN_STEPS }));
    const refused = await attempt('agents', 'push', '--agent', agentId, '--branch', 'procedures');
    expect(refused.stdout + refused.stderr).toContain('Structured procedures failed validation.');
    expect((await head()).versionId).toBe(pushed.versionId);
    await cli('agents', 'procedures', 'drafts', 'delete', ...on, '--procedure-id', broken.procedure_id);
  }, patient(90_000));
});
