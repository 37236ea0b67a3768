import { run } from './base.mjs';

// The fast path and its routing cache against their own fast tests (stryker/vitest.fastpath.config.ts):
// minutes, where the same modules in the app run take two hours. `npm run mutate:fastpath`.
export default run('fastpath', ['src/http/fast-path.ts', 'src/features/deployments/routing-cache.ts']);
