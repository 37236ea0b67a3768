import * as z from 'zod';

import type { AppContext } from '../../context.js';
import type { JsonObject } from '../../domain/canonical-json.js';
import { type ConfigSectionName, configSectionsOf } from '../../domain/sections.js';
import { queryBoolean, queryInteger, queryStringList } from '../../http/query.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import {
  zAgentSummaryBatchSuccessfulResponseModel,
  zBatchFailureResponseModel,
  zBodyDuplicateAgentV1ConvaiAgentsAgentIdDuplicatePost,
} from '../../wire/generated/zod.gen.js';
import { CONFIG_BODIES, MAX_AGENT_NAME } from '../../wire/request-bodies.js';
import { zCreateAgentResponseModel, zGetAgentResponseModel, zGetAgentsPageResponseModel } from '../../wire/responses.js';
import type { ConfigChanges } from './config-changes.js';
import { agentsService } from './agents.service.js';

const agentParams = z.object({ agent_id: z.string() });
const TAG = 'agents';

const agentName = z.string().max(MAX_AGENT_NAME).nullish();

export function agentRoutes(context: AppContext): RouteDefinition[] {
  const agents = agentsService(context);
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/create',
      operationId: 'create_agent_route',
      summary: 'Create Agent',
      description: 'Create an agent from a config object. Creates its main branch and version 1.',
      tag: TAG,
      permission: 'write',
      query: z.object({ enable_versioning: queryBoolean(true).describe('Deprecated: all agents are versioned. This parameter is ignored.') }),
      body: CONFIG_BODIES.createAgent,
      example: {
        body: () => ({ conversation_config: { agent: { prompt: { prompt: 'hi' } } }, name: 'A' }),
      },
      responses: { 200: zCreateAgentResponseModel },
      handler: ({ caller, body }) =>
        agents.create(caller, {
          // The config sections, as the registry lists them (domain/sections.ts).
          ...(configSectionsOf(body) as Pick<ConfigChanges, ConfigSectionName> & { conversation_config: JsonObject }),
          name: body.name,
          tags: body.tags,
        }),
    }),

    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents',
      operationId: 'get_agents_route',
      summary: 'List Agents',
      description: 'Returns a list of your agents and their metadata.',
      tag: TAG,
      permission: 'read',
      query: z.object({
        page_size: queryInteger({ min: 1, max: 100, fallback: 30 }),
        search: z.string().max(1_000).optional(),
        archived: queryBoolean(false),
        show_only_owned_agents: queryBoolean(false),
        created_by_user_id: z.string().optional(),
        tags: queryStringList(),
        sort_direction: z.enum(['asc', 'desc']).default('desc'),
        sort_by: z.enum(['name', 'created_at', 'call_count_7d']).optional(),
        cursor: z.string().optional(),
      }),
      example: {
        references: (ids) => ({ query: { created_by_user_id: ids.reviewerUserId } }),
        queryIds: { created_by_user_id: { kind: 'user', role: 'filters' } },
      },
      responses: { 200: zGetAgentsPageResponseModel },
      handler: ({ caller, query }) =>
        agents.list(caller, {
          pageSize: query.page_size,
          cursor: query.cursor,
          search: query.search,
          archived: query.archived,
          tags: query.tags,
          createdByUserId: query.created_by_user_id,
          showOnlyOwnedAgents: query.show_only_owned_agents,
          sortBy: query.sort_by,
          sortDirection: query.sort_direction,
        }),
    }),

    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/summaries',
      operationId: 'get_agent_summaries_route',
      summary: 'Get Agent Summaries',
      description: 'Returns summaries for the specified agents (at most 100), keyed by agent id.',
      tag: TAG,
      permission: 'read',
      query: z.object({ agent_ids: queryStringList().pipe(z.array(z.string()).max(100).optional()) }),
      example: {
        references: (ids) => ({ query: { agent_ids: ids.agentId } }),
        queryIds: { agent_ids: { kind: 'agent', role: 'filters' } },
      },
      responses: {
        200: z.record(z.string(), z.union([zAgentSummaryBatchSuccessfulResponseModel, zBatchFailureResponseModel])),
      },
      handler: ({ caller, query }) => agents.summaries(caller, query.agent_ids ?? []),
    }),

    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/:agent_id',
      operationId: 'get_agent_route',
      summary: 'Get Agent',
      quiet: true,
      description:
        "Retrieve config for an agent: main's head, a branch's head (`branch_id`) or a version (`version_id`). " +
        'When both are given the version must be on that branch (else 422). Extension: `conversation_id` or ' +
        '`routing_key` returns the branch head the active deployment routes it to.',
      tag: TAG,
      permission: 'read',
      params: agentParams,
      query: z
        .object({
          version_id: z.string().optional(),
          branch_id: z.string().optional(),
          conversation_id: z
            .string()
            .max(1_000)
            .optional()
            .describe(
              'Extension: the config the active deployment routes this conversation to (sticky while the split stands). ' +
                'Ignored when branch_id or version_id pins the conversation.',
            ),
          routing_key: z
            .string()
            .max(1_000)
            .optional()
            .describe('Extension: like conversation_id, for stickiness per caller (a phone number, a user id).'),
        })
        .refine((query) => query.conversation_id === undefined || query.routing_key === undefined, {
          message: 'Give conversation_id or routing_key, not both',
          path: ['routing_key'],
        }),
      example: {
        params: { agent_id: 'agentId' },
        references: (ids) => ({ query: { branch_id: ids.branchId, version_id: ids.branchVersionId } }),
        queryIds: { version_id: { kind: 'version', role: 'selects' }, branch_id: { kind: 'branch', role: 'selects' } },
      },
      responses: { 200: zGetAgentResponseModel },
      handler: async ({ caller, params, query, reply }) => {
        reply.type('application/json');
        return agents.get(caller, params.agent_id, {
          versionId: query.version_id,
          branchId: query.branch_id,
          routingKey: query.conversation_id ?? query.routing_key,
        });
      },
    }),

    defineRoute({
      method: 'PATCH',
      url: '/v1/convai/agents/:agent_id',
      operationId: 'patch_agent_settings_route',
      summary: 'Patches An Agent Settings',
      description:
        'Commits a new version to a branch (main unless `branch_id`). JSON Merge Patch for conversation_config and ' +
        'platform_settings; workflow replaces the whole workflow. A body that changes nothing makes no version. ' +
        "Publishes the caller's procedure drafts on the branch (or the `procedures` map, when given); 400 " +
        '`procedure_validation_failed` when a procedure of the result is invalid. ' +
        'Extension: `expected_version_id` → 409 concurrent_modification when the branch head moved.',
      tag: TAG,
      permission: 'write',
      params: agentParams,
      query: z.object({
        enable_versioning_if_not_enabled: queryBoolean(true).describe('Deprecated: all agents are versioned. This parameter is ignored.'),
        branch_id: z.string().optional(),
        expected_version_id: z.string().optional().describe('Extension: the head version this commit was made against.'),
      }),
      body: CONFIG_BODIES.updateAgent,
      example: {
        params: { agent_id: 'agentId' },
        body: () => ({ name: 'Renamed', version_description: 'rename' }),
        // The head of the branch committed to: the one named, else main.
        references: (ids, sent) => ({
          query: { branch_id: ids.branchId, expected_version_id: sent('branch_id') ? ids.branchVersionId : ids.mainVersionId },
        }),
        queryIds: { branch_id: { kind: 'branch', role: 'selects' }, expected_version_id: { kind: 'version', role: 'expects' } },
      },
      responses: { 200: zGetAgentResponseModel },
      handler: async ({ caller, params, query, body, reply }) => {
        reply.type('application/json');
        return agents.update(
          caller,
          params.agent_id,
          { branchId: query.branch_id, expectedVersionId: query.expected_version_id, description: body.version_description },
          {
            // The config sections, as the registry lists them (domain/sections.ts).
            ...(configSectionsOf(body) as Pick<ConfigChanges, ConfigSectionName>),
            name: body.name,
            tags: body.tags,
          },
          body.procedures,
        );
      },
    }),

    defineRoute({
      method: 'DELETE',
      url: '/v1/convai/agents/:agent_id',
      operationId: 'delete_agent_route',
      summary: 'Delete Agent',
      description: 'Deletes the agent with all its branches, versions and drafts.',
      tag: TAG,
      permission: 'write',
      params: agentParams,
      example: { params: { agent_id: 'agentId' } },
      responses: { 204: z.null() },
      handler: async ({ caller, params, reply }) => {
        await agents.delete(caller, params.agent_id);
        reply.code(204);
        return null;
      },
    }),

    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/duplicate',
      operationId: 'duplicate_agent_route',
      summary: 'Duplicate Agent',
      description:
        'Creates a new agent with a copy of every unarchived branch at its head; no history, drafts or deployments. ' +
        'Without `name`, the copy is named "<name> (copy)", the name shortened to keep it within 512 characters.',
      tag: TAG,
      permission: 'write',
      params: agentParams,
      body: zBodyDuplicateAgentV1ConvaiAgentsAgentIdDuplicatePost.extend({ name: agentName }),
      example: {
        params: { agent_id: 'agentId' },
        body: () => ({ name: 'Copy' }),
      },
      responses: { 200: zCreateAgentResponseModel },
      handler: ({ caller, params, body }) => agents.duplicate(caller, params.agent_id, body?.name),
    }),
  ];
}
