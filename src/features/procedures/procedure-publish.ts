import type { Kysely } from 'kysely';

import type { AppContext } from '../../context.js';
import type { Database } from '../../db/schema.js';
import type { Caller } from '../../domain/caller.js';
import { deepEqual } from '../../domain/canonical-json.js';
import { newId } from '../../domain/ids.js';
import { InvalidRequestError } from '../../errors.js';
import { type AgentDocument, type ProcedureMap, proceduresOf, withProcedures } from '../agents/agent-document.js';
import type { AgentRow } from '../agents/agents.store.js';
import type { PreparedChange } from '../agents/prepared-change.js';
import type { BranchRow } from '../branches/branches.store.js';
import { assertValidProcedures, publishedSet, type SetMember, workingSet } from './procedure-sets.js';
import { type ProcedureDraftRow, type ProcedureVersionRow, proceduresStore } from './procedures.store.js';

/** `UpdateAgentRequest.procedures`: procedure id → `{procedure_id, version_id}`. */
export type ExplicitProcedures = Record<string, { procedure_id: string; version_id: string }>;

/**
 * Publishing procedures with a commit (`PATCH agent`), under the branch lock: the tip's map with
 * the caller's drafts and removals over it (their drafts then cleared), or the explicit map of
 * the request (the caller's drafts stay). Every procedure of the resulting set is validated
 * against the committed config (400 `procedure_validation_failed`, nothing written); each changed
 * draft becomes a new procedure version. Returns the change with the new map in its document.
 */
export async function withPublishedProcedures(
  context: AppContext,
  trx: Kysely<Database>,
  caller: Caller,
  agent: AgentRow,
  branch: BranchRow,
  current: AgentDocument,
  change: PreparedChange,
  explicit: ExplicitProcedures | null | undefined,
): Promise<PreparedChange> {
  const tipMap = proceduresOf(current);
  const published = await publishedSet(context, trx, agent.id, tipMap);
  const { map, set } = explicit != null ? await explicitSet(context, trx, agent, explicit) : await publishDrafts(context, trx, caller, agent, branch, published);
  if (set.size > 0) assertValidProcedures(set, change.document.conversation_config);
  if (deepEqual(map, tipMap)) return change;
  const document = withProcedures(change.document, map);
  return { ...change, document, prepared: await context.documents.prepare(document), same: false };
}

/** The tip's set with the caller's drafts over it (then cleared); a new version for each draft that changes its procedure. */
async function publishDrafts(context: AppContext, trx: Kysely<Database>, caller: Caller, agent: AgentRow, branch: BranchRow, published: Map<string, SetMember>) {
  const drafts = await proceduresStore(trx).draftsOfUser(branch.id, caller.userId);
  const drafted = await versionDrafts(context, trx, caller, agent.id, published, drafts);
  if (drafts.length > 0) await proceduresStore(trx).discardDraftsOfUser(branch.id, caller.userId);
  return drafted;
}

/**
 * `published` with `drafts` over it as a map of versions: each draft that changes its procedure
 * becomes a new procedure version (written here), an unchanged one keeps its version.
 */
export async function versionDrafts(
  context: AppContext,
  trx: Kysely<Database>,
  caller: Caller,
  agentId: string,
  published: ReadonlyMap<string, SetMember>,
  drafts: ProcedureDraftRow[],
): Promise<{ map: ProcedureMap; set: Map<string, SetMember> }> {
  const set = await workingSet(context, trx, published, drafts);
  const now = context.now();
  const minted: ProcedureVersionRow[] = [];
  const map: ProcedureMap = {};
  for (const [procedureId, member] of set) {
    const before = published.get(procedureId);
    if (member.drafted && before?.bodyHash !== member.bodyHash) {
      const row = { id: newId('agtprcv_', now), procedure_id: procedureId, agent_id: agentId, body_hash: member.bodyHash, author_user_id: caller.userId, created_at_ms: now };
      minted.push(row);
      map[procedureId] = row.id;
    } else map[procedureId] = (before ?? member).versionId as string;
  }
  await proceduresStore(trx).insertVersions(minted);
  return { map, set };
}

/** The request's own map: every entry a version of that procedure of this agent (else 400). */
async function explicitSet(context: AppContext, trx: Kysely<Database>, agent: AgentRow, explicit: ExplicitProcedures) {
  const entries = Object.entries(explicit);
  const rows = new Map((await proceduresStore(trx).findVersions(agent.id, entries.map(([, ref]) => ref.version_id))).map((row) => [row.id, row]));
  const map: ProcedureMap = {};
  for (const [procedureId, ref] of entries) {
    const row = rows.get(ref.version_id);
    if (ref.procedure_id !== procedureId || !row || row.procedure_id !== procedureId) {
      throw new InvalidRequestError(
        `procedures.${procedureId}: ${JSON.stringify(ref.version_id)} is not a version of procedure ${JSON.stringify(procedureId)} of this agent.`,
        'invalid_procedure_reference',
      );
    }
    map[procedureId] = row.id;
  }
  return { map, set: await publishedSet(context, trx, agent.id, map) };
}
