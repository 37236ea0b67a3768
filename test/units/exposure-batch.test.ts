import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { UnitMap } from '../../src/domain/unit-map.js';
import { ExposureBatch } from '../../src/features/experiments/exposure-batch.js';
import type { ExposureRow } from '../../src/features/experiments/experiments.store.js';

// The columns the recorder hands the writer (exposure-batch.ts): each exposure reads back as the
// row it was, with its unit's key, and a batch splits by agent into exactly each agent's rows.

const rowsOf = (batch: ExposureBatch): ExposureRow[] => Array.from({ length: batch.length }, (_, index) => batch.row(index));

const row = fc.record({
  agent_id: fc.constantFrom('agent_a', 'agent_b', 'agent_c'),
  unit_id: fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 5 })),
  branch_id: fc.constantFrom('b1', 'b2'),
  version_id: fc.constantFrom('v1', 'v2'),
  deployment_id: fc.constantFrom('d1'),
  probability: fc.constantFrom(0.5, null),
  exposed_at_ms: fc.integer({ min: 0, max: 2 ** 45 }),
  source: fc.constantFrom('routed' as const, 'reported' as const),
});

describe('ExposureBatch', () => {
  it('reads back every row with its key; split by agent, each part holds that agent\'s rows in order', () => {
    fc.assert(
      fc.property(fc.array(row, { maxLength: 60 }), (rows) => {
        const batch = ExposureBatch.fromRows(rows);
        expect(rowsOf(batch)).toEqual(rows);
        rows.forEach((one, index) => {
          const key = UnitMap.key(one.unit_id);
          expect([batch.keys[2 * index] >>> 0, batch.keys[2 * index + 1] >>> 0]).toEqual([key[0], key[1]]);
        });
        const parts = batch.byAgent();
        expect([...parts.keys()].sort()).toEqual([...new Set(rows.map((one) => one.agent_id))].sort());
        for (const [agentId, part] of parts) {
          expect(rowsOf(part)).toEqual(rows.filter((one) => one.agent_id === agentId));
          if (parts.size === 1) expect(part).toBe(batch);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a batch whose arms name other agents (still buffered ones) is one agent\'s when its exposures are', () => {
    const rows = ExposureBatch.fromRows([
      { agent_id: 'agent_a', unit_id: 'u1', branch_id: 'b', version_id: 'v', deployment_id: 'd', probability: 1, exposed_at_ms: 1, source: 'routed' },
      { agent_id: 'agent_b', unit_id: 'u2', branch_id: 'b', version_id: 'v', deployment_id: 'd', probability: 1, exposed_at_ms: 1, source: 'routed' },
    ]);
    const onlyA = rows.subset([0]);
    expect(onlyA.arms).toHaveLength(2);
    expect([...onlyA.byAgent().keys()]).toEqual(['agent_a']);
    expect(onlyA.byAgent().get('agent_a')).toBe(onlyA);
  });
});
