import * as z from 'zod';

import { MAX_PROCEDURE_CONTENT, MAX_PROCEDURE_NAME, type ProcedureBody, procedureReferences } from '../../domain/procedures.js';
import {
  zAgentWorkflowResponseModel,
  zCreateProcedureResponseModel,
  zListProceduresResponseModel,
  zProcedureAtVersionResponseModel,
  zProcedureDraftResponseModel,
} from '../../wire/generated/zod.gen.js';

// The procedures routes' requests and responses (upstream's models, reference/procedures.md),
// kept in one place so that the shared renderers can replace them.

const procedureType = z.enum(['free_form', 'deterministic', 'folder']);
const trigger = z.string().max(MAX_PROCEDURE_CONTENT).nullish();

/** `CreateProcedureRequestModel`; the body may be absent or `null` (all defaults). */
export const zCreateProcedureBody = z
  .looseObject({
    name: z.string().max(MAX_PROCEDURE_NAME).optional().default(''),
    content: z.string().max(MAX_PROCEDURE_CONTENT).optional().default(''),
    type: procedureType.optional().default('free_form'),
    trigger,
    // Upstream's older name of `trigger`.
    description: trigger,
    folder_parent_id: z.string().nullish(),
  })
  .nullable();

/** `UpdateProcedureDraftRequestModel`: a full replacement. */
export const zUpdateProcedureDraftBody = z.looseObject({
  name: z.string().max(MAX_PROCEDURE_NAME),
  content: z.string().max(MAX_PROCEDURE_CONTENT),
  type: procedureType,
  trigger,
  description: trigger,
});

export const RESPONSES = {
  list: zListProceduresResponseModel,
  created: zCreateProcedureResponseModel,
  compiled: z.object({ workflow: zAgentWorkflowResponseModel }),
  atVersion: zProcedureAtVersionResponseModel,
  draft: zProcedureDraftResponseModel,
  /** Upstream answers deletes with any JSON (the SDK reads `unknown`). */
  deleted: z.object({ procedure_id: z.string() }),
};

/** A procedure as the list, `GET agent` and merge previews show it (no content). */
export function procedureRef(procedureId: string, versionId: string | null, body: ProcedureBody) {
  return {
    procedure_id: procedureId,
    version_id: versionId,
    name: body.name,
    type: body.type,
    trigger: body.trigger,
    ...procedureReferences(body),
    folder_parent_id: body.folder_parent_id,
  };
}

/** `ProcedureRefResponseModel` (zProcedureRefResponseModel). */
export type ProcedureRefResponse = ReturnType<typeof procedureRef>;

export function procedureListItem(procedureId: string, versionId: string | null, body: ProcedureBody, hasDraft: boolean) {
  return { ...procedureRef(procedureId, versionId, body), has_draft: hasDraft };
}

/** `ProcedureAtVersionResponseModel`. */
export function procedureAtVersion(procedureId: string, versionId: string | null, body: ProcedureBody) {
  return {
    procedure_id: procedureId,
    version_id: versionId,
    name: body.name,
    content: body.content,
    type: body.type,
    trigger: body.trigger,
    folder_parent_id: body.folder_parent_id,
  };
}

/** `ProcedureDraftResponseModel`: the same without `version_id`. */
export function procedureDraft(procedureId: string, body: ProcedureBody) {
  const { version_id: _version, ...draft } = procedureAtVersion(procedureId, null, body);
  return draft;
}
