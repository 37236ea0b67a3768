import type { Kysely } from 'kysely';

import { queryInSlices } from '../../db/in-lists.js';
import type { Database } from '../../db/schema.js';
import type { Caller, Role } from '../../domain/caller.js';
import { LruCache } from '../../domain/lru.js';

export interface UserSummary {
  id: string;
  name: string;
  email: string;
}

/**
 * Names and emails of users, for `access_info`. They never change once created, so they
 * are cached without expiry.
 */
export class UserDirectory {
  private readonly cache = new LruCache<string, UserSummary>(10_000);

  constructor(private readonly db: Kysely<Database>) {}

  async describe(ids: Iterable<string>): Promise<Map<string, UserSummary>> {
    const found = new Map<string, UserSummary>();
    const missing: string[] = [];
    for (const id of new Set(ids)) {
      const cached = this.cache.get(id);
      if (cached) found.set(id, cached);
      else missing.push(id);
    }
    if (missing.length > 0) {
      const rows = await queryInSlices(missing, (slice) => this.db.selectFrom('users').select(['id', 'name', 'email']).where('id', 'in', slice).execute());
      for (const row of rows) {
        this.cache.set(row.id, row);
        found.set(row.id, row);
      }
    }
    return found;
  }
}

/** Upstream's `ResourceAccessInfo`: who made the resource, and the caller's role on it. */
export interface AccessInfo {
  is_creator: boolean;
  creator_name: string;
  creator_email: string;
  role: Role;
  anonymous_access_level_override: null;
  access_source: 'creator' | 'workspace_default';
}

export function accessInfo(creator: UserSummary | undefined, caller: Caller): AccessInfo {
  const isCreator = creator?.id === caller.userId;
  return {
    is_creator: isCreator,
    creator_name: creator?.name ?? 'deleted user',
    creator_email: creator?.email ?? '',
    role: caller.role,
    anonymous_access_level_override: null,
    access_source: isCreator ? 'creator' : 'workspace_default',
  };
}
