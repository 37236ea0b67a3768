import { Counter } from 'prom-client';

/** Successful writes, counted by the services once their transaction commits. */
export interface WriteMetrics {
  commits: Counter;
  merges: Counter;
  rebases: Counter<'trigger'>;
  deployments: Counter<'source'>;
  rollbacks: Counter;
}

/**
 * The write counters, made with the context (the services increment them) and reported by the app's
 * registry (`createMetrics` registers them).
 */
export function createWriteMetrics(): WriteMetrics {
  return {
    commits: new Counter({ name: 'branchwise_commits_total', help: 'Commits that made a new version (PATCH agent, restore).', registers: [] }),
    merges: new Counter({ name: 'branchwise_merges_total', help: 'Branch merges, by the merge route or a merge proposal.', registers: [] }),
    rebases: new Counter({
      name: 'branchwise_rebases_total',
      help: 'Rebases onto main: trigger="manual" by the rebase route, "auto" for an auto_rebase branch after a new main version.',
      labelNames: ['trigger'] as const,
      registers: [],
    }),
    // `source` is the history item's (upstream's enum: "manual" | "branch_merge"), so a rollback
    // counts as "manual" here as in GET …/deployments; rollbacks are also counted on their own.
    deployments: new Counter({
      name: 'branchwise_deployments_total',
      help: 'Deployments made active, by their history item\'s source: "manual" (a new split or a rollback) or "branch_merge" (a merge moving traffic). An agent\'s first deployment is not counted.',
      labelNames: ['source'] as const,
      registers: [],
    }),
    rollbacks: new Counter({
      name: 'branchwise_deployment_rollbacks_total',
      help: 'Rollbacks to an earlier split (each is also a deployment with source="manual").',
      registers: [],
    }),
  };
}
