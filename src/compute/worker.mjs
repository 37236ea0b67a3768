// A compute worker thread (offload.ts): the TypeScript sources through tsx, as bin/branchwise.mjs
// does for the main thread, then one function that runs a named task from tasks.ts.
import { register } from 'tsx/esm/api';

register();
const { runTask } = await import('./tasks.ts');

export default function run({ name, args }) {
  return runTask(name, args);
}
