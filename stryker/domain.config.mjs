import { run } from './base.mjs';

// The pure core, against its own unit and property tests only: the app's tests reach it too, but
// running them for every mutant of code they all use would take hours.
export default run('domain', ['src/domain/**/*.ts']);
