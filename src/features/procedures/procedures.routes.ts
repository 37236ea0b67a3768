import * as z from 'zod';

import type { AppContext } from '../../context.js';
import { defineRoute, type RouteDefinition } from '../../http/route.js';
import { proceduresService } from './procedures.service.js';
import {
  CompileProceduresResponseModel,
  CreateProcedureRequestModel,
  CreateProcedureResponseModel,
  ListProceduresResponseModel,
  ProcedureAtVersionResponseModel,
  ProcedureDraftResponseModel,
  UpdateProcedureDraftRequestModel,
} from '../../wire/procedures.js';

/** Upstream answers deletes with any JSON (the SDK reads `unknown`): the procedure's id. */
const DeletedResponse = z.object({ procedure_id: z.string() });

const TAG = 'procedures';
const BASE = '/v1/convai/agents/:agent_id/branches/:branch_id/procedures';
const branchParams = z.object({ agent_id: z.string(), branch_id: z.string() });
const procedureParams = branchParams.extend({ procedure_id: z.string() });
const onBranch = { agent_id: 'agentId', branch_id: 'branchId' } as const;
const onProcedure = { ...onBranch, procedure_id: 'procedureId' } as const;

export function procedureRoutes(context: AppContext): RouteDefinition[] {
  const procedures = proceduresService(context);
  return [
    defineRoute({
      method: 'GET',
      url: BASE,
      operationId: 'list_procedures_route',
      summary: 'List Procedures',
      description:
        "The branch's procedures as the caller sees them: their drafts (`has_draft`, `version_id: null`) over the " +
        "branch head's versions, staged removals left out. `agent_version_id`: the procedures of that agent version. No content.",
      tag: TAG,
      permission: 'read',
      params: branchParams,
      query: z.object({ agent_version_id: z.string().optional() }),
      example: {
        params: onBranch,
        references: (ids) => ({ query: { agent_version_id: ids.branchVersionId } }),
        queryIds: { agent_version_id: { kind: 'version', role: 'selects' } },
      },
      responses: { 200: ListProceduresResponseModel },
      handler: ({ caller, params, query }) => procedures.list(caller, params.agent_id, params.branch_id, query.agent_version_id),
    }),

    defineRoute({
      method: 'POST',
      url: BASE,
      operationId: 'create_procedure_route',
      summary: 'Create Procedure',
      description:
        "Creates a procedure as the caller's draft on the branch (200, not 201); `GET` of its head is 404 until it is " +
        'published with `PATCH agent`. The body may be absent or `null`. `description` is accepted for `trigger`.',
      tag: TAG,
      permission: 'write',
      params: branchParams,
      body: CreateProcedureRequestModel,
      example: {
        params: onBranch,
        body: () => ({ name: 'Refunds', content: 'Ask for the order number, then [tool id="tool_refund"].', type: 'free_form', trigger: 'The caller wants a refund' }),
        references: (ids) => ({ body: { folder_parent_id: ids.procedureId } }),
      },
      responses: { 200: CreateProcedureResponseModel },
      handler: ({ caller, params, body }) =>
        procedures.create(caller, params.agent_id, params.branch_id, body),
    }),

    defineRoute({
      method: 'POST',
      url: `${BASE}/compile`,
      operationId: 'compile_procedures_route',
      summary: 'Compile Procedures',
      description:
        "Legacy dry run: validates the caller's procedures on the branch (their drafts over the head) and returns the " +
        "base workflow (the caller's agent draft's, else the head's). Persists nothing. 400 `{\"errors\": …}` when " +
        'invalid; 400 `no_draft_to_compile` when the caller has no procedure draft there.',
      tag: TAG,
      permission: 'write',
      params: branchParams,
      example: { params: onBranch },
      responses: { 200: CompileProceduresResponseModel },
      handler: ({ caller, params }) => procedures.compile(caller, params.agent_id, params.branch_id),
    }),

    defineRoute({
      method: 'GET',
      url: `${BASE}/:procedure_id`,
      operationId: 'get_procedure_route',
      summary: 'Get Procedure',
      description:
        "A procedure at the branch head, at `version_id` (which wins), or as `agent_version_id` maps it; 404 when that has no version of it.",
      tag: TAG,
      permission: 'read',
      params: procedureParams,
      query: z.object({ version_id: z.string().optional(), agent_version_id: z.string().optional() }),
      example: {
        params: onProcedure,
        references: (ids) => ({ query: { version_id: ids.procedureVersionId, agent_version_id: ids.branchVersionId } }),
        queryIds: { version_id: { kind: 'procedure_version', role: 'selects' }, agent_version_id: { kind: 'version', role: 'selects' } },
      },
      responses: { 200: ProcedureAtVersionResponseModel },
      handler: ({ caller, params, query }) =>
        procedures.get(caller, params.agent_id, params.branch_id, params.procedure_id, { versionId: query.version_id, agentVersionId: query.agent_version_id }),
    }),

    defineRoute({
      method: 'DELETE',
      url: `${BASE}/:procedure_id`,
      operationId: 'remove_procedure_route',
      summary: 'Delete Procedure',
      description:
        "Stages the procedure's removal in the caller's drafts (published by the next `PATCH agent`); a folder goes with " +
        'everything in it. A procedure never published is deleted at once. 409 `procedure_referenced` while a procedure ' +
        'outside what goes references one inside.',
      tag: TAG,
      permission: 'write',
      params: procedureParams,
      example: { params: onProcedure },
      responses: { 200: DeletedResponse },
      handler: ({ caller, params }) => procedures.delete(caller, params.agent_id, params.branch_id, params.procedure_id),
    }),

    defineRoute({
      method: 'GET',
      url: `${BASE}/:procedure_id/draft`,
      operationId: 'get_procedure_draft_route',
      summary: 'Get Procedure Draft',
      description: "The caller's draft of the procedure on the branch, else the branch head's version.",
      tag: TAG,
      permission: 'read',
      params: procedureParams,
      example: { params: onProcedure },
      responses: { 200: ProcedureDraftResponseModel },
      handler: ({ caller, params }) => procedures.getDraft(caller, params.agent_id, params.branch_id, params.procedure_id),
    }),

    defineRoute({
      method: 'PATCH',
      url: `${BASE}/:procedure_id/draft`,
      operationId: 'update_procedure_draft_route',
      summary: 'Update Procedure Draft',
      description:
        "Replaces the caller's draft of the procedure (made if there is none). 400 `procedure_type_cannot_change`. " +
        'A `trigger` that is absent or `null` keeps the stored one; `""` clears it. Steps are validated on publish, not here.',
      tag: TAG,
      permission: 'write',
      params: procedureParams,
      body: UpdateProcedureDraftRequestModel,
      example: {
        params: onProcedure,
        // The example procedure is a folder.
        body: () => ({ name: 'Greetings', content: '', type: 'folder' }),
      },
      responses: { 200: ProcedureDraftResponseModel },
      handler: ({ caller, params, body }) =>
        procedures.updateDraft(caller, params.agent_id, params.branch_id, params.procedure_id, body),
    }),

    defineRoute({
      method: 'DELETE',
      url: `${BASE}/:procedure_id/draft`,
      operationId: 'delete_procedure_draft_route',
      summary: 'Delete Procedure Draft',
      description: "Discards the caller's draft of the procedure; one never published and drafted by nobody else is deleted.",
      tag: TAG,
      permission: 'write',
      params: procedureParams,
      example: { params: onProcedure },
      responses: { 200: DeletedResponse },
      handler: ({ caller, params }) => procedures.discardDraft(caller, params.agent_id, params.branch_id, params.procedure_id),
    }),
  ];
}
