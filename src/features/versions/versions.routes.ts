import * as z from 'zod';

import type { AppContext } from '../../context.js';
import { queryInteger } from '../../http/query.js';
import { SECTION_NAMES } from '../../domain/sections.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import { zAgentVersionMetadata } from '../../wire/responses.js';
import { versionsService } from './versions.service.js';
import { versionMetadataWire } from './versions.wire.js';

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
      example: { params: { agent_id: 'agentId', version_id: 'mainVersionId' } },
      responses: { 200: zAgentVersionMetadata },
      handler: async ({ caller, params }) => versionMetadataWire(await versions.getMetadata(caller, params.agent_id, params.version_id), caller),
    }),

    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/:agent_id/branches/:branch_id/versions',
      operationId: 'list_branch_versions_route',
      summary: 'List Branch Versions (extension)',
      description:
        "Extension (not in the ElevenLabs API): a branch's versions newest first, as AgentVersionMetadata, with cursor " +
        'pagination (`cursor` from `next_cursor`; `page_size` 1–100, default 30).',
      tag: 'versions',
      permission: 'read',
      extension: true,
      params: z.object({ agent_id: z.string(), branch_id: z.string() }),
      query: z.object({ page_size: queryInteger({ min: 1, max: 100, fallback: 30 }), cursor: z.string().optional() }),
      example: { params: { agent_id: 'agentId', branch_id: 'branchId' } },
      responses: { 200: z.object({ versions: z.array(zAgentVersionMetadata), has_more: z.boolean(), next_cursor: z.string().nullable() }) },
      handler: async ({ caller, params, query }) => {
        const page = await versions.history(caller, params.agent_id, params.branch_id, query.page_size, query.cursor);
        return {
          versions: page.versions.map((authored) => versionMetadataWire(authored, caller)),
          has_more: page.hasMore,
          next_cursor: page.nextCursor,
        };
      },
    }),

    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/:agent_id/versions',
      operationId: 'list_agent_versions_route',
      summary: 'List Agent Versions (extension)',
      description:
        "Extension (not in the ElevenLabs API): the agent's versions on every branch, newest first (by commit time; a " +
        'version is always listed above the versions it descends from), as AgentVersionMetadata with `parents`, so a ' +
        'client can draw the version graph. Cursor pagination (`cursor` from `next_cursor`; `page_size` 1–100, default 30).',
      tag: 'versions',
      permission: 'read',
      extension: true,
      params: z.object({ agent_id: z.string() }),
      query: z.object({ page_size: queryInteger({ min: 1, max: 100, fallback: 30 }), cursor: z.string().optional() }),
      example: { params: { agent_id: 'agentId' } },
      responses: { 200: z.object({ versions: z.array(zAgentVersionMetadata), has_more: z.boolean(), next_cursor: z.string().nullable() }) },
      handler: async ({ caller, params, query }) => {
        const page = await versions.agentHistory(caller, params.agent_id, query.page_size, query.cursor);
        return {
          versions: page.versions.map((authored) => versionMetadataWire(authored, caller)),
          has_more: page.hasMore,
          next_cursor: page.nextCursor,
        };
      },
    }),

    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/:agent_id/diff',
      operationId: 'diff_agent_versions_route',
      summary: 'Diff Two Versions (extension)',
      description:
        'Extension (not in the ElevenLabs API): what changed from `from_version_id` to `to_version_id` (any two versions ' +
        'of the agent), path by path with before and after values. Paths follow the merge: relative to their section, ' +
        'arrays of keyed objects element by element (`agent.prompt.tools[id=weather].description`).',
      tag: 'versions',
      permission: 'read',
      extension: true,
      params: z.object({ agent_id: z.string() }),
      query: z.object({ from_version_id: z.string(), to_version_id: z.string() }),
      example: {
        params: { agent_id: 'agentId' },
        query: (ids) => ({ from_version_id: ids.mainVersionId, to_version_id: ids.branchVersionId }),
        queryIds: { from_version_id: { kind: 'version', role: 'selects' }, to_version_id: { kind: 'version', role: 'selects' } },
      },
      responses: {
        200: z.object({
          from_version_id: z.string(),
          to_version_id: z.string(),
          changes: z.array(
            z.object({
              section: z.enum(SECTION_NAMES),
              path: z.string(),
              before: z.json().nullable(),
              after: z.json().nullable(),
              kind: z.enum(['added', 'removed', 'changed']),
            }),
          ),
        }),
      },
      handler: ({ caller, params, query }) => versions.diff(caller, params.agent_id, query.from_version_id, query.to_version_id),
    }),
  ];
}
