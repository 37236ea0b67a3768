import { randomInt } from 'node:crypto';

import type { Kysely, Selectable } from 'kysely';
import { expect } from 'vitest';

import type { BranchTable, Database, DeploymentTable, VersionTable } from '../../src/db/schema.js';

// Shared by the reliability tests (test/reliability/): a replayable random source, a plain HTTP
// client, and the invariants every agent's history must satisfy whatever happened to the server.

// ---------------------------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------------------------

export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, maxExclusive). */
  int(maxExclusive: number): number;
  pick<T>(items: readonly T[]): T;
  chance(probability: number): boolean;
}

/** mulberry32: tiny, fast, and the same seed always gives the same sequence. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (maxExclusive: number) => Math.floor(next() * maxExclusive);
  return {
    next,
    int,
    pick: (items) => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[int(items.length)];
    },
    chance: (probability) => next() < probability,
  };
}

/** `FUZZ_SEED` when given (to replay a failure), else a fresh one. Tests print it in every assertion. */
export function fuzzSeed(): number {
  const given = process.env.FUZZ_SEED;
  if (given === undefined || given === '') return randomInt(2 ** 32);
  const seed = Number(given);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`FUZZ_SEED must be an integer in [0, 2^32), not ${JSON.stringify(given)}`);
  return seed;
}

/** Whether the long runs were asked for (`SOAK=1`). */
export const soak = process.env.SOAK === '1' || process.env.SOAK === 'true';

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

export interface ApiResult {
  status: number;
  // Read loosely: each test asserts the fields it relies on.
  body: Record<string, any>;
}

/** One request with `fetch`; a network failure rejects (the caller decides what it means). */
export async function callApi(baseUrl: string, apiKey: string, method: string, path: string, body?: unknown): Promise<ApiResult> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { 'xi-api-key': apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: Record<string, any>;
  try {
    parsed = text === '' ? {} : (JSON.parse(text) as Record<string, any>);
  } catch {
    parsed = { unparsable: text.slice(0, 500) };
  }
  return { status: response.status, body: parsed };
}

/** `conflict/no_new_changes_to_merge`, `422` … : how a refusal is counted. */
export function refusalCode(result: ApiResult): string {
  const detail = result.body.detail;
  if (Array.isArray(detail)) return String(result.status);
  return `${result.status} ${detail?.code ?? 'no_code'}`;
}

/** The splits of a deployment as a comparable key: `{branch: percentage}` with branches sorted. */
export function splitKey(split: Record<string, number>): string {
  return JSON.stringify(Object.entries(split).sort(([a], [b]) => (a < b ? -1 : 1)));
}

// ---------------------------------------------------------------------------------------------
// Ordering
// ---------------------------------------------------------------------------------------------

export interface TimedWrite {
  /** Writes are only compared within a group (a branch for versions, the agent for deployments). */
  group: string;
  /** Where the database put the write (a sequence number). */
  position: number;
  startedAt: number;
  acknowledgedAt: number;
  what: string;
}

/**
 * Acknowledged means durable and ordered: a write acknowledged before another one was even sent
 * must come before it in the history. Returns the violations.
 */
export function orderViolations(writes: TimedWrite[]): string[] {
  const violations: string[] = [];
  const byAcknowledgement = [...writes].sort((a, b) => a.acknowledgedAt - b.acknowledgedAt);
  const byStart = [...writes].sort((a, b) => a.startedAt - b.startedAt);
  const latestBefore = new Map<string, TimedWrite>();
  let next = 0;
  for (const write of byStart) {
    while (next < byAcknowledgement.length && byAcknowledgement[next].acknowledgedAt < write.startedAt) {
      const done = byAcknowledgement[next++];
      const latest = latestBefore.get(done.group);
      if (!latest || done.position > latest.position) latestBefore.set(done.group, done);
    }
    const latest = latestBefore.get(write.group);
    if (latest && latest.position >= write.position) {
      violations.push(`${write.what} (#${write.position}) was sent after ${latest.what} (#${latest.position}) was acknowledged, yet comes before it`);
    }
  }
  return violations;
}

// ---------------------------------------------------------------------------------------------
// The invariants of an agent's stored history
// ---------------------------------------------------------------------------------------------

export type VersionRow = Selectable<VersionTable>;
export type BranchRow = Selectable<BranchTable>;
export type DeploymentRow = Selectable<DeploymentTable>;

export interface AgentHistory {
  agentId: string;
  mainBranchId: string;
  versions: VersionRow[];
  branches: BranchRow[];
  deployments: DeploymentRow[];
  /** The blobs that versions refer to (documents' roots and frontiers) and that exist. */
  presentBlobs: Set<string>;
}

export async function readAgentHistory(db: Kysely<Database>, agentId: string): Promise<AgentHistory> {
  const agent = await db.selectFrom('agents').select('main_branch_id').where('id', '=', agentId).executeTakeFirstOrThrow();
  const [versions, branches, deployments] = await Promise.all([
    db.selectFrom('versions').selectAll().where('agent_id', '=', agentId).orderBy('branch_id').orderBy('seq_no_in_branch').execute(),
    db.selectFrom('branches').selectAll().where('agent_id', '=', agentId).execute(),
    db.selectFrom('deployments').selectAll().where('agent_id', '=', agentId).orderBy('seq_no').execute(),
  ]);
  const wanted = [...new Set(versions.flatMap((version) => [version.document_hash, ...(version.frontier_hash ? [version.frontier_hash] : [])]))];
  const presentBlobs = new Set<string>();
  for (let i = 0; i < wanted.length; i += 500) {
    const rows = await db.selectFrom('blobs').select('hash').where('hash', 'in', wanted.slice(i, i + 500)).execute();
    for (const row of rows) presentBlobs.add(row.hash);
  }
  return { agentId, mainBranchId: agent.main_branch_id, versions, branches, deployments, presentBlobs };
}

/**
 * decisions.md D5 and D14, read from the rows: per branch, `seq_no_in_branch` is 1..n and each version's
 * in-branch parent is the one before; the head is the last version; every parent a version names
 * exists; every version's document and frontier are stored; deployments are numbered 1..n and
 * exactly one, the latest, is active, giving 100% to existing, unarchived branches.
 */
export function expectConsistentHistory(history: AgentHistory, label: string): void {
  const { versions, branches, deployments } = history;
  const versionsById = new Map(versions.map((version) => [version.id, version]));
  const branchesById = new Map(branches.map((branch) => [branch.id, branch]));
  expect(branchesById.has(history.mainBranchId), `${label}: main exists`).toBe(true);

  const byBranch = new Map<string, VersionRow[]>();
  for (const version of versions) {
    expect(branchesById.has(version.branch_id), `${label}: version ${version.id} is on a branch that does not exist`).toBe(true);
    byBranch.set(version.branch_id, [...(byBranch.get(version.branch_id) ?? []), version]);
  }
  for (const branch of branches) {
    const chain = (byBranch.get(branch.id) ?? []).sort((a, b) => a.seq_no_in_branch - b.seq_no_in_branch);
    const where = `${label}: branch ${branch.name} (${branch.id})`;
    expect(
      chain.map((version) => version.seq_no_in_branch),
      `${where}: seq_no_in_branch must be 1..n without gaps or duplicates`,
    ).toEqual(chain.map((_, index) => index + 1));
    chain.forEach((version, index) => {
      expect(version.in_branch_parent_id, `${where}: in_branch_parent_id of #${version.seq_no_in_branch}`).toBe(index === 0 ? null : chain[index - 1].id);
    });
    expect(branch.head_version_id, `${where}: the head is the last version`).toBe(chain.at(-1)?.id);
    expect(branch.head_seq_no, `${where}: head_seq_no`).toBe(chain.length);
  }

  for (const version of versions) {
    const where = `${label}: version ${version.id} (#${version.seq_no_in_branch} on ${version.branch_id})`;
    const parentVersions = [version.in_branch_parent_id, version.out_of_branch_parent_id, version.merged_from_version_id, version.rebased_from_version_id];
    for (const parent of parentVersions) {
      if (parent !== null) expect(versionsById.has(parent), `${where}: parent version ${parent} exists`).toBe(true);
    }
    for (const branch of [version.merged_from_branch_id, version.merged_into_branch_id]) {
      if (branch !== null) expect(branchesById.has(branch), `${where}: parent branch ${branch} exists`).toBe(true);
    }
    // The generation is derived from the parents in the same transaction: a half-applied write shows here.
    const generations = [version.in_branch_parent_id, version.out_of_branch_parent_id, version.merged_from_version_id]
      .flatMap((parent) => (parent === null ? [] : [versionsById.get(parent)?.generation ?? Number.NaN]));
    expect(version.generation, `${where}: generation`).toBe(Math.max(0, ...generations) + 1);
    expect(history.presentBlobs.has(version.document_hash), `${where}: its document ${version.document_hash} is stored`).toBe(true);
    if (version.frontier_hash !== null) {
      expect(history.presentBlobs.has(version.frontier_hash), `${where}: its frontier ${version.frontier_hash} is stored`).toBe(true);
    }
  }

  expect(
    deployments.map((deployment) => deployment.seq_no),
    `${label}: deployments are numbered 1..n`,
  ).toEqual(deployments.map((_, index) => index + 1));
  const active = deployments.filter((deployment) => deployment.is_active === 1);
  expect(active.map((deployment) => deployment.id), `${label}: exactly one active deployment, the latest`).toEqual([deployments.at(-1)?.id]);
  const split = JSON.parse(active[0].split) as Record<string, number>;
  const total = Object.values(split).reduce((sum, percentage) => sum + percentage, 0);
  expect(Math.abs(total - 100), `${label}: the active split ${active[0].split} totals 100`).toBeLessThan(1e-9);
  for (const [branchId, percentage] of Object.entries(split)) {
    const branch = branchesById.get(branchId);
    expect(branch, `${label}: the active split names ${branchId}, which must be a branch of the agent`).toBeDefined();
    if (percentage > 0) expect(branch?.is_archived, `${label}: archived branch ${branchId} has ${percentage}% of live traffic`).toBe(0);
  }
}

// ---------------------------------------------------------------------------------------------
// Agent-wide settings: the order the database applied them in
// ---------------------------------------------------------------------------------------------

/**
 * The order in which the database applied changes of one agent-wide setting, from its audit
 * events (`agent.settings_update`, each with the path's before and after): the chain of values
 * from `initial`, as a value → position map (1 = the first write). Needs every written value to
 * be unique. Throws when the events do not form one chain (a lost or unrecorded write).
 */
export async function settingWriteOrder(db: Kysely<Database>, agentId: string, path: string, initial: unknown): Promise<Map<string, number>> {
  const rows = await db.selectFrom('audit_events').select('details').where('agent_id', '=', agentId).where('action', '=', 'agent.settings_update').execute();
  const next = new Map<string, string>();
  for (const row of rows) {
    const details = JSON.parse(row.details) as { changes: { path: string; before: unknown; after: unknown }[] };
    const change = details.changes.find((candidate) => candidate.path === path);
    if (!change) continue;
    const from = JSON.stringify(change.before);
    if (next.has(from)) throw new Error(`two writes changed ${path} from ${from}: the history forks`);
    next.set(from, JSON.stringify(change.after));
  }
  const order = new Map<string, number>();
  for (let value = next.get(JSON.stringify(initial)); value !== undefined; value = next.get(value)) {
    if (order.has(value)) throw new Error(`${path} comes back to ${value}: written values must be unique`);
    order.set(value, order.size + 1);
  }
  if (order.size !== next.size) throw new Error(`${next.size - order.size} change(s) of ${path} are not on the chain from ${JSON.stringify(initial)}`);
  return order;
}
