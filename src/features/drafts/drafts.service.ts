import { compute, isLarge } from '../../compute/offload.js';
import type { AppContext } from '../../context.js';
import { configSectionsOf } from '../../domain/sections.js';
import type { AgentConfigSections } from '../../wire/agent-config.js';
import type { AgentDocument } from '../agents/agent-document.js';
import { agentsStore } from '../agents/agents.store.js';
import { recordUserAction } from '../audit/audit.events.js';
import { branchesStore } from '../branches/branches.store.js';
import { versionsStore } from '../versions/versions.store.js';
import type { Caller } from '../../domain/caller.js';
import { assertValidProcedures, callersWorkingSet } from '../procedures/procedure-sets.js';
import { draftsStore } from './drafts.store.js';

export interface DraftInput extends AgentConfigSections {
  name: string;
  tags?: string[] | null;
}

/**
 * Drafts: each user's unsaved snapshot of a branch's config (decisions.md D8). A draft never blocks an
 * operation; a commit by its owner on its branch, or a merge or rebase landing there, discards it.
 */
export function draftsService(context: AppContext) {
  return {
    /** Stores the caller's draft on the branch, replacing theirs (and its `draft_created_at`). */
    async save(caller: Caller, agentId: string, branchId: string, input: DraftInput) {
      const sent = configSectionsOf(input);
      const sections = await compute(isLarge(sent), 'validateSections', sent, ['body']);
      // Procedure drafts are kept apart (src/features/procedures), per procedure.
      const document: AgentDocument = { ...sections, name: input.name, tags: input.tags ?? [], procedures: {} };
      const prepared = await context.documents.prepare(document);
      const now = context.now();
      return context.write(async ({ trx, afterCommit }) => {
        const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        const branch = await branchesStore(trx).findOrThrow(agent.id, branchId);
        // Upstream validates the caller's procedures with the config they would go with.
        const { working } = await callersWorkingSet(context, trx, agent.id, branch, caller.userId);
        assertValidProcedures(working, document.conversation_config);
        await context.documents.write(trx, prepared);
        afterCommit(() => context.documents.markStored(prepared));
        await draftsStore(trx).save({
          branch_id: branch.id,
          user_id: caller.userId,
          agent_id: agent.id,
          document_hash: prepared.rootHash,
          created_at_ms: now,
          based_on_seq_no: branch.head_seq_no,
        });
        await recordUserAction(trx, caller, now, { action: 'draft.create', agentId: agent.id, resourceId: branch.id, details: { based_on_version_id: branch.head_version_id } });
        return { branch_id: branch.id, draft_created_at: Math.floor(now / 1000) };
      });
    },

    /**
     * Extension: the caller's draft on the branch (its config and the version it was saved on), or
     * `draft: null`; an editor resumes from it, and `is_behind_tip` says the branch has moved since.
     */
    async get(caller: Caller, agentId: string, branchId: string) {
      const agent = await agentsStore(context.db).findOrThrow(caller.workspaceId, agentId);
      const branch = await branchesStore(context.db).findOrThrow(agent.id, branchId);
      const draft = await draftsStore(context.db).findOfUser(branch.id, caller.userId);
      if (!draft) return { branch_id: branch.id, head_version_id: branch.head_version_id, draft: null };
      // The version the draft was saved on: the branch's version with that sequence number.
      const [basedOn] = await versionsStore(context.db).page(branch.id, 1, draft.based_on_seq_no + 1);
      const document = (await context.documents.load(context.db, draft.document_hash)) as unknown as AgentDocument;
      return {
        branch_id: branch.id,
        head_version_id: branch.head_version_id,
        draft: {
          draft_created_at: Math.floor(draft.created_at_ms / 1000),
          based_on_version_id: basedOn?.id ?? null,
          is_behind_tip: draft.based_on_seq_no < branch.head_seq_no,
          name: document.name,
          tags: document.tags,
          ...configSectionsOf(document),
        },
      };
    },

    /** Discards the caller's draft on the branch; discarding a draft that does not exist is fine. */
    async discard(caller: Caller, agentId: string, branchId: string) {
      return context.write(async ({ trx }) => {
        const agent = await agentsStore(trx).findOrThrow(caller.workspaceId, agentId);
        const branch = await branchesStore(trx).findOrThrow(agent.id, branchId);
        const discarded = await draftsStore(trx).discardOfUser(branch.id, caller.userId);
        // Discarding a draft that does not exist writes nothing, so it records nothing.
        if (discarded) await recordUserAction(trx, caller, context.now(), { action: 'draft.delete', agentId: agent.id, resourceId: branch.id });
        return { branch_id: branch.id, discarded };
      });
    },
  };
}
