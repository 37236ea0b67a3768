#!/usr/bin/env -S node --min-semi-space-size=16 --no-allocation-site-pretenuring
// Entry point for `npm start` and `npx branchwise …`: runs the TypeScript sources through tsx,
// so there is no build step between a checkout and a running server.
// --min-semi-space-size (also in `npm start`): V8 otherwise sizes the young generation by how
// the process happened to start, and a server left with a small one spends up to a fifth of the
// hot path in scavenges (bench/README.md).
// --no-allocation-site-pretenuring (also in `npm start`): V8 otherwise may decide, from objects
// that survived a scavenge, to allocate every request's objects in the old generation, and a server
// it decides so for answers about a quarter fewer reads for as long as it runs (bench/README.md).
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli.ts');
process.exitCode = await runCli(process.argv.slice(2));
