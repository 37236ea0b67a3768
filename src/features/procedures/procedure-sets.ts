import type { Kysely } from 'kysely';

import type { Database } from '../../db/schema.js';
import type { WriteScope } from '../../db/write.js';
import type { JsonObject } from '../../domain/canonical-json.js';
import { type ProcedureBody, type ProcedureError, toolsOfConfig, validateProcedures } from '../../domain/procedures.js';
import { procedureRefWire, procedureValidationFailed } from '../../wire/procedures.js';
import { type ProcedureMap, proceduresOf } from '../agents/agent-document.js';
import type { BranchRow } from '../branches/branches.store.js';
import { type DocumentStore, loadDocument } from '../versions/documents.store.js';
import { versionsStore } from '../versions/versions.store.js';
import { type ProcedureDraftRow, proceduresStore } from './procedures.store.js';

/** `ProcedureRefResponseModel` as rendered. */
type ProcedureRef = ReturnType<typeof procedureRefWire>;

// Procedure sets: a version's map made into bodies, and the caller's working set (the map of a
// branch's tip with the caller's drafts over it). Shared by the routes, publish, agent-draft
// save, merges and `GET agent`.

type Documents = { documents: DocumentStore };

/** One procedure of a set: its published version (null while only drafted) and its body. */
export interface SetMember {
  versionId: string | null;
  bodyHash: string;
  body: ProcedureBody;
  /** The caller has a draft of it (an edit, not a removal). */
  drafted: boolean;
}

export async function loadBody(context: Documents, db: Kysely<Database>, bodyHash: string): Promise<ProcedureBody> {
  return (await context.documents.load(db, bodyHash)) as ProcedureBody;
}

/** Stores a body's nodes in the write's transaction; returns its hash. */
export async function storeBody(context: Documents, scope: WriteScope, body: ProcedureBody): Promise<string> {
  const prepared = await context.documents.prepare(body);
  await context.documents.write(scope.trx, prepared);
  scope.afterCommit(() => context.documents.markStored(prepared));
  return prepared.rootHash;
}

/** The published procedures of a version's map, by procedure id, in map order. */
export async function publishedSet(context: Documents, db: Kysely<Database>, agentId: string, map: ProcedureMap): Promise<Map<string, SetMember>> {
  const entries = Object.entries(map);
  const set = new Map<string, SetMember>();
  if (entries.length === 0) return set;
  const rows = new Map((await proceduresStore(db).findVersions(agentId, entries.map(([, versionId]) => versionId))).map((row) => [row.id, row]));
  for (const [procedureId, versionId] of entries) {
    const row = rows.get(versionId);
    // A map only ever points at this agent's versions (publish, merges and duplicate check it).
    if (!row) throw new Error(`procedure version ${versionId} of ${procedureId} is missing`);
    set.set(procedureId, { versionId, bodyHash: row.body_hash, body: await loadBody(context, db, row.body_hash), drafted: false });
  }
  return set;
}

/** The caller's working set: `published` with their drafts over it (edits replace, removals remove). */
export async function workingSet(
  context: Documents,
  db: Kysely<Database>,
  published: ReadonlyMap<string, SetMember>,
  drafts: ProcedureDraftRow[],
): Promise<Map<string, SetMember>> {
  const set = new Map(published);
  for (const draft of drafts) {
    if (draft.body_hash === null) set.delete(draft.procedure_id);
    else set.set(draft.procedure_id, { versionId: null, bodyHash: draft.body_hash, body: await loadBody(context, db, draft.body_hash), drafted: true });
  }
  return set;
}

/** The tip's set of a branch, the caller's drafts on it, and their working set. */
export async function callersWorkingSet(context: Documents, db: Kysely<Database>, agentId: string, branch: Pick<BranchRow, 'id' | 'head_version_id'>, userId: string) {
  const tip = await versionsStore(db).findOrThrow(agentId, branch.head_version_id);
  const published = await publishedSet(context, db, agentId, proceduresOf(await loadDocument(context, db, tip)));
  const drafts = await proceduresStore(db).draftsOfUser(branch.id, userId);
  return { published, drafts, working: await workingSet(context, db, published, drafts) };
}

/** Every error of the set (`validateProcedures`), against the tools of the config it goes with. */
export function procedureErrors(set: ReadonlyMap<string, SetMember>, conversationConfig: JsonObject): Record<string, ProcedureError[]> {
  const bodies = new Map([...set].map(([id, member]) => [id, member.body]));
  return validateProcedures(bodies, { tools: toolsOfConfig(conversationConfig) });
}

/** 400 `procedure_validation_failed` (upstream's body: every error of every procedure) unless the set is valid. */
export function assertValidProcedures(set: ReadonlyMap<string, SetMember>, conversationConfig: JsonObject): void {
  const errors = procedureErrors(set, conversationConfig);
  if (Object.keys(errors).length > 0) {
    throw procedureValidationFailed(errors);
  }
}

/** A version's procedures as `GET agent` and merge previews show them (`ProcedureRefResponseModel` by id). */
export async function procedureRefs(context: Documents, db: Kysely<Database>, agentId: string, map: ProcedureMap): Promise<Record<string, ProcedureRef>> {
  const refs: Record<string, ProcedureRef> = {};
  for (const [procedureId, member] of await publishedSet(context, db, agentId, map)) refs[procedureId] = procedureRefWire(procedureId, member.versionId, member.body);
  return refs;
}

/**
 * Conflict values of the `procedures` section (version ids) as `ProcedureRefResponseModel`s, the
 * way merge previews show them; other conflicts as they are.
 */
export async function renderProcedureConflicts<C extends { section: string; path: string; base_value: unknown; source_value: unknown; target_value: unknown }>(
  context: Documents,
  db: Kysely<Database>,
  agentId: string,
  conflicts: C[],
): Promise<C[]> {
  const ofProcedures = conflicts.filter((conflict) => conflict.section === 'procedures');
  if (ofProcedures.length === 0) return conflicts;
  const versionIds = [...new Set(ofProcedures.flatMap((conflict) => [conflict.base_value, conflict.source_value, conflict.target_value]).filter((value): value is string => typeof value === 'string'))];
  const rows = new Map((await proceduresStore(db).findVersions(agentId, versionIds)).map((row) => [row.id, row]));
  const render = async (procedureId: string, value: unknown) => {
    const row = typeof value === 'string' ? rows.get(value) : undefined;
    return row ? procedureRefWire(procedureId, row.id, await loadBody(context, db, row.body_hash)) : null;
  };
  return Promise.all(
    conflicts.map(async (conflict) =>
      conflict.section === 'procedures'
        ? {
            ...conflict,
            base_value: await render(conflict.path, conflict.base_value),
            source_value: await render(conflict.path, conflict.source_value),
            target_value: await render(conflict.path, conflict.target_value),
          }
        : conflict,
    ),
  );
}

/** The ids of a merged map that are not versions of their procedure of this agent (a hand-written resolution). */
export async function strayProcedureVersions(db: Kysely<Database>, agentId: string, map: ProcedureMap): Promise<string[]> {
  const rows = new Map((await proceduresStore(db).findVersions(agentId, Object.values(map))).map((row) => [row.id, row]));
  return Object.entries(map)
    .filter(([procedureId, versionId]) => rows.get(versionId)?.procedure_id !== procedureId)
    .map(([procedureId]) => procedureId);
}
