import * as z from 'zod';

import {
  MAX_PROCEDURE_CONTENT,
  MAX_PROCEDURE_NAME,
  PROCEDURE_TYPES,
  type ProcedureBody,
  type ProcedureError,
  type ProcedureType,
  procedureReferences,
} from '../domain/procedures.js';
import { InvalidRequestWithDataError, OwnBodyError } from '../errors.js';
import {
  zCompileProceduresResponseModel,
  zCompileProceduresValidationErrorResponseModel,
  zCreateProcedureRequestModel,
  zCreateProcedureResponseModel,
  zListProceduresResponseModel,
  zProcedureAtVersionResponseModel,
  zProcedureDraftResponseModel,
  zProcedureListItemResponseModel,
  zProcedureRefResponseModel,
  zUpdateProcedureDraftRequestModel,
} from './generated/zod.gen.js';

// The procedure routes' wire: request bodies parsed to what the service needs, and the response
// models rendered from a stored ProcedureBody. The generated models come from an older OAS than
// SDK 2.73 (no `folder_parent_id`, no `referenced_*` in lists); the SDK's fields are added here.

// Closed, unlike most enums (decisions.md D1): the type decides how content is read and validated,
// so a type this server does not know cannot be stored. A 422 at `type`, as zod reports it.
const procedureType = z.enum(PROCEDURE_TYPES);

const trigger = z
  .string()
  .nullish()
  .describe('When the agent should use this procedure; "" = a sub-procedure. Omitted or null keeps the stored trigger (empty on create).');
const triggerAlias = z.string().nullish().describe('Alias of `trigger`, used when `trigger` is omitted or null.');

/** `trigger`, else its alias `description`; null = keep the stored one (SDK 2.73; reference: "Trigger semantics"). */
function triggerOf(body: { trigger?: string | null; description?: string | null } | null): string | null {
  return body?.trigger ?? body?.description ?? null;
}

/** A create request, defaults applied. `trigger: null` = none given (stored as ''). */
export interface CreateProcedureRequest {
  name: string;
  content: string;
  type: ProcedureType;
  trigger: string | null;
  folder_parent_id: string | null;
}

/** A draft update: a full replacement of name, content and type. `trigger: null` = keep the stored one. */
export interface UpdateProcedureDraftRequest {
  name: string;
  content: string;
  type: ProcedureType;
  trigger: string | null;
}

/** `POST …/procedures`: every field optional, and the body may be absent or JSON `null` (the CLI sends one). */
export const CreateProcedureRequestModel = zCreateProcedureRequestModel
  .extend({
    name: z.string().max(MAX_PROCEDURE_NAME).nullish(),
    content: z.string().max(MAX_PROCEDURE_CONTENT).nullish(),
    type: procedureType.nullish(),
    trigger,
    description: triggerAlias,
    folder_parent_id: z.string().nullish().describe('Procedure ID of the folder to create this procedure in, or null for root.'),
  })
  .nullable()
  .transform(
    (body): CreateProcedureRequest => ({
      name: body?.name ?? '',
      content: body?.content ?? '',
      type: body?.type ?? 'free_form',
      trigger: triggerOf(body),
      folder_parent_id: body?.folder_parent_id ?? null,
    }),
  );

/** `PATCH …/procedures/{id}/draft`: name, content and type required (a full replacement). */
export const UpdateProcedureDraftRequestModel = zUpdateProcedureDraftRequestModel
  .extend({
    name: z.string().max(MAX_PROCEDURE_NAME),
    content: z.string().max(MAX_PROCEDURE_CONTENT),
    type: procedureType,
    trigger,
    description: triggerAlias,
  })
  .transform(
    (body): UpdateProcedureDraftRequest => ({ name: body.name, content: body.content, type: body.type, trigger: triggerOf(body) }),
  );

// ---------------------------------------------------------------------------------------------
// Responses (schemas for the OpenAPI document; the renderers below build them)

const referencedFields = {
  referenced_tool_ids: z.array(z.string()),
  referenced_kb_ids: z.array(z.string()),
  referenced_procedure_ids: z.array(z.string()),
  referenced_dynamic_variables: z.array(z.string()),
};
const folderParent = { folder_parent_id: z.string().nullable() };

export const ProcedureListItemResponseModel = zProcedureListItemResponseModel.extend({ ...referencedFields, ...folderParent });
export const ListProceduresResponseModel = zListProceduresResponseModel.extend({ procedures: z.array(ProcedureListItemResponseModel) });
export const ProcedureRefResponseModel = zProcedureRefResponseModel.extend({ ...referencedFields, ...folderParent });
export const ProcedureAtVersionResponseModel = zProcedureAtVersionResponseModel.extend(folderParent);
export const ProcedureDraftResponseModel = zProcedureDraftResponseModel.extend(folderParent);
export const CreateProcedureResponseModel = zCreateProcedureResponseModel;
export const CompileProceduresResponseModel = zCompileProceduresResponseModel;
export const CompileProceduresValidationErrorResponseModel = zCompileProceduresValidationErrorResponseModel;

export type ProcedureListItemResponse = z.input<typeof ProcedureListItemResponseModel>;
export type ProcedureRefResponse = z.input<typeof ProcedureRefResponseModel>;
export type ProcedureAtVersionResponse = z.input<typeof ProcedureAtVersionResponseModel>;
export type ProcedureDraftResponse = z.input<typeof ProcedureDraftResponseModel>;

/** `ProcedureRefResponseModel`: a procedure of an agent version (GET agent, merge preview, conflicts). */
export function procedureRefWire(procedureId: string, versionId: string | null, body: ProcedureBody) {
  return {
    procedure_id: procedureId,
    version_id: versionId,
    name: body.name,
    type: body.type,
    trigger: body.trigger,
    ...procedureReferences(body),
    folder_parent_id: body.folder_parent_id,
  } satisfies ProcedureRefResponse;
}

/**
 * `ProcedureListItemResponseModel`: an entry of the list, no content. With the caller's draft,
 * `has_draft` is true, `version_id` null and the fields are the draft's (GUIDE: "version_id … is
 * null exactly when has_draft is true").
 */
export function procedureListItemWire(procedureId: string, versionId: string | null, hasDraft: boolean, body: ProcedureBody) {
  const { procedure_id, version_id, name, type, trigger, folder_parent_id, ...references } = procedureRefWire(procedureId, versionId, body);
  return { procedure_id, version_id, name, type, trigger, has_draft: hasDraft, ...references, folder_parent_id } satisfies ProcedureListItemResponse;
}

/** `ProcedureAtVersionResponseModel`: a procedure version with its content (`version_id` null: never published). */
export function procedureAtVersionWire(procedureId: string, versionId: string | null, body: ProcedureBody) {
  return {
    procedure_id: procedureId,
    version_id: versionId,
    name: body.name,
    content: body.content,
    type: body.type,
    trigger: body.trigger,
    folder_parent_id: body.folder_parent_id,
  } satisfies ProcedureAtVersionResponse;
}

/** `ProcedureDraftResponseModel`: the caller's draft, or the head when they have none. */
export function procedureDraftWire(procedureId: string, body: ProcedureBody) {
  return {
    procedure_id: procedureId,
    name: body.name,
    content: body.content,
    type: body.type,
    trigger: body.trigger,
    folder_parent_id: body.folder_parent_id,
  } satisfies ProcedureDraftResponse;
}

/** The body a request creates: defaults applied, no trigger given = '' (a sub-procedure). */
export function newProcedureBody(request: CreateProcedureRequest): ProcedureBody {
  return { name: request.name, content: request.content, type: request.type, trigger: request.trigger ?? '', folder_parent_id: request.folder_parent_id };
}

/** The body a draft update leaves: a full replacement, except that a null trigger keeps `current`'s, as does its folder. */
export function updatedProcedureBody(current: ProcedureBody, request: UpdateProcedureDraftRequest): ProcedureBody {
  return {
    name: request.name,
    content: request.content,
    type: request.type,
    trigger: request.trigger ?? current.trigger,
    folder_parent_id: current.folder_parent_id,
  };
}

// ---------------------------------------------------------------------------------------------
// Errors

function errorsWire(errors: Record<string, ProcedureError[]>) {
  const wire: Record<string, { path: string; message: string }[]> = {};
  for (const [id, list] of Object.entries(errors)) wire[id] = list.map(({ path, message }) => ({ path, message }));
  return wire;
}

/**
 * Publish and agent-draft save: 400 `procedure_validation_failed`, every error of every procedure
 * in `detail.data.errors` (GUIDE, DOCS-S). `errors` is validateProcedures' non-empty answer.
 */
export function procedureValidationFailed(errors: Record<string, ProcedureError[]>): InvalidRequestWithDataError {
  return new InvalidRequestWithDataError('procedure_validation_failed', 'Structured procedures failed validation.', { errors: errorsWire(errors) });
}

/** Compile: 400 with upstream's flat `CompileProceduresValidationErrorResponseModel`, `{"errors": {...}}`. */
export function compileValidationFailed(errors: Record<string, ProcedureError[]>): OwnBodyError {
  return new OwnBodyError(400, 'invalid_request', 'procedure_validation_failed', 'Structured procedures failed validation.', { errors: errorsWire(errors) });
}
