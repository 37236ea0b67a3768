#!/usr/bin/env node
// Entry point for `npm start` and `npx branchwise …`: runs the TypeScript sources through tsx,
// so there is no build step between a checkout and a running server.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli.ts');
process.exitCode = await runCli(process.argv.slice(2));
