import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openStore } from '../src/db/connect.js';
import { QueryOutsideWriteError, writeTransaction } from '../src/db/write.js';
import { createTestDatabase, dialect, injectAs, okJson, startTestApp, type TestApp } from './support/test-app.js';

// Inside a write transaction the transaction's handle is the only one that answers (issue 14,
// defect 1). On SQLite any other query waits for the one connection the transaction holds: a
// deadlock of the whole server. The pool therefore refuses at once, on both dialects.

/** The promise's outcome, or a failure naming `what` if it has not settled in time: a hang fails, it does not hang the suite. */
async function settles<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within 10 s: a deadlock`)), 10_000);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

let testApp: TestApp;
beforeAll(async () => {
  testApp = await startTestApp();
});
afterAll(() => testApp.close());

describe('the pool inside a write', () => {
  it('a query through the root handle inside context.write rejects at once, and the server goes on', async () => {
    const { context } = testApp.app;
    const outcome = await settles(
      context.write(async ({ trx }) => {
        await trx.selectFrom('users').select('id').execute();
        return context.db.selectFrom('users').select('id').execute().then(
          () => 'answered',
          (error: unknown) => error,
        );
      }),
      'a query through the root handle inside a write',
    );
    expect(outcome).toBeInstanceOf(QueryOutsideWriteError);
    expect((outcome as Error).message).toContain('trx');
    // The transaction ended and released its connection: the pool answers again.
    expect(await settles(context.db.selectFrom('users').select('id').execute(), 'a query after the write')).not.toHaveLength(0);
  });

  it('so does anything built on the root handle (the user directory), and a nested write; the write rolls back', async () => {
    const { context } = testApp.app;
    const userId = (await context.db.selectFrom('users').select('id').where('name', '=', 'editor-user').executeTakeFirstOrThrow()).id;
    const viaDirectory = context.write(async ({ trx }) => {
      await trx.updateTable('users').set({ name: 'renamed inside' }).where('id', '=', userId).execute();
      await context.users.describe([userId]);
    });
    await expect(settles(viaDirectory, 'the user directory inside a write')).rejects.toBeInstanceOf(QueryOutsideWriteError);
    await expect(settles(context.write(async () => context.write(async () => 1)), 'a write inside a write')).rejects.toBeInstanceOf(QueryOutsideWriteError);
    const after = await context.db.selectFrom('users').select('name').where('id', '=', userId).executeTakeFirstOrThrow();
    expect(after.name).toBe('editor-user');
  });

  it('a write that ends while another is in flight leaves the other guarded', async () => {
    const { context } = testApp.app;
    let firstDone!: () => void;
    const firstFinished = new Promise<void>((resolve) => (firstDone = resolve));
    // The first one first: on SQLite the second waits for its connection.
    const first = context.write(async ({ trx }) => trx.selectFrom('users').select('id').execute()).then(firstDone);
    const second = context.write(async ({ trx }) => {
      await trx.selectFrom('users').select('id').execute();
      await firstFinished;
      return context.db.selectFrom('users').select('id').execute().then(
        () => 'answered',
        (error: unknown) => error,
      );
    });
    await settles(first, 'the first write');
    expect(await settles(second, 'the second write')).toBeInstanceOf(QueryOutsideWriteError);
  });

  it('a write that asks to run unguarded (the exposure flush) is guarded all the same in tests: the store guards every write', async () => {
    const { context } = testApp.app;
    expect(testApp.store.guardEveryWrite).toBe(true);
    const outcome = await settles(
      context.write(
        async ({ trx }) => {
          await trx.selectFrom('users').select('id').execute();
          return context.db.selectFrom('users').select('id').execute().then(
            () => 'answered',
            (error: unknown) => error,
          );
        },
        { unguarded: true },
      ),
      'a query through the root handle inside an unguarded write',
    );
    expect(outcome).toBeInstanceOf(QueryOutsideWriteError);
  });

  // What `unguarded` does outside tests, where the guard is off for that write: on SQLite the query
  // would wait for the transaction's connection (the hang the guard exists for), so this shows it on
  // PostgreSQL, where the pool answers from outside the transaction.
  it.skipIf(dialect === 'sqlite')('on a store that does not guard every write, an unguarded write lets the pool answer (PostgreSQL)', async () => {
    const database = await createTestDatabase();
    const store = await openStore({ ...database.options, guardEveryWrite: false });
    try {
      const rows = await settles(
        writeTransaction(store, async () => store.db.selectFrom('workspaces').select('id').execute(), { unguarded: true }),
        'a pool query inside an unguarded write',
      );
      expect(rows).toEqual([]);
      await expect(settles(writeTransaction(store, async () => store.db.selectFrom('workspaces').select('id').execute()), 'a guarded one')).rejects.toBeInstanceOf(QueryOutsideWriteError);
    } finally {
      await store.close();
      await database.drop();
    }
  });

  it("another store's pool still answers inside a write (reading one store while writing another, as a copy does)", async () => {
    const { context } = testApp.app;
    const database = await createTestDatabase();
    const other = await openStore(database.options);
    try {
      const rows = await settles(
        context.write(async () => other.db.selectFrom('workspaces').select('id').execute()),
        "another store's query inside a write",
      );
      expect(rows).toEqual([]);
    } finally {
      await other.close();
      await database.drop();
    }
  });

  it('after the commit the pool answers again: afterCommit callbacks, and work started inside that outlives the transaction', async () => {
    const { context } = testApp.app;
    let later: Promise<unknown> | undefined;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const afterCommit: Promise<unknown>[] = [];
    await settles(
      context.write(async ({ trx, afterCommit: onCommit }) => {
        await trx.selectFrom('users').select('id').execute();
        onCommit(() => afterCommit.push(context.db.selectFrom('users').select('id').execute()));
        // Not awaited by the write: it queries once the transaction is over.
        later = released.then(() => context.db.selectFrom('users').select('id').execute());
      }),
      'the write',
    );
    release();
    expect(await settles(later!, 'work started inside the write')).not.toHaveLength(0);
    expect(afterCommit).toHaveLength(1);
    expect(await settles(afterCommit[0], 'an afterCommit callback')).not.toHaveLength(0);
  });
});

describe('what runs when a write ends', () => {
  it('afterCommit callbacks run after a commit only, afterRollback callbacks after a rollback only (a failed commit included)', async () => {
    const { context } = testApp.app;
    const ran: string[] = [];
    await context.write(async ({ trx, afterCommit, afterRollback }) => {
      await trx.selectFrom('users').select('id').execute();
      afterCommit(() => ran.push('committed: afterCommit'));
      afterRollback(() => ran.push('committed: afterRollback'));
    });
    await expect(
      context.write(async ({ afterCommit, afterRollback }) => {
        afterCommit(() => ran.push('thrown: afterCommit'));
        afterRollback(() => ran.push('thrown: afterRollback'));
        throw new Error('rolled back on purpose');
      }),
    ).rejects.toThrow('rolled back on purpose');
    await expect(
      context.write(async ({ trx, afterCommit, afterRollback }) => {
        afterCommit(() => ran.push('refused: afterCommit'));
        afterRollback(() => ran.push('refused: afterRollback'));
        // The database refuses it (a second user with the same id).
        const user = await trx.selectFrom('users').selectAll().executeTakeFirstOrThrow();
        await trx.insertInto('users').values(user).execute();
      }),
    ).rejects.toThrow();
    expect(ran).toEqual(['committed: afterCommit', 'thrown: afterRollback', 'refused: afterRollback']);
  });
});

describe('merge proposals that name reviewers (the deadlock of issue 14)', () => {
  it('an editor opens a proposal with a real reviewer; the server answers it and everything after', async () => {
    const { keys } = testApp;
    const reviewer = (await testApp.app.context.db.selectFrom('users').select('id').where('name', '=', 'commenter-user').executeTakeFirstOrThrow()).id;
    const created = okJson<{ agent_id: string }>(await injectAs(testApp, 'POST', '/v1/convai/agents/create', keys.editor, { conversation_config: {} }));
    const agent = okJson<{ version_id: string; main_branch_id: string }>(await injectAs(testApp, 'GET', `/v1/convai/agents/${created.agent_id}`, keys.editor));
    const branch = okJson<{ created_branch_id: string }>(
      await injectAs(testApp, 'POST', `/v1/convai/agents/${created.agent_id}/branches`, keys.editor, { parent_version_id: agent.version_id, name: 'Reviewed', description: '' }),
    );
    const opened = await settles(
      injectAs(testApp, 'POST', `/v1/convai/agents/${created.agent_id}/merge-proposals`, keys.editor, {
        source_branch_id: branch.created_branch_id,
        target_branch_id: agent.main_branch_id,
        title: 'With a reviewer',
        requested_reviewer_user_ids: [reviewer],
      }),
      'POST merge-proposals with requested_reviewer_user_ids',
    );
    const { created_merge_proposal_id: proposalId } = okJson<{ created_merge_proposal_id: string }>(opened);
    const proposal = okJson<{ requested_reviewer_user_ids: string[] }>(
      await settles(injectAs(testApp, 'GET', `/v1/convai/agents/${created.agent_id}/merge-proposals/${proposalId}`, keys.viewer), 'GET the proposal'),
    );
    expect(proposal.requested_reviewer_user_ids).toEqual([reviewer]);
    // Editing the reviewers goes through the same check.
    const edited = await settles(
      injectAs(testApp, 'PATCH', `/v1/convai/agents/${created.agent_id}/merge-proposals/${proposalId}`, keys.editor, { requested_reviewer_user_ids: [reviewer] }),
      'PATCH the reviewers',
    );
    expect(edited.statusCode).toBe(200);
    expect((await settles(injectAs(testApp, 'GET', '/readyz', null), 'GET /readyz')).statusCode).toBe(200);
  });
});
