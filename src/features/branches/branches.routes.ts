import * as z from 'zod';

import type { AppContext } from '../../context.js';
import { type ConfigSectionName, configSectionsOf } from '../../domain/sections.js';
import type { ConfigChanges } from '../agents/config-changes.js';
import { queryBoolean, queryInteger } from '../../http/query.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import {
  zAgentBranchSummary,
  zBodyUpdateAgentBranchV1ConvaiAgentsAgentIdBranchesBranchIdPatch,
} from '../../wire/generated/zod.gen.js';
import { CONFIG_BODIES } from '../../wire/request-bodies.js';
import { zAgentBranchResponse, zCreateAgentBranchResponseModel, zListResponseAgentBranchSummary } from '../../wire/responses.js';
import { agentsService } from '../agents/agents.service.js';
import { zGetAgentResponseModel } from '../../wire/responses.js';
import { versionMetadataWire } from '../versions/versions.wire.js';
import { accessInfo } from '../workspaces/user-directory.js';
import type { Caller } from '../../domain/caller.js';
import { type BranchDetail, type BranchSummary, branchesService } from './branches.service.js';
import type { BranchRow } from './branches.store.js';

/**
 * Upstream's single-branch response plus `merged_into_branch_id` (extension: upstream shows it only
 * in the list). The official SDK keeps unknown keys of this response, so it still parses.
 */
const branchResponse = zAgentBranchResponse.extend({
  merged_into_branch_id: z
    .string()
    .nullable()
    .describe('Extension: the branch this one was last merged into (as in the branch list), or null.'),
});

/** Upstream's `AgentBranchSummary` fields of a branch. */function branchBasics(branch: BranchRow) {
  return {
    id: branch.id,
    name: branch.name,
    agent_id: branch.agent_id,
    description: branch.description,
    created_at: Math.floor(branch.created_at_ms / 1000),
    last_committed_at: Math.floor(branch.last_committed_at_ms / 1000),
    is_archived: branch.is_archived === 1,
    protection_status: branch.protection_status,
    auto_rebase: branch.auto_rebase === 1,
  };
}

/** The list's items, as `caller` sees them (upstream's `AgentBranchSummary` plus `merged_into_branch_id`). */
function branchSummaryWire({ branch, creator, liveShare, draft, commitStatus }: BranchSummary, caller: Caller) {
  return {
    ...branchBasics(branch),
    access_info: accessInfo(creator, caller),
    current_live_percentage: liveShare,
    parent_branch_id: branch.parent_branch_id,
    draft_exists: draft !== undefined,
    draft_created_at: draft ? Math.floor(draft.createdAtMs / 1000) : null,
    draft_is_behind_tip: draft ? draft.isBehindTip : false,
    calls_7d: 0,
    // Null when not asked for (`include_commit_status`), as upstream.
    commits_ahead: commitStatus?.ahead ?? null,
    commits_behind: commitStatus?.behind ?? null,
    merged_into_branch_id: branch.merged_into_branch_id,
    // Extension: the head, so a client can compare or diff a branch without reading it on its own.
    head_version_id: branch.head_version_id,
    head_seq_no_in_branch: branch.head_seq_no,
  };
}

/** `branchResponse` of a branch, as `caller` sees it. */
function branchWire({ branch, creator, liveShare, parent, recentVersions }: BranchDetail, caller: Caller) {
  return {
    ...branchBasics(branch),
    access_info: accessInfo(creator, caller),
    current_live_percentage: liveShare,
    parent_branch: parent ? { id: parent.id, name: parent.name } : null,
    most_recent_versions: recentVersions.map((authored) => versionMetadataWire(authored, caller)),
    // Extension (the list has it upstream; the single branch did not): where it was merged.
    merged_into_branch_id: branch.merged_into_branch_id,
  };
}

/** Upstream's branch list, its items with their head (extension; the official SDK keeps unknown keys). */
const branchListResponse = zListResponseAgentBranchSummary.extend({
  results: z.array(
    zAgentBranchSummary.extend({
      head_version_id: z.string().describe("Extension: the id of the branch's newest version."),
      head_seq_no_in_branch: z.int().describe("Extension: that version's `seq_no_in_branch`."),
    }),
  ),
});

const TAG = 'branches';
const agentParams = z.object({ agent_id: z.string() });
const branchParams = z.object({ agent_id: z.string(), branch_id: z.string() });

export function branchRoutes(context: AppContext): RouteDefinition[] {
  const branches = branchesService(context);
  const agents = agentsService(context);
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/:agent_id/branches',
      operationId: 'get_branches_route',
      summary: 'List Agent Branches',
      description:
        'Returns a list of branches an agent has. `limit` accepts 1 (upstream declares exclusiveMinimum 1). ' +
        "`draft_exists`, `draft_created_at` and `draft_is_behind_tip` describe the caller's own draft.",
      tag: TAG,
      permission: 'read',
      params: agentParams,
      query: z.object({
        include_archived: queryBoolean(false),
        limit: queryInteger({ min: 1, max: 100, fallback: 100 }),
        include_commit_status: queryBoolean(false),
      }),
      example: { params: { agent_id: 'agentId' } },
      responses: { 200: branchListResponse },
      handler: async ({ caller, params, query }) => {
        const { total, branches: found } = await branches.list(caller, params.agent_id, {
          includeArchived: query.include_archived,
          limit: query.limit,
          includeCommitStatus: query.include_commit_status,
        });
        return { meta: { total, page: 1, page_size: query.limit }, results: found.map((summary) => branchSummaryWire(summary, caller)) };
      },
    }),

    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/branches',
      operationId: 'create_branch_route',
      summary: 'Create A New Branch',
      description:
        'Create a new branch from a given version of any branch; the optional config changes are applied to its ' +
        'first version (JSON Merge Patch, as for a commit).',
      tag: TAG,
      permission: 'write',
      params: agentParams,
      body: CONFIG_BODIES.createBranch,
      example: {
        params: { agent_id: 'agentId' },
        body: (ids) => ({ parent_version_id: ids.mainVersionId, name: 'Sample branch', description: 'made by a sample request' }),
      },
      responses: { 200: zCreateAgentBranchResponseModel },
      handler: ({ caller, params, body }) =>
        branches.create(caller, params.agent_id, {
          parent_version_id: body.parent_version_id,
          name: body.name,
          description: body.description,
          include_draft: body.include_draft,
          // The config sections, as the registry lists them (domain/sections.ts).
          ...(configSectionsOf(body) as Pick<ConfigChanges, ConfigSectionName>),
        }),
    }),

    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/:agent_id/branches/:branch_id',
      operationId: 'get_branch_route',
      summary: 'Get Agent Branch',
      description: `Get information about a single agent branch; \`most_recent_versions\` lists up to 20 versions, newest first.`,
      tag: TAG,
      permission: 'read',
      params: branchParams,
      example: { params: { agent_id: 'agentId', branch_id: 'branchId' } },
      responses: { 200: branchResponse },
      handler: async ({ caller, params }) => branchWire(await branches.get(caller, params.agent_id, params.branch_id), caller),
    }),

    defineRoute({
      method: 'PATCH',
      url: '/v1/convai/agents/:agent_id/branches/:branch_id',
      operationId: 'update_branch_route',
      summary: 'Update Agent Branch',
      description:
        'Update agent branch properties such as archiving status and protection level. Changing protection needs ' +
        'admin; only branches at 0% traffic can be archived, main never. Extension: `description`.',
      tag: TAG,
      permission: 'write',
      params: branchParams,
      body: zBodyUpdateAgentBranchV1ConvaiAgentsAgentIdBranchesBranchIdPatch.extend({
        // Closed, unlike most enums: an unknown protection level must not pass as "unprotected".
        protection_status: z.enum(['writer_perms_required', 'admin_perms_required']).nullish(),
        description: z.string().nullish().describe('Extension: a new description (at most 4096 characters).'),
      }),
      example: {
        params: { agent_id: 'agentId', branch_id: 'branchId' },
        body: () => ({ description: 'changed' }),
      },
      responses: { 200: branchResponse },
      handler: async ({ caller, params, body }) =>
        branchWire(
          await branches.update(caller, params.agent_id, params.branch_id, {
            name: body.name,
            description: body.description,
            is_archived: body.is_archived,
            protection_status: body.protection_status,
            auto_rebase: body.auto_rebase,
          }),
          caller,
        ),
    }),
  
    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/branches/:branch_id/restore',
      operationId: 'restore_branch_version_route',
      summary: 'Restore A Version (extension)',
      description:
        'Extension (not in the ElevenLabs API): commits a new version to the branch whose config equals an earlier ' +
        "version's (any version of this agent). Its description says what it restores. Returns the agent at the new head; " +
        'restoring the config the branch already has makes no version.',
      tag: TAG,
      permission: 'write',
      extension: true,
      params: branchParams,
      body: z.object({
        version_id: z.string().describe('The version whose config to restore.'),
        version_description: z.string().max(4096).nullish().describe('Added to the description of the new version.'),
      }),
      example: {
        params: { agent_id: 'agentId', branch_id: 'branchId' },
        body: (ids) => ({ version_id: ids.mainVersionId }),
      },
      responses: { 200: zGetAgentResponseModel },
      handler: async ({ caller, params, body, reply }) => {
        reply.type('application/json');
        return agents.restore(caller, params.agent_id, params.branch_id, body.version_id, body.version_description);
      },
    }),
  ];
}
