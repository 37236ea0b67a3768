import { run } from './base.mjs';

// Auth and role rules, the fast path and its caches, deployments: the app's own code,
// against the fast SQLite test files that exercise it (stryker/vitest.app.config.ts). Store
// queries, routes, the admin side of workspaces and the merge service are left out: each of their
// mutants reruns whole app test files (a minute or more here); merges are mutated in their pure
// core, src/domain/three-way-merge.ts. docs/testing.md has the measurements behind this.
export default run('app', [
  // roleAllows.
  'src/domain/caller.ts',
  'src/features/branches/branch-access.ts',
  // callerByKeyHash, cachedCallerByKeyHash and recentHashOf: the key cache.
  'src/features/workspaces/workspaces.service.ts:167-202',
  // src/http/fast-path.ts and src/features/deployments/routing-cache.ts: their own run (fastpath.config.mjs).
  'src/features/deployments/deployment-writer.ts',
  'src/features/deployments/deployments.service.ts',
]);
