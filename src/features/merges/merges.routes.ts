import * as z from 'zod';

import type { AppContext } from '../../context.js';
import type { Json } from '../../domain/canonical-json.js';
import { deepObjectParam, queryBoolean } from '../../http/query.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import { zBodyMergeABranchIntoATargetBranchV1ConvaiAgentsAgentIdBranchesSourceBranchIdMergePost } from '../../wire/generated/zod.gen.js';
import { zMergePreviewResponseModel } from '../../wire/responses.js';
import type { ResolutionInput } from './merge-plan.js';
import { mergesService } from './merges.service.js';

const TAG = 'merges';
// `branch_id` in the path is the source branch (upstream names it source_branch_id).
const branchParams = z.object({ agent_id: z.string(), branch_id: z.string() });

const resolution = z.union([z.enum(['source', 'target']), z.object({ value: z.json() })]);
const resolutions = z.record(z.string(), resolution).describe(
  'Extension: {path → "source" | "target" | {"value": …}} settles conflicts by hand; paths as in `conflicts[].path` or `overridden_fields`.',
);
/**
 * The same map in a query parameter, in either of two forms: JSON-encoded (`resolutions={"path":"source"}`,
 * how JS SDK users send it through request options) or as deepObject keys
 * (`resolutions[path]=source`, `resolutions[path][value]=…`: how the Python SDK sends a dict). A
 * deepObject value arrives as text: it is read as JSON when it parses as JSON (`42`, `true`, `"42"`,
 * `{"a":1}`), else taken as the string it is (`hello`); nested keys (`[value][a]=1`) give an object.
 */
const resolutionsQuery = deepObjectParam(
  z
    .union([
      z.string().transform((text, ctx) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'resolutions must be a JSON object' });
          return z.NEVER;
        }
      }),
      z.record(z.string(), z.unknown()).transform(fromDeepObject),
    ])
    .pipe(resolutions)
    .optional(),
);

/** A deepObject-encoded resolution map: each `{value: …}` read as described above. */
function fromDeepObject(folded: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(folded).map(([path, resolution]) => [
      path,
      typeof resolution === 'object' && resolution !== null && !Array.isArray(resolution) && 'value' in resolution
        ? { ...resolution, value: deepObjectValue((resolution as { value: unknown }).value) }
        : resolution,
    ]),
  );
}

function deepObjectValue(value: unknown): unknown {
  if (typeof value === 'string') {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return value;
    }
  }
  if (Array.isArray(value)) return value.map(deepObjectValue);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, deepObjectValue(inner)]));
  }
  return value;
}

const mergeResult = z.object({
  version_id: z.string(),
  target_branch_id: z.string(),
  merged_from_version_id: z.string(),
  source_archived: z.boolean(),
  moved_traffic_percentage: z.number(),
  overridden_fields: z.array(z.string()),
});

export function mergeRoutes(context: AppContext): RouteDefinition[] {
  const merges = mergesService(context);
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/:agent_id/branches/:branch_id/merge-preview',
      operationId: 'merge_preview_route',
      summary: 'Preview Merged Configuration',
      description:
        'Returns exactly the agent that merging the source branch into `target_branch_id` would produce, with ' +
        '`overridden_fields`, `conflicts` and `source_identical_to_target` (true iff the merge would be refused as a ' +
        'no-op). Changes nothing. Extensions: `resolutions` (JSON, or deepObject keys `resolutions[path]=source`) previews hand-settled conflicts; the response also ' +
        'has `target_version_id` (pass it back as `expected_target_version_id`) and `merge_base_version_id`.',
      tag: TAG,
      permission: 'read',
      params: branchParams,
      query: z.object({ target_branch_id: z.string(), force: queryBoolean(false), resolutions: resolutionsQuery }),
      example: {
        params: { agent_id: 'agentId', branch_id: 'branchId' },
        query: (ids) => ({ target_branch_id: ids.mainBranchId }),
        queryIds: { target_branch_id: { kind: 'branch', role: 'selects' } },
      },
      responses: { 200: zMergePreviewResponseModel },
      handler: async ({ caller, params, query, reply }) => {
        reply.type('application/json');
        return merges.previewMerge(caller, params.agent_id, params.branch_id, query.target_branch_id, query.force, query.resolutions as ResolutionInput | undefined);
      },
    }),

    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/branches/:branch_id/merge',
      operationId: 'merge_branch_into_target',
      summary: 'Merge A Branch Into A Target Branch',
      description:
        'Merges the source branch into `target_branch_id` (any non-archived branch of the agent): one new version on ' +
        'the target. By default archives the source and moves its live traffic to the target (a deployment with ' +
        'source "branch_merge"). 409 `no_new_changes_to_merge`, `branch_already_merged`. Extensions (body or query): ' +
        '`resolutions`, `expected_target_version_id` (409 `concurrent_modification` when the target moved).',
      tag: TAG,
      permission: 'write',
      params: branchParams,
      query: z.object({
        target_branch_id: z.string(),
        expected_target_version_id: z.string().optional(),
        resolutions: resolutionsQuery,
      }),
      body: zBodyMergeABranchIntoATargetBranchV1ConvaiAgentsAgentIdBranchesSourceBranchIdMergePost.extend({
        resolutions: resolutions.optional(),
        expected_target_version_id: z.string().optional(),
      }),
      example: {
        params: { agent_id: 'agentId', branch_id: 'branchId' },
        query: (ids) => ({ target_branch_id: ids.mainBranchId }),
        body: () => ({ archive_source_branch: false }),
        references: (ids) => ({
          query: { expected_target_version_id: ids.mainVersionId },
          body: { expected_target_version_id: ids.mainVersionId },
        }),
        queryIds: {
          target_branch_id: { kind: 'branch', role: 'selects' },
          expected_target_version_id: { kind: 'version', role: 'expects' },
        },
      },
      responses: { 200: mergeResult },
      handler: ({ caller, params, query, body }) =>
        merges.merge(caller, params.agent_id, params.branch_id, query.target_branch_id, {
          force: body.force,
          archiveSourceBranch: body.archive_source_branch,
          resolutions: (body.resolutions ?? query.resolutions) as Record<string, 'source' | 'target' | { value: Json }> | undefined,
          resolutionsIn: body.resolutions === undefined && query.resolutions !== undefined ? 'query' : 'body',
          expectedTargetVersionId: body.expected_target_version_id ?? query.expected_target_version_id,
        }),
    }),

    defineRoute({
      method: 'GET',
      url: '/v1/convai/agents/:agent_id/branches/:branch_id/rebase-preview',
      operationId: 'rebase_preview_route',
      summary: 'Preview Rebased Configuration',
      description:
        "Returns the agent that rebasing the branch onto main's head would produce (the branch's value wins conflicts), " +
        'with the conflicts; `source_identical_to_target` is true when the rebase would be refused. Changes nothing.',
      tag: TAG,
      permission: 'read',
      params: branchParams,
      example: { params: { agent_id: 'agentId', branch_id: 'branchId' } },
      responses: { 200: zMergePreviewResponseModel },
      handler: async ({ caller, params, reply }) => {
        reply.type('application/json');
        return merges.previewRebase(caller, params.agent_id, params.branch_id);
      },
    }),

    defineRoute({
      method: 'POST',
      url: '/v1/convai/agents/:agent_id/branches/:branch_id/rebase',
      operationId: 'rebase_branch_onto_main',
      summary: 'Rebase A Branch Onto Main',
      description:
        "Rebases the branch onto main's head: a new version on the branch with main's changes, keeping the branch's " +
        'value on conflicts. 409 `cannot_rebase_main`, `branch_already_up_to_date`.',
      tag: TAG,
      permission: 'write',
      params: branchParams,
      example: { params: { agent_id: 'agentId', branch_id: 'branchId' } },
      responses: {
        200: z.object({ version_id: z.string(), branch_id: z.string(), rebased_onto_version_id: z.string(), overridden_fields: z.array(z.string()) }),
      },
      handler: ({ caller, params }) => merges.rebase(caller, params.agent_id, params.branch_id),
    }),
  ];
}
