// The layers' import rules (docs: issue 17), checked by test/architecture.test.ts on every `npm test`:
// `npx depcruise src` prints the same verdict.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'lower-layers-above-features',
      comment:
        'http, wire, db and domain, and the modules both sides share (errors), sit under the features: ' +
        'a feature plugs into them through an interface (http/authenticator.ts), never the other way. ' +
        'src/compute may import features: it runs their code in workers.',
      severity: 'error',
      from: { path: '^src/(http|wire|db|domain)/|^src/errors\\.ts$' },
      to: { path: '^src/features/' },
    },
    {
      name: 'domain-is-pure',
      comment: 'The pure core imports only itself (and packages): no store, no framework layer, no feature.',
      severity: 'error',
      from: { path: '^src/domain/' },
      to: { path: '^src/', pathNot: '^src/domain/' },
    },
    {
      name: 'no-circular',
      comment: 'No module reaches itself through its imports: each layer and slice can be read, tested and changed from the bottom up.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    // Type-only imports count: a type from a feature couples a layer to it as much as a value does.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
  },
};
