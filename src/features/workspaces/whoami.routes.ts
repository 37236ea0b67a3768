import * as z from 'zod';

import type { AppContext } from '../../context.js';
import { ROLES } from '../../domain/caller.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import { whoamiService } from './whoami.service.js';

export const zWhoamiResponse = z.object({
  user_id: z.string(),
  user_name: z.string(),
  email: z.string().describe('Empty when the user has none.'),
  workspace_id: z.string(),
  workspace_name: z.string(),
  role: z.enum(ROLES as [string, ...string[]]),
});

export function whoamiRoutes(context: AppContext): RouteDefinition[] {
  const whoami = whoamiService(context);
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/convai/whoami',
      operationId: 'get_whoami_route',
      summary: 'Who Am I (extension)',
      description:
        "Extension (not in the ElevenLabs API): the user, workspace and role of the caller's API key. Upstream's `GET /v1/user` " +
        'requires subscription and onboarding fields this server has no truthful value for, so the dashboard signs in with this.',
      tag: 'workspaces',
      permission: 'read',
      extension: true,
      example: {},
      responses: { 200: zWhoamiResponse },
      handler: async ({ caller }) => {
        const { workspaceName } = await whoami.identify(caller);
        return {
          user_id: caller.userId,
          user_name: caller.userName,
          email: caller.email,
          workspace_id: caller.workspaceId,
          workspace_name: workspaceName,
          role: caller.role,
        };
      },
    }),
  ];
}
