import type { Kysely } from 'kysely';

import type { AppContext } from '../../context.js';
import type { Database } from '../../db/schema.js';
import type { WriteScope } from '../../db/write.js';
import type { Caller } from '../../domain/caller.js';
import { newId } from '../../domain/ids.js';
import { type ProcedureBody, procedureReferences } from '../../domain/procedures.js';
import { ConflictError, InvalidRequestError, NotFoundError, RequestValidationError } from '../../errors.js';
import { renderSection } from '../../wire/agent-config.js';
import { type AgentDocument, proceduresOf } from '../agents/agent-document.js';
import { type AgentRow, agentsStore } from '../agents/agents.store.js';
import { recordUserAction } from '../audit/audit.events.js';
import { type BranchRow, branchesStore } from '../branches/branches.store.js';
import { draftsStore } from '../drafts/drafts.store.js';
import { loadDocument } from '../versions/documents.store.js';
import { versionsStore } from '../versions/versions.store.js';
import { callersWorkingSet, loadBody, procedureErrors, publishedSet, type SetMember, storeBody } from './procedure-sets.js';
import { type ProcedureRow, proceduresStore } from './procedures.store.js';
import {
  compileValidationFailed,
  type CreateProcedureRequest,
  newProcedureBody,
  procedureAtVersionWire,
  procedureDraftWire,
  procedureListItemWire,
  type UpdateProcedureDraftRequest,
  updatedProcedureBody,
} from '../../wire/procedures.js';

export interface ProcedureReadSelector {
  versionId?: string;
  agentVersionId?: string;
}

/**
 * Procedures (reference/procedures.md): branch-scoped instruction blocks, versioned with the
 * branch (an agent version maps each procedure to an immutable procedure version) and drafted
 * per user; publishing is `PATCH agent` (procedure-publish.ts). Saving a procedure draft never
 * validates its steps: publish, agent-draft save and compile do.
 */
export function proceduresService(context: AppContext) {
  const { db } = context;

  async function agentAndBranch(trx: Kysely<Database>, caller: Caller, agentId: string, branchId: string) {
    const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
    const branch = await branchesStore(trx).findOrThrow(agent.id, branchId);
    return { agent, branch };
  }

  async function procedureOf(trx: Kysely<Database>, agent: AgentRow, procedureId: string): Promise<ProcedureRow> {
    const procedure = await proceduresStore(trx).find(agent.id, procedureId);
    if (!procedure) throw new NotFoundError('procedure', procedureId);
    return procedure;
  }

  async function tipDocument(trx: Kysely<Database>, agent: AgentRow, branch: BranchRow): Promise<AgentDocument> {
    return loadDocument(context, trx, await versionsStore(trx).findOrThrow(agent.id, branch.head_version_id));
  }

  async function tipSet(trx: Kysely<Database>, agent: AgentRow, branch: BranchRow): Promise<Map<string, SetMember>> {
    return publishedSet(context, trx, agent.id, proceduresOf(await tipDocument(trx, agent, branch)));
  }

  async function callersSet(trx: Kysely<Database>, caller: Caller, agent: AgentRow, branch: BranchRow) {
    return callersWorkingSet(context, trx, agent.id, branch, caller.userId);
  }

  /** A draft-only procedure that nobody drafts any more never existed: it goes. */
  async function dropIfAbandoned(trx: Kysely<Database>, procedureId: string): Promise<void> {
    const store = proceduresStore(trx);
    if (!(await store.hasVersions(procedureId)) && !(await store.hasDrafts(procedureId))) await store.deleteUnpublished(procedureId);
  }

  async function saveDraft(scope: WriteScope, caller: Caller, agent: AgentRow, branch: BranchRow, procedureId: string, body: ProcedureBody | null) {
    await proceduresStore(scope.trx).saveDraft({
      branch_id: branch.id,
      user_id: caller.userId,
      procedure_id: procedureId,
      agent_id: agent.id,
      body_hash: body === null ? null : await storeBody(context, scope, body),
      updated_at_ms: context.now(),
    });
  }

  return {
    /** The branch's procedures as the caller sees them (their drafts first), or a published snapshot. */
    async list(caller: Caller, agentId: string, branchId: string, agentVersionId: string | undefined) {
      const { agent, branch } = await agentAndBranch(db, caller, agentId, branchId);
      if (agentVersionId !== undefined) {
        const version = await versionsStore(db).findOrThrow(agent.id, agentVersionId);
        const snapshot = await publishedSet(context, db, agent.id, proceduresOf(await loadDocument(context, db, version)));
        return { procedures: [...snapshot].map(([id, member]) => procedureListItemWire(id, member.versionId, false, member.body)) };
      }
      const { working } = await callersSet(db, caller, agent, branch);
      return {
        procedures: [...working].map(([id, member]) => procedureListItemWire(id, member.drafted ? null : member.versionId, member.drafted, member.body)),
      };
    },

    /** A new procedure, as the caller's draft on the branch until they publish it. */
    async create(caller: Caller, agentId: string, branchId: string, input: CreateProcedureRequest) {
      return context.write(async (scope) => {
        const { trx } = scope;
        const { agent, branch } = await agentAndBranch(trx, caller, agentId, branchId);
        const folder = input.folder_parent_id;
        if (folder !== null) {
          const { working } = await callersSet(trx, caller, agent, branch);
          if (working.get(folder)?.body.type !== 'folder') {
            throw RequestValidationError.at(['body', 'folder_parent_id'], `${JSON.stringify(folder)} is not a folder procedure of this branch.`);
          }
        }
        const now = context.now();
        const procedureId = newId('agtprc_', now);
        await proceduresStore(trx).insert({ id: procedureId, agent_id: agent.id, created_by_user_id: caller.userId, created_at_ms: now });
        const body = newProcedureBody(input);
        await saveDraft(scope, caller, agent, branch, procedureId, body);
        await recordUserAction(trx, caller, now, { action: 'procedure.create', agentId: agent.id, resourceId: procedureId, details: { branch_id: branch.id, type: body.type } });
        return { procedure_id: procedureId };
      });
    },

    /**
     * Legacy dry run (upstream): validates the caller's working set and returns the base workflow
     * (their agent draft's, else the tip's); persists nothing.
     */
    async compile(caller: Caller, agentId: string, branchId: string) {
      const { agent, branch } = await agentAndBranch(db, caller, agentId, branchId);
      const { drafts, working } = await callersSet(db, caller, agent, branch);
      if (drafts.length === 0) throw new InvalidRequestError('There are no procedure drafts on this branch to compile.', 'no_draft_to_compile');
      const agentDraft = await draftsStore(db).findOfUser(branch.id, caller.userId);
      const base = agentDraft ? await loadDocument(context, db, agentDraft) : await tipDocument(db, agent, branch);
      const errors = procedureErrors(working, base.conversation_config);
      // Upstream's compile answers a flat `{"errors": …}`, unlike every other refusal.
      if (Object.keys(errors).length > 0) throw compileValidationFailed(errors);
      return { workflow: renderSection('workflow', base.workflow) };
    },

    /** The branch head's version of a procedure, or a given version, or the one an agent version maps it to. */
    async get(caller: Caller, agentId: string, branchId: string, procedureId: string, selector: ProcedureReadSelector) {
      const { agent, branch } = await agentAndBranch(db, caller, agentId, branchId);
      const procedure = await procedureOf(db, agent, procedureId);
      let versionId: string | undefined;
      if (selector.versionId !== undefined) versionId = selector.versionId;
      else if (selector.agentVersionId !== undefined) {
        const version = await versionsStore(db).findOrThrow(agent.id, selector.agentVersionId);
        versionId = proceduresOf(await loadDocument(context, db, version))[procedure.id];
      } else versionId = proceduresOf(await tipDocument(db, agent, branch))[procedure.id];
      const row = versionId === undefined ? undefined : await proceduresStore(db).findVersion(agent.id, versionId);
      if (!row || row.procedure_id !== procedure.id) {
        if (selector.versionId !== undefined) throw new NotFoundError('procedure version', selector.versionId);
        throw new NotFoundError('procedure', procedureId);
      }
      return procedureAtVersionWire(procedure.id, row.id, await loadBody(context, db, row.body_hash));
    },

    /**
     * Stages the removal of a procedure in the caller's drafts (a folder with everything in it);
     * 409 while a procedure outside what goes references one inside.
     */
    async delete(caller: Caller, agentId: string, branchId: string, procedureId: string) {
      return context.write(async (scope) => {
        const { trx } = scope;
        const { agent, branch } = await agentAndBranch(trx, caller, agentId, branchId);
        const procedure = await procedureOf(trx, agent, procedureId);
        const { published, working } = await callersSet(trx, caller, agent, branch);
        if (!working.has(procedure.id)) throw new NotFoundError('procedure', procedureId);
        const removed = subtreeOf(working, procedure.id);
        for (const [id, member] of working) {
          if (removed.has(id)) continue;
          const inside = procedureReferences(member.body).referenced_procedure_ids.find((referenced) => removed.has(referenced));
          if (inside !== undefined) {
            throw new ConflictError('procedure_referenced', `Procedure ${id} references ${inside}, which this removal would remove; edit it first.`);
          }
        }
        for (const id of removed) {
          if (published.has(id)) await saveDraft(scope, caller, agent, branch, id, null);
          else {
            // Never published on this branch: the caller's draft was all there was of it here.
            await proceduresStore(trx).discardDraft(branch.id, caller.userId, id);
            await dropIfAbandoned(trx, id);
          }
        }
        await recordUserAction(trx, caller, context.now(), {
          action: 'procedure.delete',
          agentId: agent.id,
          resourceId: procedure.id,
          details: { branch_id: branch.id, removed: [...removed] },
        });
        return { procedure_id: procedure.id };
      });
    },

    /** The caller's draft of the procedure, else the branch head's version. */
    async getDraft(caller: Caller, agentId: string, branchId: string, procedureId: string) {
      const { agent, branch } = await agentAndBranch(db, caller, agentId, branchId);
      const procedure = await procedureOf(db, agent, procedureId);
      const body = await currentBody(db, caller, agent, branch, procedure.id);
      if (!body) throw new NotFoundError('procedure', procedureId);
      return procedureDraftWire(procedure.id, body);
    },

    /** Replaces (or makes) the caller's draft of the procedure; its type cannot change. Steps are not validated here. */
    async updateDraft(caller: Caller, agentId: string, branchId: string, procedureId: string, input: UpdateProcedureDraftRequest) {
      return context.write(async (scope) => {
        const { trx } = scope;
        const { agent, branch } = await agentAndBranch(trx, caller, agentId, branchId);
        const procedure = await procedureOf(trx, agent, procedureId);
        const stored = await currentBody(trx, caller, agent, branch, procedure.id);
        if (stored && stored.type !== input.type) {
          throw new InvalidRequestError(`Procedure ${procedure.id} is ${stored.type}; a procedure's type cannot change.`, 'procedure_type_cannot_change');
        }
        const body = stored ? updatedProcedureBody(stored, input) : newProcedureBody({ ...input, folder_parent_id: null });
        await saveDraft(scope, caller, agent, branch, procedure.id, body);
        await recordUserAction(trx, caller, context.now(), { action: 'procedure.draft_update', agentId: agent.id, resourceId: procedure.id, details: { branch_id: branch.id } });
        return procedureDraftWire(procedure.id, body);
      });
    },

    /** Discards the caller's draft; a procedure never published and drafted by nobody else goes with it. */
    async discardDraft(caller: Caller, agentId: string, branchId: string, procedureId: string) {
      return context.write(async ({ trx }) => {
        const { agent, branch } = await agentAndBranch(trx, caller, agentId, branchId);
        const procedure = await procedureOf(trx, agent, procedureId);
        const discarded = await proceduresStore(trx).discardDraft(branch.id, caller.userId, procedure.id);
        if (discarded) {
          await dropIfAbandoned(trx, procedure.id);
          await recordUserAction(trx, caller, context.now(), { action: 'procedure.draft_delete', agentId: agent.id, resourceId: procedure.id, details: { branch_id: branch.id } });
        }
        return { procedure_id: procedure.id };
      });
    },
  };

  /** The caller's draft body of the procedure (not a removal), else the branch head's. */
  async function currentBody(trx: Kysely<Database>, caller: Caller, agent: AgentRow, branch: BranchRow, procedureId: string): Promise<ProcedureBody | undefined> {
    const draft = await proceduresStore(trx).findDraft(branch.id, caller.userId, procedureId);
    if (draft?.body_hash) return loadBody(context, trx, draft.body_hash);
    return (await tipSet(trx, agent, branch)).get(procedureId)?.body;
  }
}

/** The procedure and, for a folder, everything inside it (at any depth). */
function subtreeOf(set: ReadonlyMap<string, SetMember>, rootId: string): Set<string> {
  const inside = new Set([rootId]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [id, member] of set) {
      const parent = member.body.folder_parent_id;
      if (!inside.has(id) && parent !== null && inside.has(parent)) {
        inside.add(id);
        grew = true;
      }
    }
  }
  return inside;
}
