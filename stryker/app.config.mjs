import { run } from './base.mjs';

// Auth and role rules, the fast path and its caches, deployments and merges: the app's own code,
// against the fast SQLite test files that exercise it (stryker/vitest.app.config.ts). Store
// queries, routes and the admin side of workspaces are left out: their mutants are reached mostly
// while a test file sets up (ignored as static) and the rest cost minutes each.
export default run('app', [
  'src/http/route.ts',
  'src/features/branches/branch-access.ts',
  // authenticate and cachedCaller: the key cache.
  'src/features/workspaces/workspaces.service.ts:166-196',
  'src/http/fast-path.ts',
  'src/features/deployments/routing-cache.ts',
  'src/features/deployments/deployment-writer.ts',
  'src/features/deployments/deployments.service.ts',
  'src/features/merges/merge-plan.ts',
]);
