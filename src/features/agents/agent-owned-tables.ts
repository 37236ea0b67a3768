import type { Kysely } from 'kysely';

import type { Database } from '../../db/schema.js';
import { branchesStore } from '../branches/branches.store.js';
import { deploymentsStore } from '../deployments/deployments.store.js';
import { experimentsStore } from '../experiments/experiments.store.js';
import { draftsStore } from '../drafts/drafts.store.js';
import { guardedRolloutsStore } from '../experiments/guarded-rollouts.store.js';
import { mergeProposalsStore } from '../merge-proposals/merge-proposals.store.js';
import { proceduresStore } from '../procedures/procedures.store.js';
import { versionsStore } from '../versions/versions.store.js';
import { agentsStore } from './agents.store.js';

export interface AgentOwnedTables {
  /** The tables whose rows of an agent `deleteForAgent` removes. */
  tables: readonly (keyof Database)[];
  deleteForAgent(db: Kysely<Database>, agentId: string): Promise<void>;
}

/**
 * Everything an agent owns, slice by slice, in the order deleting the agent removes it (the
 * agent row last). A test checks this list against the schema: every table with an `agent_id`
 * column is here or in `KEPT_AFTER_AGENT_DELETION`, so a new table cannot be forgotten.
 */
export const AGENT_OWNED_TABLES: readonly AgentOwnedTables[] = [
  { tables: ['guarded_rollout_events', 'guarded_rollouts'], deleteForAgent: (db, agentId) => guardedRolloutsStore(db).deleteForAgent(agentId) },
  {
    tables: ['exposure_logs', 'exposure_arms', 'exposure_segments', 'webhook_deliveries', 'outcome_values', 'experiment_metrics', 'outcome_cells', 'exposure_cells'],
    deleteForAgent: (db, agentId) => experimentsStore(db).deleteForAgent(agentId),
  },
  { tables: ['deployments'], deleteForAgent: (db, agentId) => deploymentsStore(db).deleteForAgent(agentId) },
  {
    tables: ['merge_proposals', 'merge_proposal_reviews', 'merge_proposal_comments'],
    deleteForAgent: (db, agentId) => mergeProposalsStore(db).deleteForAgent(agentId),
  },
  { tables: ['drafts'], deleteForAgent: (db, agentId) => draftsStore(db).deleteForAgent(agentId) },
  { tables: ['procedure_drafts', 'procedure_versions', 'procedures'], deleteForAgent: (db, agentId) => proceduresStore(db).deleteForAgent(agentId) },
  { tables: ['versions'], deleteForAgent: (db, agentId) => versionsStore(db).deleteForAgent(agentId) },
  { tables: ['branches'], deleteForAgent: (db, agentId) => branchesStore(db).deleteForAgent(agentId) },
  { tables: ['agent_tags', 'agents'], deleteForAgent: (db, agentId) => agentsStore(db).delete(agentId) },
];

/** Tables with an `agent_id` whose rows outlive the agent: the audit log is what remains of who deleted it. */
export const KEPT_AFTER_AGENT_DELETION: readonly (keyof Database)[] = ['audit_events'];

/** Removes the agent and everything it owns (`AGENT_OWNED_TABLES`). */
export async function deleteAgentAndOwned(db: Kysely<Database>, agentId: string): Promise<void> {
  for (const owned of AGENT_OWNED_TABLES) await owned.deleteForAgent(db, agentId);
}
