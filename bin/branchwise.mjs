#!/usr/bin/env -S node --min-semi-space-size=16
// Entry point for `npm start` and `npx branchwise …`: runs the TypeScript sources through tsx,
// so there is no build step between a checkout and a running server.
// --min-semi-space-size (also in `npm start`): V8 otherwise sizes the young generation by how
// the process happened to start, and a server left with a small one spends up to a fifth of the
// hot path in scavenges (bench/README.md).
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli.ts');
process.exitCode = await runCli(process.argv.slice(2));
