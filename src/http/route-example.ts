/**
 * A request a route accepts, kept beside the route: the fuzz suite and the access matrix send it
 * (and variations of it) to every route of the table, so a new route with its example is covered
 * by both with no other test edit. Nothing in the server reads it.
 *
 * It is written against the example agent, which the tests make fresh for each use and whose
 * real ids they pass in as `ExampleIds`: an agent with a second branch that has a change of its
 * own, a main that moved on since, the first (active) deployment, an open merge proposal from
 * the branch into main, and a procedure published on the branch. Every merge, rebase and restore then has real work to do.
 */
export interface ExampleIds {
  agentId: string;
  mainBranchId: string;
  /** Main's head: a commit made after the second branch was created from the first version. */
  mainVersionId: string;
  /** The second branch. */
  branchId: string;
  /** The second branch's head. */
  branchVersionId: string;
  /** The agent's first (active) deployment. */
  deploymentId: string;
  /** An open merge proposal from the second branch into main, naming `reviewerUserId` as reviewer. */
  proposalId: string;
  /** A real user of the agent's workspace. */
  reviewerUserId: string;
  /** A procedure published on the second branch (its head maps it to `procedureVersionId`). */
  procedureId: string;
  procedureVersionId: string;
  /** A guarded rollout of the second branch, rolled back (so it leaves the split to the deployment routes). */
  guardedRolloutId: string;
  /** An outcome webhook of the agent's workspace. */
  webhookId: string;
  /** A metric of the agent with an `event` source (a key of its own: no other fixture's agent has it). */
  metricKey: string;
}

/** What an id names. */
export type IdKind = 'agent' | 'branch' | 'version' | 'deployment' | 'proposal' | 'user' | 'procedure' | 'procedure_version' | 'webhook' | 'metric' | 'guarded_rollout';

export const EXAMPLE_ID_KINDS: Record<keyof ExampleIds, IdKind> = {
  agentId: 'agent',
  mainBranchId: 'branch',
  mainVersionId: 'version',
  branchId: 'branch',
  branchVersionId: 'version',
  deploymentId: 'deployment',
  proposalId: 'proposal',
  reviewerUserId: 'user',
  procedureId: 'procedure',
  procedureVersionId: 'procedure_version',
  guardedRolloutId: 'guarded_rollout',
  webhookId: 'webhook',
  metricKey: 'metric',
};

/**
 * What a query parameter does with an id, so that an id that is not the caller's has one right
 * answer: it `selects` a resource (404), `expects` a head (409), or `filters` a list (200).
 */
export type QueryIdRole = 'selects' | 'expects' | 'filters';

export interface RouteExample {
  /** Which of the example ids each `:placeholder` of the URL takes (its kind is that id's). */
  params?: Record<string, keyof ExampleIds>;
  /** The query parameters the route requires. */
  query?: (ids: ExampleIds) => Record<string, string>;
  /** A body the route accepts; required when the route has a body. */
  body?: (ids: ExampleIds) => Record<string, unknown>;
  /**
   * The optional fields that name other objects (branches, versions, users...), with real values:
   * requests that name them take code paths the bare example does not (issue 14: a proposal naming
   * reviewers deadlocked the server). Tests send them in any combination; `sent` tells which ones
   * go with this request (a value may depend on another being sent). A field named `*_id`/`*_ids`
   * that is in neither this nor the example fails the fuzz suite.
   */
  references?: (ids: ExampleIds, sent: (name: string) => boolean) => { query?: Record<string, string>; body?: Record<string, unknown> };
  /** Every query parameter named like an id (`*_id`, `*_ids`): what it names and does. */
  queryIds?: Record<string, { kind: IdKind; role: QueryIdRole }>;
  /**
   * The 409 a fresh fixture's state gives the example instead of a 200: the guarded rollout
   * actions meet a rollout the fixture has rolled back already (an open one would refuse every
   * deployment route's example). Their success is tested on rollouts of their own.
   */
  conflictsWith?: string;
}
