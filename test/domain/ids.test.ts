import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';

import type { IdPrefix } from '../../src/domain/ids.js';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const PREFIXES: IdPrefix[] = ['agent_', 'agtbrch_', 'agtvrsn_', 'agtmprop_', 'agtdpl_', 'agtprc_', 'agtprcv_', 'user_', 'ws_', 'key_'];

/** 2100-01-01: later than any clock this suite runs under, so `newId` never moves it forward. */
const FUTURE = 4_102_444_800_000;

/** `newId` keeps the last time it used in module state; each test starts from a fresh module. */
async function freshNewId(): Promise<typeof import('../../src/domain/ids.js').newId> {
  vi.resetModules();
  return (await import('../../src/domain/ids.js')).newId;
}

/** The milliseconds encoded in the 10 characters after the prefix. */
function timeOf(id: string, prefix: IdPrefix): number {
  return [...id.slice(prefix.length, prefix.length + 10)].reduce((time, char) => time * 32 + ALPHABET.indexOf(char), 0);
}

function expectStrictlyIncreasing(ids: string[]): void {
  for (let i = 1; i < ids.length; i++) {
    if (!(ids[i - 1] < ids[i])) expect.fail(`id ${i} ${ids[i]} does not sort after ${ids[i - 1]}`);
  }
}

describe('newId', () => {
  it('is the prefix and 28 characters of lowercase base 32 without i, l, o, u', async () => {
    const newId = await freshNewId();
    for (const prefix of PREFIXES) {
      for (let i = 0; i < 50; i++) expect(newId(prefix)).toMatch(new RegExp(`^${prefix}[0-9a-hjkmnp-tv-z]{28}$`));
    }
  });

  it('encodes the time it was made in the 10 characters after the prefix', async () => {
    const newId = await freshNewId();
    const before = Date.now();
    const id = newId('agent_');
    expect(timeOf(id, 'agent_')).toBeGreaterThanOrEqual(before);
    expect(timeOf(id, 'agent_')).toBeLessThanOrEqual(Date.now());
    expect(timeOf(newId('agent_', FUTURE), 'agent_')).toBe(FUTURE);
  });

  it('makes strictly increasing, distinct ids in a tight loop', async () => {
    const newId = await freshNewId();
    const ids = Array.from({ length: 20_000 }, () => newId('agtvrsn_'));
    expectStrictlyIncreasing(ids);
  });

  it('makes strictly increasing ids when the same time is passed again and again', async () => {
    const newId = await freshNewId();
    const now = FUTURE;
    const ids = Array.from({ length: 5_000 }, () => newId('agtbrch_', now));
    expectStrictlyIncreasing(ids);
    for (const id of ids) expect(timeOf(id, 'agtbrch_')).toBe(now);
  });

  it('orders ids by the time they were made', async () => {
    const newId = await freshNewId();
    // Each run starts later than the one before, since the module remembers the latest time used.
    let start = FUTURE;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 2, maxLength: 30 }), (offsets) => {
        const times = [...new Set(offsets)].sort((a, b) => a - b).map((offset) => start + offset);
        start += 2_000_000;
        const ids = times.map((time) => newId('agent_', time));
        expectStrictlyIncreasing(ids);
        expect(ids.map((id) => timeOf(id, 'agent_'))).toEqual(times);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps increasing when the clock goes back', async () => {
    const newId = await freshNewId();
    const now = FUTURE;
    const ids = [newId('agent_', now), newId('agent_', now - 1_000), newId('agent_', now - 60_000), newId('agent_', now)];
    expectStrictlyIncreasing(ids);
  });

  it('makes a whole id at time 0 (the epoch), the first time it is asked', async () => {
    // The module starts as if its last id had been made at 0: the first id must not take itself
    // for a second one in that millisecond (there is no random part yet to increment).
    const newId = await freshNewId();
    const ids = [newId('agent_', 0), newId('agent_', 0)];
    for (const id of ids) expect(id).toMatch(/^agent_0{10}[0-9a-hjkmnp-tv-z]{18}$/);
    expectStrictlyIncreasing(ids);
  });

  it('carries into the first random character: the id after …zzzzz in the same millisecond still sorts after it', async () => {
    // Random draws of 5 then seventeen 31s ('z'): the next id must increment the first character.
    vi.doMock('node:crypto', async (importOriginal) => ({
      ...(await importOriginal<typeof import('node:crypto')>()),
      randomBytes: (size: number) => Buffer.from([5, ...Array<number>(size - 1).fill(31)]),
    }));
    try {
      const newId = await freshNewId();
      const ids = [newId('agent_', FUTURE), newId('agent_', FUTURE), newId('agent_', FUTURE)];
      expect(ids.map((id) => id.slice(-18))).toEqual(['5' + 'z'.repeat(17), '6' + '0'.repeat(17), '6' + '0'.repeat(16) + '1']);
      expectStrictlyIncreasing(ids);
    } finally {
      vi.doUnmock('node:crypto');
      vi.resetModules();
    }
  });

  it('draws the random part afresh in each new millisecond', async () => {
    const newId = await freshNewId();
    const start = FUTURE;
    const randomParts = new Set(Array.from({ length: 200 }, (_, i) => newId('key_', start + i).slice('key_'.length + 10)));
    expect(randomParts.size).toBe(200);
  });
});
