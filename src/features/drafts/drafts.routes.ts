import * as z from 'zod';

import type { AppContext } from '../../context.js';
import { type ConfigSectionName, configSectionsOf } from '../../domain/sections.js';
import type { JsonObject } from '../../domain/canonical-json.js';
import type { RouteExample } from '../../http/route-example.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import { CONFIG_BODIES } from '../../wire/request-bodies.js';
import { draftsService } from './drafts.service.js';

const TAG = 'drafts';
const params = z.object({ agent_id: z.string() });
const query = z.object({ branch_id: z.string() });

/** Every draft route names the caller's draft by agent and `branch_id`. */
const DRAFT_EXAMPLE: RouteExample = {
  params: { agent_id: 'agentId' },
  query: (ids) => ({ branch_id: ids.branchId }),
  queryIds: { branch_id: { kind: 'branch', role: 'selects' } },
};

export function draftRoutes(context: AppContext): RouteDefinition[] {
  const drafts = draftsService(context);
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/:agent_id/drafts',
      operationId: 'get_agent_draft_route',
      summary: 'Get Agent Draft (extension)',
      description:
        "Extension (not in the ElevenLabs API, which can save and discard a draft but not read it back): the caller's " +
        'draft on `branch_id`, `draft: null` when they have none. `based_on_version_id` is the branch head it was saved ' +
        'on; `is_behind_tip` is true when a version landed on the branch since (as `draft_is_behind_tip` on branches).',
      tag: TAG,
      permission: 'read',
      extension: true,
      params,
      query,
      example: DRAFT_EXAMPLE,
      responses: {
        200: z.object({
          branch_id: z.string(),
          head_version_id: z.string(),
          draft: z
            .object({
              draft_created_at: z.int(),
              based_on_version_id: z.string().nullable(),
              is_behind_tip: z.boolean(),
              name: z.string(),
              tags: z.array(z.string()),
              conversation_config: z.json(),
              platform_settings: z.json(),
              workflow: z.json(),
            })
            .nullable(),
        }),
      },
      handler: ({ caller, params, query }) => drafts.get(caller, params.agent_id, query.branch_id),
    }),

    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/drafts',
      operationId: 'create_agent_draft_route',
      summary: 'Create Agent Draft',
      description:
        "Stores the caller's draft (a full config snapshot) on `branch_id`, replacing theirs. Drafts are per user and " +
        'per branch; a commit by that user on the branch, or a merge or rebase landing on it, discards them. 400 ' +
        "`procedure_validation_failed` when the caller's procedures on the branch are not valid with this config.",
      tag: TAG,
      permission: 'write',
      params,
      query,
      body: CONFIG_BODIES.saveDraft,
      example: {
        params: { agent_id: 'agentId' },
        query: (ids) => ({ branch_id: ids.branchId }),
        body: () => ({ conversation_config: { agent: { first_message: 'draft' } }, platform_settings: {}, workflow: {}, name: 'Draft' }),
        queryIds: { branch_id: { kind: 'branch', role: 'selects' } },
      },
      responses: { 200: z.object({ branch_id: z.string(), draft_created_at: z.int() }) },
      handler: ({ caller, params, query, body }) =>
        drafts.save(caller, params.agent_id, query.branch_id, {
          // The config sections, as the registry lists them (domain/sections.ts).
          ...(configSectionsOf(body) as Record<ConfigSectionName, JsonObject>),
          name: body.name,
          tags: body.tags,
        }),
    }),

    defineRoute({
      method: 'DELETE',
      url: '/v1/convai/agents/:agent_id/drafts',
      operationId: 'delete_agent_draft_route',
      summary: 'Delete Agent Draft',
      description: "Discards the caller's draft on `branch_id` (200 whether or not there was one; `discarded` tells).",
      tag: TAG,
      permission: 'write',
      params,
      query,
      example: DRAFT_EXAMPLE,
      responses: { 200: z.object({ branch_id: z.string(), discarded: z.boolean() }) },
      handler: ({ caller, params, query }) => drafts.discard(caller, params.agent_id, query.branch_id),
    }),
  ];
}
