import { vi } from 'vitest';

// Mutation runs only (a setup file of stryker/vitest.*.config.ts): every property runs at most
// MUTATION_FC_RUNS cases (25 unless set) from a fixed seed. A surviving mutant reruns every
// property that reaches it, and at the suite's 100–500 cases a run of the domain takes hours on
// two cores. The fixed seed makes a run's verdicts reproducible; the normal suite is unchanged.
const cap = Number(process.env.MUTATION_FC_RUNS ?? 25);

vi.mock('fast-check', async (importOriginal) => {
  const fc = await importOriginal<typeof import('fast-check')>();
  const assert = ((property: Parameters<typeof fc.assert>[0], params?: Parameters<typeof fc.assert>[1]) =>
    fc.assert(property, { seed: 20_260_415, ...params, numRuns: Math.min(params?.numRuns ?? 100, cap) })) as typeof fc.assert;
  return { ...fc, assert, default: { ...fc.default, assert } };
});
