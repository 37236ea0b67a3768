import { Agent, type IncomingMessage, request as httpRequest } from 'node:http';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openStore } from '../../src/db/connect.js';
import {
  type AgentHistory,
  callApi,
  expectConsistentHistory,
  fuzzSeed,
  orderViolations,
  type Random,
  readAgentHistory,
  seededRandom,
  soak,
  type TimedWrite,
} from '../support/reliability.js';
import { type ServerProcess, startServerProcess, waitFor } from '../support/server-process.js';
import { createTestDatabase, dialect, type TestDatabase } from '../support/test-app.js';
import { patient } from '../support/patience.js';

// The README's guarantees: "a killed server loses nothing it acknowledged" (decisions.md D19), and SIGTERM
// drains in-flight requests. The server runs as `npm start` does, on a store of the current dialect.

const seed = fuzzSeed();
const withSeed = (message: string) => `${message} [seed ${seed}: replay with FUZZ_SEED=${seed}]`;
const ADMIN_KEY = 'sk_reliability_crash_test_admin_key';
const CLIENTS = 10;
const KILL_ROUNDS = soak ? 12 : 2;

function serverEnv(database: TestDatabase): NodeJS.ProcessEnv {
  return {
    DATA_DIR: database.options.dataDir,
    DATABASE_URL: database.options.databaseUrl ?? '',
    BRANCHWISE_BOOTSTRAP_API_KEY: ADMIN_KEY,
  };
}

/** The agent under load: main and a canary that shares its traffic. */
interface Subject {
  agentId: string;
  mainBranchId: string;
  canaryBranchId: string;
}

async function createSubject(url: string): Promise<Subject> {
  const created = await callApi(url, ADMIN_KEY, 'POST', '/v1/convai/agents/create', { conversation_config: {}, name: 'Crash subject' });
  expect(created.status).toBe(200);
  const agentId = created.body.agent_id as string;
  const main = await callApi(url, ADMIN_KEY, 'GET', `/v1/convai/agents/${agentId}`);
  const canary = await callApi(url, ADMIN_KEY, 'POST', `/v1/convai/agents/${agentId}/branches`, {
    parent_version_id: main.body.version_id,
    name: 'canary',
    description: 'takes part of the traffic',
  });
  expect(canary.status).toBe(200);
  return { agentId, mainBranchId: main.body.branch_id, canaryBranchId: canary.body.created_branch_id };
}

// ---------------------------------------------------------------------------------------------
// SIGKILL: the load, and what it was told
// ---------------------------------------------------------------------------------------------

type Outcome = 'acknowledged' | 'refused' | 'unknown';

interface CommitAttempt {
  kind: 'commit';
  branchId: string;
  description: string;
  /** The placeholder the commit adds: its content, checked at its version. */
  placeholder: string;
  startedAt: number;
  settledAt: number;
  outcome: Outcome;
  versionId?: string;
}

interface DeployAttempt {
  kind: 'deploy';
  /** The canary's share: unique per attempt, so each deployment can be found again. */
  canaryShare: number;
  startedAt: number;
  settledAt: number;
  outcome: Outcome;
}

/** Every write sent to the server across all rounds, and how each one ended. */
class Ledger {
  readonly commits: CommitAttempt[] = [];
  readonly deployments: DeployAttempt[] = [];
  /** Anything wrong seen while the server was meant to be healthy. */
  readonly failures: string[] = [];
  private writes = 0;

  nextWrite(): number {
    return ++this.writes;
  }

  acknowledgedSince(startedAt: number): number {
    return [...this.commits, ...this.deployments].filter((attempt) => attempt.outcome === 'acknowledged' && attempt.startedAt >= startedAt).length;
  }
}

/** CLIENTS loops of commits and deployments against one server process, until it is killed. */
class Load {
  private killedAt: number | undefined;

  constructor(
    private readonly url: string,
    private readonly subject: Subject,
    private readonly ledger: Ledger,
    private readonly rng: Random,
  ) {}

  /** Resolves once every client has stopped: after `kill`, each stops at its first failed request. */
  run(): Promise<void> {
    const client = async () => {
      while (this.killedAt === undefined) {
        const alive = this.rng.chance(0.7) ? await this.sendCommit() : await this.sendDeployment();
        if (!alive) return;
      }
    };
    return Promise.all(Array.from({ length: CLIENTS }, client)).then(() => undefined);
  }

  /** Marks the moment of the kill: network failures after it are the kill's, before it the server's. */
  markKilled(): void {
    this.killedAt = performance.now();
  }

  private async sendCommit(): Promise<boolean> {
    const n = this.ledger.nextWrite();
    const branchId = this.rng.chance(0.5) ? this.subject.mainBranchId : this.subject.canaryBranchId;
    const attempt: CommitAttempt = {
      kind: 'commit',
      branchId,
      description: `crash load write ${n}`,
      placeholder: `write_${n}`,
      startedAt: performance.now(),
      settledAt: Number.NaN,
      outcome: 'unknown',
    };
    this.ledger.commits.push(attempt);
    try {
      const result = await callApi(this.url, ADMIN_KEY, 'PATCH', `/v1/convai/agents/${this.subject.agentId}?branch_id=${branchId}`, {
        conversation_config: { agent: { dynamic_variables: { dynamic_variable_placeholders: { [attempt.placeholder]: `value ${n}` } } } },
        version_description: attempt.description,
      });
      if (result.status === 200) attempt.versionId = result.body.version_id;
      this.answered(attempt, attempt.description, result.status);
      return true;
    } catch (error) {
      this.cutOff(attempt, attempt.description, error);
      return false;
    }
  }

  private async sendDeployment(): Promise<boolean> {
    const n = this.ledger.nextWrite();
    if (n >= 10_000) throw new Error('the canary share encodes the write number, which must stay below 10,000');
    const attempt: DeployAttempt = { kind: 'deploy', canaryShare: n / 100, startedAt: performance.now(), settledAt: Number.NaN, outcome: 'unknown' };
    this.ledger.deployments.push(attempt);
    const item = (branchId: string, percentage: number) => ({ branch_id: branchId, deployment_strategy: { type: 'percentage', traffic_percentage: percentage } });
    try {
      const result = await callApi(this.url, ADMIN_KEY, 'POST', `/v1/convai/agents/${this.subject.agentId}/deployments`, {
        deployment_request: { requests: [item(this.subject.mainBranchId, 100 - attempt.canaryShare), item(this.subject.canaryBranchId, attempt.canaryShare)] },
      });
      this.answered(attempt, `deployment ${n}`, result.status);
      return true;
    } catch (error) {
      this.cutOff(attempt, `deployment ${n}`, error);
      return false;
    }
  }

  private answered(attempt: CommitAttempt | DeployAttempt, what: string, status: number): void {
    attempt.settledAt = performance.now();
    attempt.outcome = status >= 200 && status < 300 ? 'acknowledged' : 'refused';
    if (attempt.outcome === 'refused') this.ledger.failures.push(`${what} answered ${status}`);
  }

  /** No answer: the write may or may not have landed. */
  private cutOff(attempt: CommitAttempt | DeployAttempt, what: string, error: unknown): void {
    attempt.settledAt = performance.now();
    attempt.outcome = 'unknown';
    if (this.killedAt === undefined || this.killedAt > attempt.settledAt) {
      this.ledger.failures.push(`${what} failed on the network before the kill: ${String(error)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SIGKILL: what must hold after the restart
// ---------------------------------------------------------------------------------------------

async function readHistory(database: TestDatabase, agentId: string): Promise<AgentHistory> {
  const store = await openStore(database.options);
  try {
    return await readAgentHistory(store.db, agentId);
  } finally {
    await store.close();
  }
}

function expectCommitsRecovered(ledger: Ledger, history: AgentHistory, label: string): void {
  const stored = new Map(history.versions.map((version) => [version.id, version]));
  const attempts = new Map(ledger.commits.map((attempt) => [attempt.description, attempt]));
  const ordered: TimedWrite[] = [];
  for (const attempt of ledger.commits.filter((commit) => commit.outcome === 'acknowledged')) {
    const version = stored.get(attempt.versionId!);
    expect(version, withSeed(`${label}: ${attempt.description} was acknowledged as ${attempt.versionId}, which is lost`)).toBeDefined();
    expect(version!.description, withSeed(`${label}: description of ${attempt.versionId}`)).toBe(attempt.description);
    expect(version!.branch_id, withSeed(`${label}: branch of ${attempt.versionId}`)).toBe(attempt.branchId);
    ordered.push({ group: attempt.branchId, position: version!.seq_no_in_branch, startedAt: attempt.startedAt, acknowledgedAt: attempt.settledAt, what: attempt.description });
  }
  // Beyond the acknowledged ones, only writes whose answer the kill swallowed may have landed.
  for (const version of history.versions) {
    if (version.description === 'Initial version' || version.description === '') continue;
    const attempt = attempts.get(version.description);
    expect(attempt?.outcome, withSeed(`${label}: version ${version.id} "${version.description}" comes from no write that could have landed`)).toMatch(
      /^(acknowledged|unknown)$/,
    );
    if (attempt?.outcome === 'acknowledged') expect(attempt.versionId, withSeed(`${label}: "${version.description}" stored twice?`)).toBe(version.id);
  }
  expect(orderViolations(ordered), withSeed(`${label}: commits follow the order of acknowledgements`)).toEqual([]);
}

function expectDeploymentsRecovered(ledger: Ledger, history: AgentHistory, subject: Subject, label: string): void {
  const attempts = new Map(ledger.deployments.map((attempt) => [attempt.canaryShare, attempt]));
  const found = new Map<DeployAttempt, number>();
  // The first deployment is the agent's own (all traffic on main).
  for (const deployment of history.deployments.slice(1)) {
    const split = JSON.parse(deployment.split) as Record<string, number>;
    const attempt = attempts.get(split[subject.canaryBranchId]);
    expect(attempt?.outcome, withSeed(`${label}: deployment #${deployment.seq_no} ${deployment.split} comes from no write that could have landed`)).toMatch(
      /^(acknowledged|unknown)$/,
    );
    expect(split[subject.mainBranchId], withSeed(`${label}: deployment #${deployment.seq_no} is stored whole`)).toBe(100 - attempt!.canaryShare);
    found.set(attempt!, deployment.seq_no);
  }
  const acknowledged = ledger.deployments.filter((attempt) => attempt.outcome === 'acknowledged');
  for (const attempt of acknowledged) {
    expect(found.has(attempt), withSeed(`${label}: the acknowledged deployment with ${attempt.canaryShare}% on the canary is lost`)).toBe(true);
  }
  const active = history.deployments.find((deployment) => deployment.is_active === 1)!;
  const lastAcknowledged = Math.max(0, ...acknowledged.map((attempt) => found.get(attempt)!));
  expect(active.seq_no, withSeed(`${label}: the active deployment is the last acknowledged one or a later one`)).toBeGreaterThanOrEqual(lastAcknowledged);
  if (active.seq_no > lastAcknowledged) {
    const split = JSON.parse(active.split) as Record<string, number>;
    expect(attempts.get(split[subject.canaryBranchId])?.outcome, withSeed(`${label}: an active deployment later than every acknowledged one`)).toBe('unknown');
  }
  const ordered = acknowledged.map((attempt) => ({
    group: 'agent',
    position: found.get(attempt)!,
    startedAt: attempt.startedAt,
    acknowledgedAt: attempt.settledAt,
    what: `deployment of ${attempt.canaryShare}%`,
  }));
  expect(orderViolations(ordered), withSeed(`${label}: deployments follow the order of acknowledgements`)).toEqual([]);
}

/** Through the restarted server: every version reads back whole, every head agrees, routing works. */
async function expectEverythingReadable(url: string, ledger: Ledger, history: AgentHistory, subject: Subject, label: string): Promise<void> {
  const placeholders = new Map(ledger.commits.filter((attempt) => attempt.versionId).map((attempt) => [attempt.versionId!, attempt.placeholder]));
  const failures: string[] = [];
  const reads = [
    ...history.versions.map((version) => ({ query: `version_id=${version.id}`, versionId: version.id })),
    ...history.branches.map((branch) => ({ query: `branch_id=${branch.id}`, versionId: branch.head_version_id })),
  ];
  for (let i = 0; i < reads.length; i += 16) {
    await Promise.all(
      reads.slice(i, i + 16).map(async ({ query, versionId }) => {
        const read = await callApi(url, ADMIN_KEY, 'GET', `/v1/convai/agents/${subject.agentId}?${query}`);
        const placeholder = placeholders.get(versionId);
        const values = read.body.conversation_config?.agent?.dynamic_variables?.dynamic_variable_placeholders ?? {};
        if (read.status !== 200 || read.body.version_id !== versionId) {
          failures.push(`GET ?${query}: ${read.status} version ${read.body.version_id}, expected ${versionId}`);
        } else if (placeholder && !(placeholder in values)) {
          failures.push(`GET ?${query}: the config lacks ${placeholder}, the change that made it`);
        }
      }),
    );
  }
  expect(failures, withSeed(`${label}: every stored version reads back whole`)).toEqual([]);
  const routed = await callApi(url, ADMIN_KEY, 'GET', `/v1/convai/agents/${subject.agentId}?conversation_id=conv_after_${label.replace(/\W/g, '_')}`);
  expect(routed.status, withSeed(`${label}: a routed read`)).toBe(200);
  expect([subject.mainBranchId, subject.canaryBranchId], withSeed(`${label}: the routed branch`)).toContain(routed.body.branch_id);
}

describe(`a server killed with SIGKILL mid-load (${dialect})`, () => {
  let database: TestDatabase;
  let server: ServerProcess | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await server?.stop('SIGKILL');
    await database?.drop();
  });

  it(
    `loses no acknowledged commit or deployment, shows nothing half-applied, and serves again without repair (${KILL_ROUNDS} kills)`,
    async () => {
      console.info(`crash: seed ${seed} (${dialect}); replay with FUZZ_SEED=${seed}`);
      const rng = seededRandom(seed);
      const env = serverEnv(database);
      server = await startServerProcess(env);
      const subject = await createSubject(server.url);
      const ledger = new Ledger();

      for (let round = 1; round <= KILL_ROUNDS; round++) {
        const label = `after kill ${round}`;
        const roundStarted = performance.now();
        // Kill at a different point each round: after 40 to 240 acknowledged writes.
        const killAfter = 40 + rng.int(200);
        const load = new Load(server.url, subject, ledger, rng);
        const running = load.run();
        await waitFor(() => ledger.acknowledgedSince(roundStarted) >= killAfter || ledger.failures.length > 0, `${killAfter} acknowledged writes`, patient(30_000));
        expect(ledger.failures, withSeed(`round ${round}: no refusal or network error before the kill`)).toEqual([]);
        load.markKilled();
        const exitCode = await server.stop('SIGKILL');
        expect(exitCode, withSeed(`round ${round}: killed`)).toBeNull();
        await running;
        expect(ledger.failures, withSeed(`round ${round}: no refusal or network error before the kill`)).toEqual([]);

        server = await startServerProcess(env);
        const history = await readHistory(database, subject.agentId);
        expectConsistentHistory(history, withSeed(label));
        expectCommitsRecovered(ledger, history, label);
        expectDeploymentsRecovered(ledger, history, subject, label);
        await expectEverythingReadable(server.url, ledger, history, subject, label);
      }

      // The restarted server takes writes again, numbering right after what survived.
      const before = await readHistory(database, subject.agentId);
      const storedDescriptions = new Set(before.versions.map((version) => version.description));
      const storedShares = new Set(before.deployments.map((deployment) => (JSON.parse(deployment.split) as Record<string, number>)[subject.canaryBranchId]));
      const cutOff = [...ledger.commits, ...ledger.deployments].filter((attempt) => attempt.outcome === 'unknown');
      const landed = cutOff.filter((attempt) => (attempt.kind === 'commit' ? storedDescriptions.has(attempt.description) : storedShares.has(attempt.canaryShare)));
      console.info(
        `crash: ${ledger.acknowledgedSince(0)} acknowledged writes; ${cutOff.length} cut off by ${KILL_ROUNDS} kills, ` +
          `of which ${landed.length} landed (${dialect}, seed ${seed})`,
      );
      const mainHead = before.branches.find((branch) => branch.id === subject.mainBranchId)!;
      const commit = await callApi(server.url, ADMIN_KEY, 'PATCH', `/v1/convai/agents/${subject.agentId}`, {
        conversation_config: { agent: { first_message: 'Back after the crash' } },
        version_description: 'after the crashes',
      });
      expect(commit.status, withSeed('a commit after the restart')).toBe(200);
      const deploy = await callApi(server.url, ADMIN_KEY, 'POST', `/v1/convai/agents/${subject.agentId}/deployments`, {
        deployment_request: { requests: [{ branch_id: subject.mainBranchId, deployment_strategy: { type: 'percentage', traffic_percentage: 100 } }] },
      });
      expect(deploy.status, withSeed('a deployment after the restart')).toBe(200);
      const after = await readHistory(database, subject.agentId);
      expectConsistentHistory(after, withSeed('after the last restart'));
      const newVersion = after.versions.find((version) => version.id === commit.body.version_id);
      expect(newVersion?.seq_no_in_branch, withSeed('the new commit follows the surviving head')).toBe(mainHead.head_seq_no + 1);
      expect(after.deployments.at(-1)?.split, withSeed('the new deployment is active')).toBe(JSON.stringify({ [subject.mainBranchId]: 100 }));
    },
    soak ? 600_000 : 120_000,
  );
});

// ---------------------------------------------------------------------------------------------
// SIGTERM
// ---------------------------------------------------------------------------------------------

type Reply = { status: number; body: Record<string, any> } | { error: string };

function readReply(response: IncomingMessage): Promise<Reply> {
  return new Promise((resolve) => {
    let text = '';
    response.setEncoding('utf8');
    response.on('data', (chunk) => (text += chunk));
    response.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
    response.on('end', () => {
      try {
        resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Record<string, any> });
      } catch {
        resolve({ status: response.statusCode ?? 0, body: { unparsable: text.slice(0, 200) } });
      }
    });
  });
}

interface Upload {
  /** Sends the rest of the body. */
  finish(): void;
  reply: Promise<Reply>;
}

/**
 * A PATCH whose body goes out in two halves: after the first, the server has the request in hand
 * (routed, reading its body) but cannot finish it until `finish()`.
 */
function startUpload(url: string, path: string, body: unknown, agent: Agent | false): Upload {
  const payload = Buffer.from(JSON.stringify(body));
  let resolveReply!: (reply: Reply) => void;
  const reply = new Promise<Reply>((resolve) => (resolveReply = resolve));
  const request = httpRequest(
    `${url}${path}`,
    { method: 'PATCH', agent, headers: { 'xi-api-key': ADMIN_KEY, 'content-type': 'application/json', 'content-length': payload.length } },
    (response) => void readReply(response).then(resolveReply),
  );
  request.on('error', (error: NodeJS.ErrnoException) => resolveReply({ error: error.code ?? error.message }));
  const half = payload.length >> 1;
  request.write(payload.subarray(0, half));
  return { finish: () => request.end(payload.subarray(half)), reply };
}

/** A whole request on a connection of its own, so that a refusal is the server's and not a stale socket's. */
function requestOnNewConnection(url: string, path: string, body: unknown): Promise<Reply> {
  const upload = startUpload(url, path, body, false);
  upload.finish();
  return upload.reply;
}

const describeReply = (description: string, reply: Reply | undefined) => `${description}: ${JSON.stringify(reply).slice(0, 300)}`;
const isAnswered = (reply: Reply | undefined): reply is { status: number; body: Record<string, any> } => reply !== undefined && 'status' in reply && reply.status === 200;
/** Refused with nothing done: a 503 from the closing server, or no connection at all. */
/**
 * A 503, a refused connection, or a reset one: a connection that reached the kernel's accept queue
 * just as the listener closed is reset by the operating system, unread (the store check below
 * proves nothing of it landed).
 */
const isCleanRefusal = (reply: Reply) => ('status' in reply ? reply.status === 503 : reply.error === 'ECONNREFUSED' || reply.error === 'ECONNRESET');

describe(`a server sent SIGTERM with requests in flight (${dialect})`, () => {
  const IN_FLIGHT = 20;
  /** How long after its last in-flight answer the process may take to exit. */
  const EXIT_DEADLINE_MS = patient(10_000);
  let database: TestDatabase;
  let server: ServerProcess | undefined;
  // Keep-alive connections, as the SDK's fetch and every load balancer use them.
  const keepAlive = new Agent({ keepAlive: true });

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    keepAlive.destroy();
    await server?.stop('SIGKILL');
    await database?.drop();
  });

  it(
    `finishes the ${IN_FLIGHT} large commits it was reading, refuses new requests cleanly, persists exactly what it acknowledged, and exits 0`,
    async () => {
      server = await startServerProcess(serverEnv(database));
      const { url } = server;
      const subject = await createSubject(url);
      const path = `/v1/convai/agents/${subject.agentId}`;
      // About 1.2 MB each (the body limit is 2 MB).
      const longPrompt = 'You are a patient support agent who explains every step. '.repeat(21_000);
      const inFlight = Array.from({ length: IN_FLIGHT }, (_, i) => {
        const description = `in flight ${i}`;
        const body = { conversation_config: { agent: { prompt: { prompt: `${longPrompt} (${description})` } } }, version_description: description };
        return { description, upload: startUpload(url, path, body, keepAlive), reply: undefined as Reply | undefined };
      });
      // Half of every body is on the wire; once a fresh request round-trips, the server has routed them all.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect((await callApi(url, ADMIN_KEY, 'GET', '/healthz')).status).toBe(200);

      const exited = server.stop('SIGTERM');
      let exitCode: number | null | undefined;
      void exited.then((code) => (exitCode = code));
      // Requests sent after the signal, each checked like the in-flight ones.
      const late: { description: string; reply: Reply }[] = [];
      const sendLateRequest = async () => {
        const description = `late ${late.length}`;
        const reply = await requestOnNewConnection(url, path, { conversation_config: { agent: { first_message: description } }, version_description: description });
        late.push({ description, reply });
        return reply;
      };
      // The listener closes: new connections are refused while the uploads are still half done.
      await waitFor(async () => {
        const reply = await sendLateRequest();
        return 'error' in reply && reply.error === 'ECONNREFUSED';
      }, 'the listener to close after SIGTERM', patient(5_000));
      expect(exitCode, 'the process waits for its in-flight requests').toBeUndefined();

      for (const request of inFlight) request.upload.finish();
      let waiting = true;
      const lateRequests = (async () => {
        while (waiting && exitCode === undefined) {
          await sendLateRequest();
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      for (const request of inFlight) request.reply = await request.upload.reply;
      const lastAnswered = performance.now();
      const outcome = await Promise.race([exited, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), EXIT_DEADLINE_MS))]);
      const exitedAfter = Math.round(performance.now() - lastAnswered);
      waiting = false;
      await lateRequests;

      const unanswered = inFlight.filter(({ reply }) => !isAnswered(reply));
      expect(
        unanswered.map(({ description, reply }) => describeReply(description, reply)),
        'every request the server was reading when SIGTERM arrived is answered 200',
      ).toEqual([]);
      const refusedUncleanly = late.filter(({ reply }) => !isAnswered(reply) && !isCleanRefusal(reply));
      expect(
        refusedUncleanly.map(({ description, reply }) => describeReply(description, reply)),
        'requests after SIGTERM are answered, or refused with 503 or a refused or reset connection',
      ).toEqual([]);

      // The store, read directly: exactly the acknowledged commits.
      const history = await readHistory(database, subject.agentId);
      expectConsistentHistory(history, 'after SIGTERM');
      const stored = new Map(history.versions.map((version) => [version.description, version.id]));
      for (const { description, reply } of [...inFlight, ...late]) {
        if (isAnswered(reply)) {
          expect(stored.get(description), `${description} was acknowledged`).toBe(reply.body.version_id);
        } else {
          expect(stored.has(description), `${description} was refused, yet stored`).toBe(false);
        }
      }
      expect(
        outcome,
        `exit code within ${EXIT_DEADLINE_MS} ms of the last in-flight answer (${exitedAfter} ms), ` +
          'with the clients still holding their keep-alive connections',
      ).toBe(0);
      server = undefined;
    },
    patient(60_000),
  );
});
