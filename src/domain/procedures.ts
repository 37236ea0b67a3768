import { isJsonObject, type JsonObject } from './canonical-json.js';

// Minimal stand-in for the shared procedures module (procedures-interface.md); the full
// validator replaces this file at merge.

export type ProcedureType = 'free_form' | 'deterministic' | 'folder';
/** An immutable procedure version's content, as stored (a content-tree document). */
export interface ProcedureBody extends JsonObject {
  name: string;
  content: string;
  type: ProcedureType;
  trigger: string;
  folder_parent_id: string | null;
}
export const MAX_PROCEDURE_NAME = 200;
export const MAX_PROCEDURE_CONTENT = 50_000;
export interface ProcedureReferences {
  referenced_tool_ids: string[];
  referenced_kb_ids: string[];
  referenced_procedure_ids: string[];
  referenced_dynamic_variables: string[];
}

function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

/** Sorted, de-duplicated ids/names referenced by the content (free-form inline refs; deterministic steps). */
export function procedureReferences(body: ProcedureBody): ProcedureReferences {
  const matches = (pattern: RegExp) => [...body.content.matchAll(pattern)].map((match) => match[1]);
  return {
    referenced_tool_ids: sortedUnique([...matches(/\[tool id="([^"]+)"\]/g), ...matches(/"tool_id"\s*:\s*"([^"]+)"/g)]),
    referenced_kb_ids: sortedUnique(matches(/\[kb id="([^"]+)"\]/g)),
    referenced_procedure_ids: sortedUnique([...matches(/\[procedure id="([^"]+)"\]/g), ...matches(/"procedure_id"\s*:\s*"([^"]+)"/g)]),
    referenced_dynamic_variables: sortedUnique(matches(/\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g)),
  };
}
export interface ProcedureError {
  path: string;
  message: string;
}
export interface ProcedureValidationContext {
  /** Tools of the agent's config, id → name when the config knows it (toolsOfConfig). */
  tools: ReadonlyMap<string, string | undefined>;
}

/** The agent's tools as its conversation_config names them. */
export function toolsOfConfig(conversationConfig: JsonObject): Map<string, string | undefined> {
  const tools = new Map<string, string | undefined>();
  const agent = conversationConfig.agent;
  const prompt = isJsonObject(agent) ? agent.prompt : undefined;
  if (!isJsonObject(prompt)) return tools;
  if (Array.isArray(prompt.tool_ids)) for (const id of prompt.tool_ids) if (typeof id === 'string') tools.set(id, undefined);
  return tools;
}

const STEP_TYPES = new Set(['ask', 'tell', 'say', 'branch', 'tool_call', 'retry', 'sub_procedure', 'system_tool']);

/** Every rule over a whole working set (procedure id → body); only ids with errors appear. */
export function validateProcedures(set: ReadonlyMap<string, ProcedureBody>, _context: ProcedureValidationContext): Record<string, ProcedureError[]> {
  const errors: Record<string, ProcedureError[]> = {};
  for (const [id, body] of set) {
    const found: ProcedureError[] = [];
    if (body.name.length > MAX_PROCEDURE_NAME) found.push({ path: 'name', message: `Name is longer than ${MAX_PROCEDURE_NAME} characters` });
    if (body.content.length > MAX_PROCEDURE_CONTENT) found.push({ path: 'content', message: `Content is longer than ${MAX_PROCEDURE_CONTENT} characters` });
    if (body.type === 'deterministic') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.content);
      } catch {
        parsed = undefined;
      }
      const steps = isJsonObject(parsed) ? parsed.steps : undefined;
      if (!Array.isArray(steps) || steps.length === 0) found.push({ path: 'steps', message: 'Procedure requires at least one step' });
      else
        steps.forEach((step, index) => {
          // A step names its type in `type`, or is an object keyed by it (`{"ask": {…}}`).
          const type = isJsonObject(step) ? (typeof step.type === 'string' ? step.type : Object.keys(step).find((key) => STEP_TYPES.has(key))) : undefined;
          if (type === undefined || !STEP_TYPES.has(type)) found.push({ path: `steps[${index}]`, message: `Step ${index + 1}: unknown step type` });
        });
    }
    if (found.length > 0) errors[id] = found;
  }
  return errors;
}
