import type { Kysely } from 'kysely';

import type { Database } from '../../db/schema.js';
import type { Caller } from '../../domain/caller.js';
import { newId } from '../../domain/ids.js';
import type { ProcedureMap } from '../agents/agent-document.js';
import { proceduresStore } from './procedures.store.js';

/**
 * Copies of an agent's procedures for a duplicate: each procedure and version its maps name gets
 * a new id (the same one wherever it appears), bodies are shared (content-addressed). References
 * inside content are not rewritten (upstream's duplicate neither).
 */
export function procedureCopier(trx: Kysely<Database>, caller: Caller, sourceAgentId: string, copyAgentId: string, nowMs: number) {
  const procedureIds = new Map<string, string>();
  const versionIds = new Map<string, string>();
  return {
    /** The map with every procedure and version copied to the new agent. */
    async copy(map: ProcedureMap): Promise<ProcedureMap> {
      const store = proceduresStore(trx);
      const wanted = Object.values(map).filter((versionId) => !versionIds.has(versionId));
      for (const row of await store.findVersions(sourceAgentId, wanted)) {
        let procedureId = procedureIds.get(row.procedure_id);
        if (procedureId === undefined) {
          procedureId = newId('agtprc_', nowMs);
          procedureIds.set(row.procedure_id, procedureId);
          await store.insert({ id: procedureId, agent_id: copyAgentId, created_by_user_id: caller.userId, created_at_ms: nowMs });
        }
        const versionId = newId('agtprcv_', nowMs);
        versionIds.set(row.id, versionId);
        await store.insertVersions([{ ...row, id: versionId, procedure_id: procedureId, agent_id: copyAgentId, author_user_id: caller.userId, created_at_ms: nowMs }]);
      }
      return Object.fromEntries(Object.entries(map).map(([procedureId, versionId]) => [procedureIds.get(procedureId) as string, versionIds.get(versionId) as string]));
    },
  };
}
