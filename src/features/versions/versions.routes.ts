import * as z from 'zod';

import type { AppContext } from '../../context.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import { zAgentVersionMetadata } from '../../wire/responses.js';
import { versionsService } from './versions.service.js';

export function versionRoutes(context: AppContext): RouteDefinition[] {
  const versions = versionsService(context);
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/:agent_id/versions/:version_id',
      operationId: 'get_version_metadata_route',
      summary: 'Get Agent Version Metadata',
      description: 'Get metadata for a specific agent version. Read its config with `GET agent?version_id=`.',
      tag: 'versions',
      permission: 'read',
      params: z.object({ agent_id: z.string(), version_id: z.string() }),
      responses: { 200: zAgentVersionMetadata },
      handler: ({ caller, params }) => versions.getMetadata(caller, params.agent_id, params.version_id),
    }),
  ];
}
