import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import type { Kysely } from 'kysely';

import type { Store } from '../../db/connect.js';
import { isUniqueViolation } from '../../db/errors.js';
import type { Database } from '../../db/schema.js';
import type { Caller, Role } from '../../domain/caller.js';
import { writeTransaction } from '../../db/write.js';
import { newId } from '../../domain/ids.js';
import { recordOperatorAction } from '../audit/audit.events.js';
import { workspacesStore } from './workspaces.store.js';

export const DEFAULT_WORKSPACE = 'default';
/** The role of a user created by `keys create` without `--role`. */
export const DEFAULT_ROLE: Role = 'editor';

/**
 * How long a key lookup may be served from memory. Revocations reach the cache through the change
 * feed within milliseconds; this bounds it if a notification is ever missed (decisions.md D16).
 */
const KEY_CACHE_TTL_MS = 1_000;
const KEY_CACHE_MAX_ENTRIES = 10_000;

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

function generateApiKey(): string {
  return `sk_${randomBytes(24).toString('hex')}`;
}

/** Who runs a key or workspace change: the operator's CLI, or the server bootstrapping itself. */
export type OperatorKind = 'cli' | 'system';

export interface CreatedKey {
  keyId: string;
  key: string;
  workspace: string;
  user: string;
  role: Role;
  /** The user's role before this key, when the user existed already (a user's keys share its role). */
  previousRole: Role | null;
  /** The user's active keys, this one included. */
  activeKeys: number;
}

/**
 * A key for an existing user with another role would change the role of every key of that user:
 * only on request (`keys create --change-role`), never as a side effect of issuing a key.
 */
export class RoleChangeRefusedError extends Error {
  constructor(
    readonly userName: string,
    readonly workspace: string,
    readonly currentRole: Role,
    readonly requestedRole: Role,
    readonly activeKeys: number,
  ) {
    super(
      `User "${userName}" in "${workspace}" already exists with role ${currentRole}; a user's keys share its role, so a ` +
        `${requestedRole} key would make all ${activeKeys} of their active key${activeKeys === 1 ? '' : 's'} ${requestedRole}. ` +
        `Nothing was changed. Pass --change-role to change the role of the user and all their keys, or give the new ` +
        `user another name.`,
    );
  }
}

/** Where a key is, for commands that name a key by its id alone (ids are unique across workspaces). */
export interface KeyLocation {
  keyId: string;
  workspace: string;
  userName: string;
  revokedAtMs: number | null;
}

export function workspacesService(storeHandle: Store, now: () => number = Date.now) {
  const db: Kysely<Database> = storeHandle.db;
  const store = workspacesStore(db);
  const keyCache = new Map<string, { caller: Caller | undefined; expiresAt: number }>();
  // The hash of a key the hot path saw lately: hashing is most of its per-request cost. The hash
  // only finds the cache entry; whether the key is valid is still the key cache's answer.
  const recentHashes = new Map<string, string>();
  storeHandle.changes.subscribe((event) => {
    if (event.kind === 'key' || event.kind === 'reset') keyCache.clear();
  });

  async function requireWorkspace(name: string) {
    const workspace = await store.findWorkspaceByName(name);
    if (!workspace) throw new Error(`workspace ${JSON.stringify(name)} does not exist`);
    return workspace;
  }

  /** Key issuing inside a transaction, recorded in the audit log as the operator's. */
  function keysIn(trx: Kysely<Database>, operator: OperatorKind) {
    const inTransaction = workspacesStore(trx);

    async function ensureUser(
      workspaceName: string,
      workspaceId: string,
      userName: string,
      role: Role | undefined,
      changeRole: boolean,
    ): Promise<{ id: string; role: Role; previousRole: Role | null }> {
      const existing = await inTransaction.findUser(workspaceId, userName);
      if (existing) {
        const wanted = role ?? existing.role;
        if (existing.role !== wanted) {
          if (!changeRole) {
            throw new RoleChangeRefusedError(userName, workspaceName, existing.role, wanted, await inTransaction.countActiveKeys(existing.id));
          }
          await inTransaction.updateUserRole(existing.id, wanted);
        }
        return { id: existing.id, role: wanted, previousRole: existing.role };
      }
      role ??= DEFAULT_ROLE;
      const id = newId('user_');
      await inTransaction.insertUser({
        id,
        workspace_id: workspaceId,
        name: userName,
        email: `${userName}@branchwise.local`,
        role,
        created_at_ms: now(),
      });
      return { id, role, previousRole: null };
    }

    return {
      /** `role` undefined: an existing user's own role, else the default; another role needs `changeRole`. */
      async issueKey(workspaceId: string, workspaceName: string, userName: string, requestedRole: Role | undefined, changeRole: boolean, key = generateApiKey()) {
        const user = await ensureUser(workspaceName, workspaceId, userName, requestedRole, changeRole);
        const role = user.role;
        const keyId = newId('key_');
        const at = now();
        await inTransaction.insertApiKey({
          id: keyId,
          workspace_id: workspaceId,
          user_id: user.id,
          key_hash: hashApiKey(key),
          key_prefix: key.slice(0, 7),
          created_at_ms: at,
          revoked_at_ms: null,
        });
        // The key id and the user, never the key, its hash or its prefix.
        await recordOperatorAction(trx, operator, workspaceId, at, {
          action: 'key.create',
          resourceId: keyId,
          details: { key_id: keyId, user_id: user.id, user_name: userName, role, previous_role: user.previousRole, user_created: user.previousRole === null },
        });
        const activeKeys = await inTransaction.countActiveKeys(user.id);
        return { keyId, key, workspace: workspaceName, user: userName, role, previousRole: user.previousRole, activeKeys } satisfies CreatedKey;
      },
    };
  }

  async function createWorkspaceAs(operator: OperatorKind, name: string, presetKey?: string): Promise<CreatedKey> {
    return writeTransaction(storeHandle, async ({ trx }) => {
      const id = newId('ws_');
      const at = now();
      await workspacesStore(trx).insertWorkspace({ id, name, created_at_ms: at });
      await recordOperatorAction(trx, operator, id, at, { action: 'workspace.create', resourceId: id, details: { name } });
      return keysIn(trx, operator).issueKey(id, name, 'admin', 'admin', false, presetKey);
    });
  }

  /** `authenticate`, for a key already hashed. */
  async function callerByKeyHash(keyHash: string): Promise<Caller | undefined> {
    const cached = keyCache.get(keyHash);
    const at = now();
    // Without a live change feed, another process's revocation could go unnoticed: ask the database.
    const cacheable = storeHandle.changes.live;
    if (cacheable && cached && cached.expiresAt > at) return cached.caller;
    const found = await store.callerByKeyHash(keyHash);
    // The row was found by its hash; compare once more in constant time so that no code
    // path ever compares key material with an early-exit equality.
    const caller =
      found && timingSafeEqual(Buffer.from(found.keyHash, 'hex'), Buffer.from(keyHash, 'hex'))
        ? { workspaceId: found.workspaceId, userId: found.userId, userName: found.userName, email: found.email, role: found.role }
        : undefined;
    if (keyCache.size >= KEY_CACHE_MAX_ENTRIES) keyCache.clear();
    if (cacheable) keyCache.set(keyHash, { caller, expiresAt: at + KEY_CACHE_TTL_MS });
    return caller;
  }

  /** `cachedCaller`, for a key already hashed. */
  function cachedCallerByKeyHash(keyHash: string): Caller | undefined {
    if (!storeHandle.changes.live) return undefined;
    const cached = keyCache.get(keyHash);
    return cached && cached.expiresAt > now() ? cached.caller : undefined;
  }

  /** The key's hash, from memory for a key seen lately (hashing is most of the hot path's per-request cost). */
  function recentHashOf(key: string): string {
    let keyHash = recentHashes.get(key);
    if (keyHash === undefined) {
      keyHash = hashApiKey(key);
      if (recentHashes.size >= 1_000) recentHashes.clear();
      recentHashes.set(key, keyHash);
    }
    return keyHash;
  }

  return {
    /**
     * On an empty store: workspace `default`, user `admin` and an admin key (README: Keys, users and workspaces).
     * Returns the key when one was made, so the caller can show it once.
     */
    async bootstrap(presetKey: string | undefined): Promise<CreatedKey | undefined> {
      if ((await store.countWorkspaces()) > 0) return undefined;
      try {
        return await createWorkspaceAs('system', DEFAULT_WORKSPACE, presetKey);
      } catch (error) {
        // Another process starting at the same moment bootstrapped first.
        if (isUniqueViolation(error)) return undefined;
        throw error;
      }
    },

    /** A new workspace with an `admin` user and that user's first key, in one transaction. */
    createWorkspace: (name: string, presetKey?: string): Promise<CreatedKey> => createWorkspaceAs('cli', name, presetKey),

    listWorkspaces: () => store.listWorkspaces(),

    /**
     * A new key for the user, created when missing (with `role`, default editor). An existing user
     * keeps their role: `role` must be theirs or omitted, unless `changeRole` (then every key of the
     * user takes it); otherwise RoleChangeRefusedError and nothing is written.
     */
    async createKey(workspaceName: string, userName: string, role?: Role, options: { changeRole?: boolean } = {}): Promise<CreatedKey> {
      const workspace = await requireWorkspace(workspaceName);
      // A role change of an existing user must reach other processes' key caches too.
      return writeTransaction(storeHandle, async ({ trx, publish }) => {
        publish({ kind: 'key' });
        return keysIn(trx, 'cli').issueKey(workspace.id, workspace.name, userName, role, options.changeRole === true);
      });
    },

    /** The key with this id, in whichever workspace it is. */
    async locateKey(keyId: string): Promise<KeyLocation | undefined> {
      const row = await store.locateApiKey(keyId);
      return row && { keyId: row.id, workspace: row.workspace_name, userName: row.user_name, revokedAtMs: row.revoked_at_ms };
    },

    async listKeys(workspaceName: string) {
      const workspace = await requireWorkspace(workspaceName);
      return store.listApiKeys(workspace.id);
    },

    async revokeKey(workspaceName: string, keyId: string): Promise<boolean> {
      const workspace = await requireWorkspace(workspaceName);
      return writeTransaction(storeHandle, async ({ trx, publish }) => {
        publish({ kind: 'key' });
        const at = now();
        const revoked = await workspacesStore(trx).revokeApiKey(workspace.id, keyId, at);
        if (revoked) {
          const owner = await workspacesStore(trx).apiKeyOwner(workspace.id, keyId);
          await recordOperatorAction(trx, 'cli', workspace.id, at, { action: 'key.revoke', resourceId: keyId, details: { key_id: keyId, user_id: owner ?? null } });
        }
        return revoked;
      });
    },

    authenticate: (key: string): Promise<Caller | undefined> => callerByKeyHash(hashApiKey(key)),

    /** The caller behind a key if it is in the cache and fresh, without any I/O (the hot path). */
    cachedCaller: (key: string): Caller | undefined => (storeHandle.changes.live ? cachedCallerByKeyHash(recentHashOf(key)) : undefined),

    callerByKeyHash,
    cachedCallerByKeyHash,
    recentHashOf,
  };
}

export type WorkspacesService = ReturnType<typeof workspacesService>;
