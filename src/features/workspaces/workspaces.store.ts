import type { Kysely } from 'kysely';

import { queryInSlices } from '../../db/in-lists.js';
import type { Database } from '../../db/schema.js';
import type { Caller, Role } from '../../domain/caller.js';

export function workspacesStore(db: Kysely<Database>) {
  return {
    findWorkspaceByName(name: string) {
      return db.selectFrom('workspaces').selectAll().where('name', '=', name).executeTakeFirst();
    },

    findWorkspaceById(id: string) {
      return db.selectFrom('workspaces').selectAll().where('id', '=', id).executeTakeFirst();
    },

    listWorkspaces() {
      return db.selectFrom('workspaces').selectAll().orderBy('created_at_ms').execute();
    },

    async insertWorkspace(row: Database['workspaces']) {
      await db.insertInto('workspaces').values(row).execute();
    },

    findUser(workspaceId: string, name: string) {
      return db
        .selectFrom('users')
        .selectAll()
        .where('workspace_id', '=', workspaceId)
        .where('name', '=', name)
        .executeTakeFirst();
    },

    /** Those of `userIds` that are users of the workspace, with their roles and names. */
    usersIn(workspaceId: string, userIds: readonly string[]) {
      return queryInSlices([...userIds], (slice) =>
        db.selectFrom('users').select(['id', 'role', 'name']).where('workspace_id', '=', workspaceId).where('id', 'in', slice).execute(),
      );
    },

    /** Every user of the workspace. */
    listUsers(workspaceId: string) {
      return db.selectFrom('users').select(['id', 'name', 'email', 'role']).where('workspace_id', '=', workspaceId).execute();
    },

    async insertUser(row: Database['users']) {
      await db.insertInto('users').values(row).execute();
    },

    async updateUserRole(userId: string, role: Role) {
      await db.updateTable('users').set({ role }).where('id', '=', userId).execute();
    },

    async insertApiKey(row: Database['api_keys']) {
      await db.insertInto('api_keys').values(row).execute();
    },

    listApiKeys(workspaceId: string) {
      return db
        .selectFrom('api_keys')
        .innerJoin('users', 'users.id', 'api_keys.user_id')
        .select([
          'api_keys.id',
          'api_keys.key_prefix',
          'api_keys.created_at_ms',
          'api_keys.revoked_at_ms',
          'users.name as user_name',
          'users.id as user_id',
          'users.role',
        ])
        .where('api_keys.workspace_id', '=', workspaceId)
        .orderBy('api_keys.created_at_ms')
        .execute();
    },

    async revokeApiKey(workspaceId: string, keyId: string, nowMs: number): Promise<boolean> {
      const result = await db
        .updateTable('api_keys')
        .set({ revoked_at_ms: nowMs })
        .where('workspace_id', '=', workspaceId)
        .where('id', '=', keyId)
        .where('revoked_at_ms', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },

    async countActiveKeys(userId: string): Promise<number> {
      const row = await db
        .selectFrom('api_keys')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('user_id', '=', userId)
        .where('revoked_at_ms', 'is', null)
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },

    /** A key by its id alone, with its workspace's and user's names. */
    locateApiKey(keyId: string) {
      return db
        .selectFrom('api_keys')
        .innerJoin('workspaces', 'workspaces.id', 'api_keys.workspace_id')
        .innerJoin('users', 'users.id', 'api_keys.user_id')
        .select(['api_keys.id', 'api_keys.revoked_at_ms', 'workspaces.name as workspace_name', 'users.name as user_name'])
        .where('api_keys.id', '=', keyId)
        .executeTakeFirst();
    },

    /** The user a key of the workspace belongs to. */
    async apiKeyOwner(workspaceId: string, keyId: string): Promise<string | undefined> {
      const row = await db.selectFrom('api_keys').select('user_id').where('workspace_id', '=', workspaceId).where('id', '=', keyId).executeTakeFirst();
      return row?.user_id;
    },

    async callerByKeyHash(keyHash: string): Promise<(Caller & { keyHash: string }) | undefined> {
      const row = await db
        .selectFrom('api_keys')
        .innerJoin('users', 'users.id', 'api_keys.user_id')
        .select([
          'api_keys.key_hash',
          'api_keys.workspace_id',
          'users.id as user_id',
          'users.name',
          'users.email',
          'users.role',
        ])
        .where('api_keys.key_hash', '=', keyHash)
        .where('api_keys.revoked_at_ms', 'is', null)
        .executeTakeFirst();
      if (!row) return undefined;
      return {
        keyHash: row.key_hash,
        workspaceId: row.workspace_id,
        userId: row.user_id,
        userName: row.name,
        email: row.email,
        role: row.role,
      };
    },

    async countWorkspaces(): Promise<number> {
      const row = await db
        .selectFrom('workspaces')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },
  };
}
