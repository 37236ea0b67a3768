import * as z from 'zod';

import type { AppContext } from '../../context.js';
import { ROLES } from '../../domain/caller.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import { workspacesStore } from './workspaces.store.js';

export function workspaceUserRoutes(context: AppContext): RouteDefinition[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/convai/workspace/users',
      operationId: 'list_workspace_users_route',
      summary: 'List Workspace Users (extension)',
      description:
        "Extension (not in the ElevenLabs API): the users of the caller's workspace, by name, with their roles. Merge " +
        'proposals name reviewers and authors by user id; this is how a client shows names and offers reviewers.',
      tag: 'workspaces',
      permission: 'read',
      extension: true,
      example: {},
      responses: {
        200: z.object({
          users: z.array(z.object({ user_id: z.string(), name: z.string(), email: z.string(), role: z.enum(ROLES as [string, ...string[]]) })),
        }),
      },
      handler: async ({ caller }) => {
        const users = await workspacesStore(context.db).listUsers(caller.workspaceId);
        // By name, then id, compared as code units: the same order on both dialects whatever their collation.
        users.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        return { users: users.map((user) => ({ user_id: user.id, name: user.name, email: user.email, role: user.role })) };
      },
    }),
  ];
}
