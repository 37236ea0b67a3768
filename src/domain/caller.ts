// Who is asking, and what their role lets them reach. No dependencies: the HTTP layer checks these
// rules for every route, the services for data-dependent ones, and any way of signing in (API keys
// today, a dashboard session later) produces the same `Caller`.

export type Role = 'admin' | 'editor' | 'commenter' | 'viewer';

export const ROLES: readonly Role[] = ['admin', 'editor', 'commenter', 'viewer'];

export interface Caller {
  workspaceId: string;
  userId: string;
  userName: string;
  email: string;
  role: Role;
}

/**
 * What a caller needs to reach a route at all. Data-dependent rules (protected branches)
 * are the services' business. `public` routes need no key.
 */
export type Permission = 'public' | 'read' | 'comment' | 'write' | 'admin';

const RANK: Record<Role, number> = { viewer: 0, commenter: 1, editor: 2, admin: 3 };
const NEEDED: Record<Exclude<Permission, 'public'>, number> = { read: 0, comment: 1, write: 2, admin: 3 };

export function roleAllows(role: Role, permission: Permission): boolean {
  return permission === 'public' || RANK[role] >= NEEDED[permission];
}
