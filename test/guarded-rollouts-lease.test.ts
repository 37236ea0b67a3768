import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openStore, type Store } from '../src/db/connect.js';
import { acquireLease, newLeaseHolder, releaseLease } from '../src/db/leases.js';
import { createTestDatabase, dialect, type TestDatabase } from './support/test-app.js';

// The lease in the database (src/db/leases.ts) between two stores on one database: each has its
// own connections, as two server processes do (SQLite: two connections to one file; PostgreSQL:
// two pools), so the database alone decides who holds it; and between real processes racing.

const execFileAsync = promisify(execFile);

/**
 * A process that opens the store and, at each of `rounds` agreed instants, asks for the lease
 * `raced` as of its round's clock; prints one line of JSON: `[taken, …]` per round.
 */
const RACER = `
const { openStore } = await import('./src/db/connect.ts');
const { acquireLease, newLeaseHolder } = await import('./src/db/leases.ts');
const [options, startAt, rounds, duration] = JSON.parse(process.argv[1]);
const store = await openStore(options);
const holder = newLeaseHolder();
const taken = [];
for (let round = 0; round < rounds; round++) {
  while (Date.now() < startAt + round * 150) await new Promise((resolve) => setTimeout(resolve, 1));
  taken.push(await acquireLease(store, 'raced-by-processes', holder, 9_000_000 + round * 2 * duration, duration));
}
await store.close();
process.stdout.write(JSON.stringify(taken));
`;

let database: TestDatabase;
let stores: [Store, Store];

beforeAll(async () => {
  database = await createTestDatabase();
  stores = [await openStore(database.options), await openStore(database.options)];
});

afterAll(async () => {
  for (const store of stores ?? []) await store.close();
  await database?.drop();
});

const DURATION = 30_000;

describe(`a lease shared by two stores on one database (${dialect})`, () => {
  it('is held by one holder at a time, renewed by it, and taken by the other only once it has expired or been released', async () => {
    const [one, two] = [newLeaseHolder(), newLeaseHolder()];
    expect(one).not.toBe(two);
    const t0 = 1_000_000;
    expect(await acquireLease(stores[0], 'test-lease', one, t0, DURATION)).toBe(true);
    expect(await acquireLease(stores[1], 'test-lease', two, t0 + 1, DURATION)).toBe(false);
    // Renewed by its holder: it now runs until t0 + 20,000 + DURATION.
    expect(await acquireLease(stores[0], 'test-lease', one, t0 + 20_000, DURATION)).toBe(true);
    expect(await acquireLease(stores[1], 'test-lease', two, t0 + DURATION + 1, DURATION)).toBe(false);
    expect(await acquireLease(stores[1], 'test-lease', two, t0 + 20_000 + DURATION, DURATION)).toBe(true);
    expect(await acquireLease(stores[0], 'test-lease', one, t0 + 20_000 + DURATION, DURATION)).toBe(false);
    // Another lease name is independent.
    expect(await acquireLease(stores[0], 'other-lease', one, t0, DURATION)).toBe(true);

    // Released by one that does not hold it: nothing; by its holder: free at once.
    await releaseLease(stores[0], 'test-lease', one);
    expect(await acquireLease(stores[0], 'test-lease', one, t0 + 20_001 + DURATION, DURATION)).toBe(false);
    await releaseLease(stores[1], 'test-lease', two);
    expect(await acquireLease(stores[0], 'test-lease', one, t0 + 20_001 + DURATION, DURATION)).toBe(true);

    const rows = await stores[1].db.selectFrom('leases').selectAll().orderBy('name').execute();
    expect(rows.map((row) => ({ ...row, expires_at_ms: Number(row.expires_at_ms) }))).toEqual([
      { name: 'other-lease', holder: one, expires_at_ms: t0 + DURATION },
      { name: 'test-lease', holder: one, expires_at_ms: t0 + 20_001 + 2 * DURATION },
    ]);
  });

  it('goes to exactly one of many holders racing for it through both stores, whether it is new or expired', async () => {
    for (let round = 0; round < 15; round++) {
      const holders = Array.from({ length: 6 }, () => newLeaseHolder());
      const now = 5_000_000 + round * 2 * DURATION;
      // Round 0 races for a lease no row exists for yet; the others for an expired one.
      const taken = await Promise.all(holders.map((holder, i) => acquireLease(stores[i % 2], 'raced', holder, now, DURATION)));
      expect(taken.filter(Boolean), `round ${round}`).toHaveLength(1);
      const row = await stores[0].db.selectFrom('leases').selectAll().where('name', '=', 'raced').executeTakeFirstOrThrow();
      expect(row.holder).toBe(holders[taken.indexOf(true)]);
    }
  });

  it('goes to exactly one of several processes racing for it, round after round', async () => {
    const ROUNDS = 12;
    // Far enough ahead for every process to have started and opened the store.
    const startAt = Date.now() + 6_000;
    const args = JSON.stringify([database.options, startAt, ROUNDS, DURATION]);
    const results = await Promise.all(
      [0, 1, 2].map(async () => {
        const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', RACER, args], { timeout: 60_000 });
        return JSON.parse(stdout) as boolean[];
      }),
    );
    for (let round = 0; round < ROUNDS; round++) {
      expect(results.map((taken) => taken[round]).filter(Boolean), `round ${round}: ${JSON.stringify(results.map((taken) => taken[round]))}`).toHaveLength(1);
    }
  });
});
