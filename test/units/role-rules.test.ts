import { describe, expect, it } from 'vitest';

import { type Permission, type Role, roleAllows } from '../../src/domain/caller.js';
import { roleCanWriteBranch } from '../../src/features/branches/branch-access.js';

// The two role rules every request goes through (decisions.md D22), as whole tables: which role reaches
// which route permission, and who may write to a branch of each protection.

const ROLES: Role[] = ['viewer', 'commenter', 'editor', 'admin'];

describe('roleAllows', () => {
  it.each<[Permission, Role[]]>([
    ['public', ['viewer', 'commenter', 'editor', 'admin']],
    ['read', ['viewer', 'commenter', 'editor', 'admin']],
    ['comment', ['commenter', 'editor', 'admin']],
    ['write', ['editor', 'admin']],
    ['admin', ['admin']],
  ])('%s is for %j', (permission, allowed) => {
    expect(ROLES.filter((role) => roleAllows(role, permission))).toEqual(allowed);
  });
});

describe('roleCanWriteBranch', () => {
  it.each<['writer_perms_required' | 'admin_perms_required', (Role | undefined)[]]>([
    ['writer_perms_required', ['editor', 'admin']],
    ['admin_perms_required', ['admin']],
  ])('a %s branch is written by %j', (protection_status, allowed) => {
    expect([...ROLES, undefined].filter((role) => roleCanWriteBranch(role, { protection_status }))).toEqual(allowed);
  });
});
