import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  type AgentHistory,
  type ApiResult,
  callApi,
  expectConsistentHistory,
  fuzzSeed,
  orderViolations,
  type Random,
  readAgentHistory,
  refusalCode,
  seededRandom,
  settingWriteOrder,
  soak,
  splitKey,
  type TimedWrite,
} from '../support/reliability.js';
import { dialect, listen, startTestApp, type TestApp } from '../support/test-app.js';

// decisions.md D5, "no acknowledged write is lost under concurrency": 50 clients race a
// seeded random mix of every write on ONE agent over real HTTP; afterwards the database must hold
// exactly the acknowledged writes, in a consistent history. Each client draws its operations from
// its own PRNG seeded from the run's seed, so FUZZ_SEED=<seed> replays the same operations (their
// interleaving is up to the scheduler).

const seed = fuzzSeed();
const CLIENTS = 50;
const OPERATIONS = soak ? 5_000 : 450;
const AUTO_REBASE_DESCRIPTION = 'Automatic rebase onto main';

/** Every assertion message carries the seed, so a failure can be replayed. */
const withSeed = (message: string) => `${message} [seed ${seed}: replay with FUZZ_SEED=${seed}]`;

type Operation = 'commit' | 'commitSettings' | 'createBranch' | 'merge' | 'rebase' | 'saveDraft' | 'discardDraft' | 'deploy' | 'setAutoRebase';

const WEIGHTS: [Operation, number][] = [
  ['commit', 40],
  ['commitSettings', 8],
  ['createBranch', 9],
  ['merge', 14],
  ['rebase', 8],
  ['saveDraft', 8],
  ['discardDraft', 4],
  ['deploy', 14],
  ['setAutoRebase', 3],
];

/** Refusals an operation may meet when racing others (decisions.md D5, D12, D14); anything else fails the test. */
const EXPECTED_REFUSALS: Record<Operation, string[]> = {
  commit: ['409 branch_archived', '409 concurrent_modification'],
  commitSettings: ['409 branch_archived'],
  createBranch: [],
  merge: ['409 no_new_changes_to_merge', '409 branch_already_merged', '409 branch_archived', '409 concurrent_modification'],
  rebase: ['409 branch_already_up_to_date', '409 branch_archived'],
  saveDraft: [],
  discardDraft: [],
  // A split naming a branch archived since the client last looked.
  deploy: ['422'],
  setAutoRebase: [],
};

/** What clients believe about a branch: stale by design, as a real client's view is. */
interface KnownBranch {
  id: string;
  name: string;
  archived: boolean;
  lastSeenHead: string;
}

interface VersionWrite extends TimedWrite {
  versionId: string;
  branchId: string;
  description: string;
}

interface DeploymentWrite {
  split: Record<string, number>;
  startedAt: number;
  acknowledgedAt: number;
  what: string;
}

interface MergeWrite {
  sourceId: string;
  sourceArchived: boolean;
  movedPercentage: number;
}

interface Timed {
  result: ApiResult;
  startedAt: number;
  acknowledgedAt: number;
}

let testApp: TestApp;
let baseUrl: string;
/** The cause of every 5xx by request id: the wire rightly hides it, the failure report should not. */
const serverErrors = new Map<string, string>();

beforeAll(async () => {
  testApp = await startTestApp();
  testApp.app.server.addHook('onError', async (request, _reply, error) => {
    // PostgreSQL errors carry a SQLSTATE `code` and, for lock waits and deadlocks, a `detail`.
    const { code, detail } = error as { code?: unknown; detail?: unknown };
    serverErrors.set(request.id, [`${error.name}${code ? ` ${String(code)}` : ''}: ${error.message}`, detail].filter(Boolean).join(' | '));
  });
  baseUrl = await listen(testApp);
});
afterAll(() => testApp?.close());

/** One run of the mix against one agent, and what it was told. */
class ConcurrentRun {
  readonly known = new Map<string, KnownBranch>();
  readonly versionWrites: VersionWrite[] = [];
  readonly deploymentWrites: DeploymentWrite[] = [];
  readonly mergeWrites: MergeWrite[] = [];
  readonly createdBranchIds: string[] = [];
  /** Settings-only commits: the daily limit each wrote and the one its answer showed. */
  readonly settingsWrites: { wrote: number; shown: number | undefined }[] = [];
  /** `operation status code` → count, for the report and the refusal checks. */
  readonly tally = new Map<string, number>();
  readonly failures: string[] = [];
  private nextOperation = 0;

  constructor(
    readonly agentId: string,
    readonly mainBranchId: string,
    mainHead: string,
    private readonly keys: string[],
  ) {
    this.known.set(mainBranchId, { id: mainBranchId, name: 'Main', archived: false, lastSeenHead: mainHead });
  }

  async runClients(): Promise<void> {
    await Promise.all(Array.from({ length: CLIENTS }, (_, index) => this.runClient(index)));
  }

  private async runClient(index: number): Promise<void> {
    const rng = seededRandom((seed + Math.imul(index + 1, 0x9e3779b9)) >>> 0);
    for (let op = this.nextOperation++; op < OPERATIONS; op = this.nextOperation++) {
      const operation = pickWeighted(rng, WEIGHTS);
      const key = rng.pick(this.keys);
      await this[operation](rng, op, key);
    }
  }

  /** Sends one request, timing it and counting its outcome; undefined unless it was a 2xx. */
  private async send(operation: Operation, key: string, method: string, path: string, body?: unknown, label: string = operation): Promise<Timed | undefined> {
    const startedAt = performance.now();
    let result: ApiResult;
    try {
      result = await callApi(baseUrl, key, method, path, body);
    } catch (error) {
      this.count(`${label} network error`);
      this.failures.push(`${operation}: ${method} ${path} failed on the network: ${String(error)}`);
      return undefined;
    }
    const acknowledgedAt = performance.now();
    if (result.status >= 200 && result.status < 300) {
      this.count(`${label} 2xx`);
      return { result, startedAt, acknowledgedAt };
    }
    const code = refusalCode(result);
    this.count(`${label} ${code}`);
    if (result.status >= 500) {
      const cause = serverErrors.get(result.body.detail?.request_id) ?? 'cause not recorded';
      this.failures.push(`${operation}: ${method} ${path} answered ${code}; on the server: ${cause}`);
    } else if (!EXPECTED_REFUSALS[operation].includes(code)) {
      this.failures.push(`${operation}: ${method} ${path} answered ${code}: ${JSON.stringify(result.body).slice(0, 400)}`);
    }
    return undefined;
  }

  private count(outcome: string): void {
    this.tally.set(outcome, (this.tally.get(outcome) ?? 0) + 1);
  }

  /** A branch clients believe is live; now and then any branch, to meet archived ones too. */
  private pickBranch(rng: Random, options: { exceptMain?: boolean; except?: string } = {}): KnownBranch | undefined {
    const candidates = [...this.known.values()].filter(
      (branch) =>
        (rng.chance(0.05) || !branch.archived) &&
        !(options.exceptMain && branch.id === this.mainBranchId) &&
        branch.id !== options.except,
    );
    return candidates.length === 0 ? undefined : rng.pick(candidates);
  }

  private recordVersion(timed: Timed, what: string, versionId: string, branchId: string, description: string): void {
    this.versionWrites.push({
      group: branchId,
      // Filled in from the database afterwards.
      position: Number.NaN,
      startedAt: timed.startedAt,
      acknowledgedAt: timed.acknowledgedAt,
      what,
      versionId,
      branchId,
      description,
    });
    const branch = this.known.get(branchId);
    if (branch) branch.lastSeenHead = versionId;
  }

  private path(suffix = ''): string {
    return `/v1/convai/agents/${this.agentId}${suffix}`;
  }

  async commit(rng: Random, op: number, key: string): Promise<void> {
    const branch = this.pickBranch(rng);
    if (!branch) return;
    // Now and then two branches change the same field: merges then have conflicts to settle.
    const change = rng.chance(0.2)
      ? { agent: { first_message: `Hello from operation ${op}` } }
      : { agent: { dynamic_variables: { dynamic_variable_placeholders: { [`op_${op}`]: `value ${op}` } } } };
    const description = `operation ${op}: commit`;
    const query = new URLSearchParams({ branch_id: branch.id });
    if (rng.chance(0.1)) query.set('expected_version_id', branch.lastSeenHead);
    const timed = await this.send('commit', key, 'PATCH', this.path(`?${query}`), { conversation_config: change, version_description: description });
    if (!timed) return;
    const { body } = timed.result;
    if (body.branch_id !== branch.id) this.failures.push(`commit ${op} to ${branch.id} answered branch ${body.branch_id}`);
    this.recordVersion(timed, `commit ${op}`, body.version_id, branch.id, description);
  }

  /** A settings-only commit (agent-wide, no version) of a daily limit unique to the operation. */
  async commitSettings(rng: Random, op: number, key: string): Promise<void> {
    const branch = this.pickBranch(rng);
    if (!branch) return;
    const wrote = 1_000_000 + op;
    const timed = await this.send('commitSettings', key, 'PATCH', this.path(`?branch_id=${branch.id}`), { platform_settings: { call_limits: { daily_limit: wrote } } });
    if (timed) this.settingsWrites.push({ wrote, shown: timed.result.body.platform_settings?.call_limits?.daily_limit });
  }

  async createBranch(rng: Random, op: number, key: string): Promise<void> {
    const from = this.pickBranch(rng);
    if (!from) return;
    const head = await this.send('createBranch', key, 'GET', this.path(`?branch_id=${from.id}`), undefined, 'readHead');
    if (!head) return;
    const name = `branch-${op}`;
    const timed = await this.send('createBranch', key, 'POST', this.path('/branches'), {
      parent_version_id: head.result.body.version_id,
      name,
      description: `Created by operation ${op}`,
    });
    if (!timed) return;
    const { created_branch_id: branchId, created_version_id: versionId } = timed.result.body;
    this.createdBranchIds.push(branchId);
    this.known.set(branchId, { id: branchId, name, archived: false, lastSeenHead: versionId });
    this.recordVersion(timed, `branch creation ${op}`, versionId, branchId, '');
  }

  async merge(rng: Random, op: number, key: string): Promise<void> {
    const source = this.pickBranch(rng);
    const target = source && (rng.chance(0.5) ? this.known.get(this.mainBranchId) : this.pickBranch(rng, { except: source.id }));
    if (!source || !target || target.id === source.id) return;
    const archive = source.id !== this.mainBranchId && rng.chance(0.15);
    const body: Record<string, unknown> = { archive_source_branch: archive, force: rng.chance(0.2) };
    if (rng.chance(0.15)) body.expected_target_version_id = target.lastSeenHead;
    const timed = await this.send('merge', key, 'POST', this.path(`/branches/${source.id}/merge?target_branch_id=${target.id}`), body);
    if (!timed) return;
    const result = timed.result.body;
    if (result.target_branch_id !== target.id || result.source_archived !== archive) {
      this.failures.push(`merge ${op} of ${source.id} into ${target.id} (archive ${archive}) answered ${JSON.stringify(result)}`);
    }
    this.mergeWrites.push({ sourceId: source.id, sourceArchived: result.source_archived, movedPercentage: result.moved_traffic_percentage });
    if (result.source_archived) source.archived = true;
    this.recordVersion(timed, `merge ${op}`, result.version_id, target.id, `Merge branch "${source.name}" into "${target.name}"`);
  }

  async rebase(rng: Random, op: number, key: string): Promise<void> {
    const branch = this.pickBranch(rng, { exceptMain: true });
    if (!branch) return;
    const timed = await this.send('rebase', key, 'POST', this.path(`/branches/${branch.id}/rebase`));
    if (timed) this.recordVersion(timed, `rebase ${op}`, timed.result.body.version_id, branch.id, 'Rebase onto main');
  }

  async saveDraft(rng: Random, op: number, key: string): Promise<void> {
    // Main half the time, so that one user's saves on one branch overlap now and then.
    const branch = rng.chance(0.5) ? this.known.get(this.mainBranchId) : this.pickBranch(rng);
    if (!branch) return;
    await this.send('saveDraft', key, 'POST', this.path(`/drafts?branch_id=${branch.id}`), {
      conversation_config: { agent: { first_message: `Draft of operation ${op}` } },
      platform_settings: {},
      workflow: {},
      name: `Draft ${op}`,
    });
  }

  async discardDraft(rng: Random, _op: number, key: string): Promise<void> {
    const branch = rng.chance(0.5) ? this.known.get(this.mainBranchId) : this.pickBranch(rng);
    if (branch) await this.send('discardDraft', key, 'DELETE', this.path(`/drafts?branch_id=${branch.id}`));
  }

  async deploy(rng: Random, op: number, key: string): Promise<void> {
    const live = [...this.known.values()].filter((branch) => !branch.archived);
    const chosen: KnownBranch[] = [];
    const wanted = 1 + rng.int(3);
    while (chosen.length < Math.min(wanted, live.length)) {
      const branch = rng.pick(live);
      if (!chosen.includes(branch)) chosen.push(branch);
    }
    const split = randomSplit(rng, chosen.map((branch) => branch.id), op);
    const timed = await this.send('deploy', key, 'POST', this.path('/deployments'), {
      deployment_request: {
        requests: Object.entries(split).map(([branchId, percentage]) => ({
          branch_id: branchId,
          deployment_strategy: { type: 'percentage', traffic_percentage: percentage },
        })),
      },
    });
    if (!timed) return;
    if (splitKey(timed.result.body.traffic_percentage_branch_id_map) !== splitKey(split)) {
      this.failures.push(`deployment ${op} of ${JSON.stringify(split)} answered ${JSON.stringify(timed.result.body)}`);
    }
    this.deploymentWrites.push({ split, startedAt: timed.startedAt, acknowledgedAt: timed.acknowledgedAt, what: `deployment ${op}` });
  }

  async setAutoRebase(rng: Random, _op: number, key: string): Promise<void> {
    const branch = this.pickBranch(rng, { exceptMain: true });
    if (branch) await this.send('setAutoRebase', key, 'PATCH', this.path(`/branches/${branch.id}`), { auto_rebase: rng.chance(0.5) });
  }
}

function pickWeighted<T>(rng: Random, weights: [T, number][]): T {
  let roll = rng.next() * weights.reduce((sum, [, weight]) => sum + weight, 0);
  for (const [value, weight] of weights) {
    roll -= weight;
    if (roll < 0) return value;
  }
  return weights[weights.length - 1][0];
}

/**
 * Whole percentages (each ≥ 1) summing to 100; with two branches or more, a fraction unique to
 * the operation moves between the first and the last, so each acknowledged split can be found again.
 */
function randomSplit(rng: Random, branchIds: string[], op: number): Record<string, number> {
  const cuts = new Set<number>();
  while (cuts.size < branchIds.length - 1) cuts.add(1 + rng.int(99));
  const bounds = [0, ...[...cuts].sort((a, b) => a - b), 100];
  const percentages = branchIds.map((_, index) => bounds[index + 1] - bounds[index]);
  if (branchIds.length > 1) {
    const tag = (op + 1) / 100_000;
    percentages[0] += tag;
    percentages[percentages.length - 1] -= tag;
  }
  return Object.fromEntries(branchIds.map((branchId, index) => [branchId, percentages[index]]));
}

// ---------------------------------------------------------------------------------------------
// What the database must hold afterwards
// ---------------------------------------------------------------------------------------------

function expectEveryAcknowledgedVersion(run: ConcurrentRun, history: AgentHistory): void {
  const stored = new Map(history.versions.map((version) => [version.id, version]));
  for (const write of run.versionWrites) {
    const version = stored.get(write.versionId);
    expect(version, withSeed(`${write.what} was acknowledged with version ${write.versionId}, which is not stored`)).toBeDefined();
    expect(version!.branch_id, withSeed(`${write.what}: branch of ${write.versionId}`)).toBe(write.branchId);
    expect(version!.description, withSeed(`${write.what}: description of ${write.versionId}`)).toBe(write.description);
    write.position = version!.seq_no_in_branch;
  }
  // Nothing else was written: refused requests changed nothing.
  const acknowledged = new Set(run.versionWrites.map((write) => write.versionId));
  const unexplained = history.versions.filter(
    (version) => !acknowledged.has(version.id) && version.description !== AUTO_REBASE_DESCRIPTION && version.description !== 'Initial version',
  );
  expect(unexplained.map((version) => `${version.id}: ${version.description}`), withSeed('versions that no acknowledged write made')).toEqual([]);
  expect(orderViolations(run.versionWrites), withSeed('versions on a branch follow the order of acknowledgements')).toEqual([]);
}

function expectEveryAcknowledgedDeployment(run: ConcurrentRun, history: AgentHistory): void {
  const manual = history.deployments.filter((deployment) => deployment.source === 'manual' && deployment.seq_no > 1);
  const storedSplits = manual.map((deployment) => splitKey(JSON.parse(deployment.split) as Record<string, number>));
  expect(storedSplits.sort(), withSeed('the manual deployments are exactly the acknowledged ones')).toEqual(
    run.deploymentWrites.map((write) => splitKey(write.split)).sort(),
  );
  const movedTraffic = run.mergeWrites.filter((merge) => merge.movedPercentage > 0).length;
  expect(
    history.deployments.filter((deployment) => deployment.source === 'branch_merge').length,
    withSeed('one branch_merge deployment per acknowledged merge that moved traffic'),
  ).toBe(movedTraffic);

  // Tagged splits are unique: a deployment acknowledged before another was sent comes first.
  const positions = new Map(manual.map((deployment) => [splitKey(JSON.parse(deployment.split) as Record<string, number>), deployment.seq_no]));
  const tagged = run.deploymentWrites.filter((write) => Object.keys(write.split).length > 1);
  const ordered = tagged.map((write) => ({ ...write, group: 'agent', position: positions.get(splitKey(write.split)) ?? Number.NaN }));
  expect(orderViolations(ordered), withSeed('deployments follow the order of acknowledgements')).toEqual([]);
}

function expectEveryAcknowledgedBranch(run: ConcurrentRun, history: AgentHistory): void {
  expect(history.branches.map((branch) => branch.id).sort(), withSeed('the branches are main and the acknowledged creations')).toEqual(
    [run.mainBranchId, ...run.createdBranchIds].sort(),
  );
  const archivedByMerges = run.mergeWrites.filter((merge) => merge.sourceArchived).map((merge) => merge.sourceId);
  expect(
    history.branches.filter((branch) => branch.is_archived === 1).map((branch) => branch.id).sort(),
    withSeed('the archived branches are the sources of acknowledged archiving merges'),
  ).toEqual([...new Set(archivedByMerges)].sort());
}

async function expectDraftsOnStoredVersions(history: AgentHistory): Promise<void> {
  const drafts = await testApp.store.db.selectFrom('drafts').selectAll().where('agent_id', '=', history.agentId).execute();
  const branches = new Map(history.branches.map((branch) => [branch.id, branch]));
  for (const draft of drafts) {
    const branch = branches.get(draft.branch_id);
    expect(branch, withSeed(`draft of ${draft.user_id} is on a stored branch`)).toBeDefined();
    expect(draft.based_on_seq_no, withSeed(`draft on ${draft.branch_id} is based on a stored version`)).toBeLessThanOrEqual(branch!.head_seq_no);
    const blob = await testApp.store.db.selectFrom('blobs').select('hash').where('hash', '=', draft.document_hash).executeTakeFirst();
    expect(blob, withSeed(`draft on ${draft.branch_id}: its document is stored`)).toBeDefined();
  }
}

/** Reads every version and every branch head back over HTTP: documents are whole, heads agree. */
async function expectEveryVersionReadable(history: AgentHistory, key: string): Promise<void> {
  const reads = [
    ...history.versions.map((version) => ({ query: `version_id=${version.id}`, versionId: version.id })),
    ...history.branches.map((branch) => ({ query: `branch_id=${branch.id}`, versionId: branch.head_version_id })),
  ];
  const failures: string[] = [];
  for (let i = 0; i < reads.length; i += 16) {
    await Promise.all(
      reads.slice(i, i + 16).map(async ({ query, versionId }) => {
        const read = await callApi(baseUrl, key, 'GET', `/v1/convai/agents/${history.agentId}?${query}`);
        if (read.status !== 200 || read.body.version_id !== versionId) {
          failures.push(`GET ?${query}: ${read.status} version ${read.body.version_id}, expected ${versionId}`);
        }
      }),
    );
  }
  expect(failures, withSeed('every stored version and head reads back')).toEqual([]);
}

/** Each settings answer showed its own write or a later one (in the database's order); reads show the last. */
async function expectSettingsAsAcknowledged(run: ConcurrentRun, key: string): Promise<void> {
  const order = await settingWriteOrder(testApp.store.db, run.agentId, 'call_limits.daily_limit', 100_000);
  expect(order.size, withSeed('one settings event per acknowledged settings commit')).toBe(run.settingsWrites.length);
  const position = (value: number | undefined) => order.get(JSON.stringify(value)) ?? Number.NaN;
  const wrong = run.settingsWrites.filter((write) => !(position(write.shown) >= position(write.wrote)));
  expect(wrong, withSeed('settings answers show their own write or a later one')).toEqual([]);
  const row = await testApp.store.db.selectFrom('agents').select('agent_settings').where('id', '=', run.agentId).executeTakeFirstOrThrow();
  const stored = (JSON.parse(row.agent_settings) as { call_limits?: { daily_limit?: number } }).call_limits?.daily_limit;
  if (run.settingsWrites.length > 0) expect(position(stored), withSeed('the database holds the last settings write')).toBe(order.size);
  for (const branch of run.known.values()) {
    const read = await callApi(baseUrl, key, 'GET', `/v1/convai/agents/${run.agentId}?branch_id=${branch.id}`);
    expect(read.body.platform_settings?.call_limits?.daily_limit, withSeed(`GET at ${branch.id} shows the stored daily limit`)).toBe(stored);
  }
}

describe(`${CLIENTS} concurrent clients on one agent (${dialect})`, () => {
  it(
    `keep every acknowledged write of a seeded random mix of ${OPERATIONS} operations, in a consistent history`,
    async () => {
      console.info(`concurrency: seed ${seed} (${dialect}); replay with FUZZ_SEED=${seed}`);
      const { admin, editor } = testApp.keys;
      const created = await callApi(baseUrl, admin, 'POST', '/v1/convai/agents/create', { conversation_config: {}, name: `Contended ${seed}` });
      expect(created.status, withSeed('create the agent')).toBe(200);
      const agentId = created.body.agent_id as string;
      const main = await callApi(baseUrl, admin, 'GET', `/v1/convai/agents/${agentId}`);
      const run = new ConcurrentRun(agentId, main.body.branch_id, main.body.version_id, [admin, editor]);

      const started = performance.now();
      await run.runClients();
      const tally = Object.fromEntries([...run.tally].sort(([a], [b]) => (a < b ? -1 : 1)));
      console.info(`concurrency: ${OPERATIONS} operations in ${Math.round(performance.now() - started)} ms (${dialect}, seed ${seed})`, tally);

      expect(run.failures, withSeed('no 5xx, no network error, no unexpected refusal, no wrong answer')).toEqual([]);
      // The mix must really have exercised every kind of write, or the checks below prove little.
      for (const operation of ['commit', 'commitSettings', 'createBranch', 'merge', 'rebase', 'saveDraft', 'deploy'] as const) {
        expect(run.tally.get(`${operation} 2xx`) ?? 0, withSeed(`acknowledged ${operation}s`)).toBeGreaterThan(0);
      }
      expect(run.versionWrites.length + run.deploymentWrites.length, withSeed('acknowledged writes')).toBeGreaterThan(OPERATIONS / 3);

      const history = await readAgentHistory(testApp.store.db, agentId);
      expectConsistentHistory(history, withSeed(`agent ${agentId}`));
      expectEveryAcknowledgedVersion(run, history);
      expectEveryAcknowledgedDeployment(run, history);
      expectEveryAcknowledgedBranch(run, history);
      await expectDraftsOnStoredVersions(history);
      await expectEveryVersionReadable(history, editor);
      await expectSettingsAsAcknowledged(run, editor);
    },
    soak ? 600_000 : 60_000,
  );

  it('settings-only commits racing on one branch: every answer shows its own write or a later one, and every later read shows what the database holds', async () => {
    const WRITERS = 8;
    const ROUNDS = soak ? 100 : 15;
    // A clock that moves once a second: what a fast server sees at millisecond resolution, where
    // several commits share a tick. Nothing may depend on the clock telling writes apart.
    const coarse = await startTestApp({ now: () => Math.floor(Date.now() / 1_000) * 1_000 });
    try {
      await settingsRace(coarse, await listen(coarse), WRITERS, ROUNDS);
    } finally {
      await coarse.close();
    }
  });

  async function settingsRace(testApp: TestApp, baseUrl: string, WRITERS: number, ROUNDS: number): Promise<void> {
    const { admin, editor } = testApp.keys;
    const created = await callApi(baseUrl, admin, 'POST', '/v1/convai/agents/create', { conversation_config: {}, name: 'Limited' });
    const agentId = created.body.agent_id as string;
    const main = await callApi(baseUrl, admin, 'GET', `/v1/convai/agents/${agentId}`);
    const branch = await callApi(baseUrl, admin, 'POST', `/v1/convai/agents/${agentId}/branches`, { parent_version_id: main.body.version_id, name: 'Limits', description: '' });
    const branchId = branch.body.created_branch_id as string;
    const initial = main.body.platform_settings.call_limits.daily_limit as number;
    const stored = async () => {
      const row = await testApp.store.db.selectFrom('agents').select('agent_settings').where('id', '=', agentId).executeTakeFirstOrThrow();
      return (JSON.parse(row.agent_settings) as { call_limits: { daily_limit: number } }).call_limits.daily_limit;
    };
    const shownBy = (result: ApiResult) => result.body.platform_settings?.call_limits?.daily_limit as number | undefined;

    const answers: { wrote: number; shown: number | undefined; status: number }[] = [];
    const staleReads: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const values = Array.from({ length: WRITERS }, (_, i) => round * WRITERS + i + 1);
      const results = await Promise.all(
        values.map((value, i) =>
          callApi(baseUrl, i % 2 === 0 ? admin : editor, 'PATCH', `/v1/convai/agents/${agentId}?branch_id=${branchId}`, {
            platform_settings: { call_limits: { daily_limit: value } },
          }),
        ),
      );
      results.forEach((result, i) => answers.push({ wrote: values[i], shown: shownBy(result), status: result.status }));
      const inDatabase = await stored();
      // Every reader, every selector, twice (the second read may come from a cache).
      // The routed read too: the active deployment sends every conversation to main.
      const reads = [[admin, ''], [editor, ''], [admin, `?branch_id=${branchId}`], [editor, `?branch_id=${branchId}`], [admin, `?conversation_id=c${round}`], [admin, '']] as const;
      for (const [key, query] of reads) {
        const read = await callApi(baseUrl, key, 'GET', `/v1/convai/agents/${agentId}${query}`);
        if (shownBy(read) !== inDatabase) staleReads.push(`round ${round}: GET${query} showed ${shownBy(read)}, the database holds ${inDatabase}`);
      }
    }
    expect(answers.filter((answer) => answer.status !== 200), 'every settings commit is answered 200').toEqual([]);
    expect(staleReads, 'reads after the writes show what the database holds').toEqual([]);

    // The database's order of the writes, from their audit events (each records before and after).
    const order = await settingWriteOrder(testApp.store.db, agentId, 'call_limits.daily_limit', initial);
    expect(order.size, 'one audit event per acknowledged write').toBe(WRITERS * ROUNDS);
    const position = (value: number | undefined) => order.get(JSON.stringify(value)) ?? Number.NaN;
    const wrong = answers.filter((answer) => !(position(answer.shown) >= position(answer.wrote)));
    expect(
      wrong.map((answer) => `wrote ${answer.wrote} (#${position(answer.wrote)}), answered ${answer.shown} (#${position(answer.shown)})`),
      'each answer shows its own write or a later one',
    ).toEqual([]);
    expect(position(await stored()), 'the database holds the last write').toBe(order.size);
    const versions = await testApp.store.db.selectFrom('versions').select('id').where('agent_id', '=', agentId).execute();
    expect(versions, 'settings-only commits make no version').toHaveLength(2);
  }

  it(`keep one draft per user and branch when ${CLIENTS} clients save, then discard, drafts on one branch at once`, async () => {
    const { admin, editor } = testApp.keys;
    const created = await callApi(baseUrl, admin, 'POST', '/v1/convai/agents/create', { conversation_config: {}, name: 'Drafted' });
    const agentId = created.body.agent_id as string;
    const mainBranchId = (await callApi(baseUrl, admin, 'GET', `/v1/convai/agents/${agentId}`)).body.branch_id as string;
    const draftsPath = `/v1/convai/agents/${agentId}/drafts?branch_id=${mainBranchId}`;
    const keyOf = (i: number) => (i % 2 === 0 ? admin : editor);
    const outcomes = (results: ApiResult[]) => results.map((result) => (result.status === 200 ? 200 : `${result.status} ${serverErrors.get(result.body.detail?.request_id) ?? refusalCode(result)}`));

    const saves = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) =>
        callApi(baseUrl, keyOf(i), 'POST', draftsPath, {
          conversation_config: { agent: { first_message: `Draft ${i}` } },
          platform_settings: {},
          workflow: {},
          name: `Draft ${i}`,
        }),
      ),
    );
    expect(outcomes(saves), 'every save is answered 200').toEqual(Array(CLIENTS).fill(200));
    const drafts = () => testApp.store.db.selectFrom('drafts').select('user_id').where('agent_id', '=', agentId).execute();
    expect(await drafts(), 'one draft for each of the two users').toHaveLength(2);

    const discards = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => callApi(baseUrl, keyOf(i), 'DELETE', draftsPath)));
    expect(outcomes(discards), 'every discard is answered 200').toEqual(Array(CLIENTS).fill(200));
    expect(discards.filter((result) => result.body.discarded === true), 'each draft is discarded exactly once').toHaveLength(2);
    expect(await drafts(), 'no draft left').toEqual([]);
  });
});
