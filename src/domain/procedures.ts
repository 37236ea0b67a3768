import { isJsonObject, type Json, type JsonObject } from './canonical-json.js';

// Procedures: an agent's instruction blocks, versioned with its branches. This module holds what
// a procedure is and every rule of upstream's validator (reference: procedures.md, "Validation
// rules of deterministic procedures"), as pure functions over plain JSON.

export const PROCEDURE_TYPES = ['free_form', 'deterministic', 'folder'] as const;
export type ProcedureType = (typeof PROCEDURE_TYPES)[number];

/** An immutable procedure version's content, as stored (a content-tree document). */
export interface ProcedureBody extends JsonObject {
  /** ≤ MAX_PROCEDURE_NAME characters; a label for people, never sent to the LLM. */
  name: string;
  /** ≤ MAX_PROCEDURE_CONTENT characters; markdown (free_form), JSON `{"steps":[…]}` (deterministic), '' (folder). */
  content: string;
  type: ProcedureType;
  /** When the agent should run it; '' = a sub-procedure, run only when another one references it. */
  trigger: string;
  folder_parent_id: string | null;
}

// Upstream's limits, in UTF-16 code units as zod's `max` counts them (the request schemas use it too).
export const MAX_PROCEDURE_NAME = 200;
export const MAX_PROCEDURE_CONTENT = 50_000;
/**
 * Step lists nested deeper than this are reported, not walked: the walk is recursive, and content
 * of any shape must come back as errors, never as a stack overflow. Real procedures nest two or three.
 */
export const MAX_STEP_NESTING = 32;

export const STEP_TYPES = ['ask', 'tell', 'say', 'branch', 'tool_call', 'retry', 'sub_procedure', 'system_tool'] as const;
type StepType = (typeof STEP_TYPES)[number];
const SCHEMA_OVERRIDE_SOURCES = ['constant', 'dynamic_variable', 'llm', 'omit'];

export function isProcedureType(value: unknown): value is ProcedureType {
  return typeof value === 'string' && (PROCEDURE_TYPES as readonly string[]).includes(value);
}

// ---------------------------------------------------------------------------------------------
// References

export interface ProcedureReferences {
  referenced_tool_ids: string[];
  referenced_kb_ids: string[];
  referenced_procedure_ids: string[];
  referenced_dynamic_variables: string[];
}

// Free-form inline references: `[tool id="tool_…" name="…"]`, `[kb id="…"]`, `[procedure id="…"]`.
// `[system_tool id="end_call"]` names a built-in tool, not one of the agent's tool ids, so it is not
// a referenced tool id (upstream's field documents "Tool IDs referenced in the procedure content").
const INLINE_REFERENCE = /\[(tool|kb|procedure)\s([^\]]*)\]/g;
const ID_ATTRIBUTE = /(?:^|\s)id\s*=\s*(?:"([^"]*)"|'([^']*)')/;
/** `{{name}}` and `{{ name }}`; system variables (`{{system__time}}`) count too. */
const DYNAMIC_VARIABLE = /\{\{\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*\}\}/g;

class ReferenceSets {
  readonly tools = new Set<string>();
  readonly kbs = new Set<string>();
  readonly procedures = new Set<string>();
  readonly variables = new Set<string>();

  addVariablesOf(text: Json | undefined): void {
    if (typeof text !== 'string') return;
    for (const match of text.matchAll(DYNAMIC_VARIABLE)) this.variables.add(match[1]);
  }

  toWire(): ProcedureReferences {
    const sorted = (set: Set<string>) => [...set].sort();
    return {
      referenced_tool_ids: sorted(this.tools),
      referenced_kb_ids: sorted(this.kbs),
      referenced_procedure_ids: sorted(this.procedures),
      referenced_dynamic_variables: sorted(this.variables),
    };
  }
}

/**
 * Sorted, de-duplicated ids/names referenced by the content: free-form inline references and
 * `{{variables}}`; for deterministic steps the tool_call tool ids, sub_procedure ids, `{{variables}}`
 * of instructions and messages, and the dynamic variables `schema_overrides` read. Content that
 * does not parse references nothing; folders reference nothing.
 */
export function procedureReferences(body: ProcedureBody): ProcedureReferences {
  const sets = new ReferenceSets();
  if (typeof body.content !== 'string') return sets.toWire();
  if (body.type === 'free_form') {
    for (const match of body.content.matchAll(INLINE_REFERENCE)) {
      const id = ID_ATTRIBUTE.exec(match[2]);
      const value = id?.[1] ?? id?.[2];
      if (!value) continue;
      (match[1] === 'tool' ? sets.tools : match[1] === 'kb' ? sets.kbs : sets.procedures).add(value);
    }
    sets.addVariablesOf(body.content);
  } else if (body.type === 'deterministic') {
    const parsed = parseContent(body.content);
    if (parsed !== undefined && isJsonObject(parsed) && Array.isArray(parsed.steps)) collectStepReferences(parsed.steps, sets, 1);
  }
  return sets.toWire();
}

function collectStepReferences(steps: Json[], sets: ReferenceSets, depth: number): void {
  if (depth > MAX_STEP_NESTING) return;
  for (const step of steps) {
    if (!isJsonObject(step)) continue;
    sets.addVariablesOf(step.instruction);
    sets.addVariablesOf(step.message);
    if (isJsonObject(step.message_translations)) {
      for (const translation of Object.values(step.message_translations)) if (isJsonObject(translation)) sets.addVariablesOf(translation.value);
    }
    if (step.type === 'tool_call' && typeof step.tool_id === 'string' && step.tool_id !== '') sets.tools.add(step.tool_id);
    if (step.type === 'sub_procedure' && typeof step.procedure_id === 'string' && step.procedure_id !== '') sets.procedures.add(step.procedure_id);
    if (isJsonObject(step.schema_overrides)) {
      for (const override of Object.values(step.schema_overrides)) {
        if (isJsonObject(override) && override.source === 'dynamic_variable' && typeof override.dynamic_variable === 'string' && override.dynamic_variable !== '') {
          sets.variables.add(override.dynamic_variable);
        }
      }
    }
    for (const list of nestedStepLists(step)) collectStepReferences(list, sets, depth + 1);
  }
}

/** Every step list directly inside a step: a branch's branches and fallback, a tool call's on_failure. */
function nestedStepLists(step: JsonObject): Json[][] {
  const lists: Json[][] = [];
  const addBranches = (owner: Json | undefined) => {
    if (!isJsonObject(owner)) return;
    if (Array.isArray(owner.branches)) {
      for (const branch of owner.branches) if (isJsonObject(branch) && Array.isArray(branch.steps)) lists.push(branch.steps);
    }
    if (Array.isArray(owner.fallback)) lists.push(owner.fallback);
  };
  if (step.type === 'branch') addBranches(step);
  if (step.type === 'tool_call') addBranches(step.on_failure);
  return lists;
}

// ---------------------------------------------------------------------------------------------
// The agent's tools

/**
 * The agent's tools as its conversation_config names them, id → name where the config knows it:
 * - `agent.prompt.tool_ids`: workspace tools by id (their names live in the workspace's tool
 *   store, which this server does not have: unknown);
 * - `agent.prompt.tools`: inline tool configs that carry an `id` (else a `tool_id`), with their `name`;
 * - `agent.prompt.built_in_tools`: the enabled system tools (a non-null config), by their key
 *   (`end_call`, `transfer_to_number`, …), named by their config's `name`, else the key.
 * Anything of another shape is skipped: the config was validated when it was stored.
 */
export function toolsOfConfig(conversationConfig: JsonObject): Map<string, string | undefined> {
  const tools = new Map<string, string | undefined>();
  const agent = conversationConfig.agent;
  const prompt = isJsonObject(agent) ? agent.prompt : undefined;
  if (!isJsonObject(prompt)) return tools;
  const add = (id: string, name: string | undefined) => {
    if (id === '') return;
    if (name !== undefined || !tools.has(id)) tools.set(id, name);
  };
  if (Array.isArray(prompt.tool_ids)) for (const id of prompt.tool_ids) if (typeof id === 'string') add(id, undefined);
  if (Array.isArray(prompt.tools)) {
    for (const tool of prompt.tools) {
      if (!isJsonObject(tool)) continue;
      const id = typeof tool.id === 'string' ? tool.id : typeof tool.tool_id === 'string' ? tool.tool_id : undefined;
      if (id !== undefined) add(id, typeof tool.name === 'string' ? tool.name : undefined);
    }
  }
  if (isJsonObject(prompt.built_in_tools)) {
    for (const [key, config] of Object.entries(prompt.built_in_tools)) {
      if (isJsonObject(config)) add(key, typeof config.name === 'string' && config.name !== '' ? config.name : key);
    }
  }
  return tools;
}

// ---------------------------------------------------------------------------------------------
// Validation

export interface ProcedureError {
  path: string;
  message: string;
}

export interface ProcedureValidationContext {
  /** Tools of the agent's config, id → name when the config knows it (toolsOfConfig). */
  tools: ReadonlyMap<string, string | undefined>;
}

/** A sub_procedure step that points at another deterministic procedure of the set. */
interface SubProcedureEdge {
  from: string;
  to: string;
  path: string;
  label: string;
}

/**
 * Every rule of the reference over a whole working set (procedure id → body), all errors of all
 * procedures in one pass. Only ids with errors appear; {} means valid. Never throws on any input.
 * Free-form and folder procedures get the checks that apply to them (lengths, type, folder
 * placement), deterministic ones all; references between procedures (sub-procedures, folder
 * parents) are checked within the set, cycles included.
 */
export function validateProcedures(
  set: ReadonlyMap<string, ProcedureBody>,
  context: ProcedureValidationContext,
): Record<string, ProcedureError[]> {
  const found = new Map<string, ProcedureError[]>();
  const edges: SubProcedureEdge[] = [];
  for (const [id, body] of set) {
    const errors: ProcedureError[] = [];
    checkProcedure(id, body, { set, tools: context.tools, errors, edges });
    found.set(id, errors);
  }
  for (const [id, error] of subProcedureCycles(edges)) found.get(id)!.push(error);
  for (const [id, error] of folderCycles(set)) found.get(id)!.push(error);

  const result: Record<string, ProcedureError[]> = {};
  for (const [id, errors] of found) if (errors.length > 0) result[id] = errors;
  return result;
}

interface Checker {
  set: ReadonlyMap<string, ProcedureBody>;
  tools: ReadonlyMap<string, string | undefined>;
  errors: ProcedureError[];
  edges: SubProcedureEdge[];
}

function checkProcedure(id: string, body: unknown, checker: Checker): void {
  const error = (path: string, message: string) => checker.errors.push({ path, message });
  if (!isJsonObject(body)) {
    error('', 'A procedure must be an object with name, content, type, trigger and folder_parent_id');
    return;
  }
  const { name, content, type, trigger } = body;
  if (typeof name !== 'string') error('name', 'Name must be a string');
  else if (name.length > MAX_PROCEDURE_NAME) error('name', `Name must be at most ${MAX_PROCEDURE_NAME} characters`);
  if (typeof content !== 'string') error('content', 'Content must be a string');
  else if (content.length > MAX_PROCEDURE_CONTENT) error('content', `Content must be at most ${MAX_PROCEDURE_CONTENT} characters`);
  if (typeof trigger !== 'string') error('trigger', 'Trigger must be a string');
  if (!isProcedureType(type)) error('type', `Type must be one of ${PROCEDURE_TYPES.join(', ')}`);
  checkFolderParent(id, body.folder_parent_id, checker);

  if (type === 'folder') {
    if (typeof content === 'string' && content !== '') error('content', 'A folder has no content');
    if (typeof trigger === 'string' && trigger !== '') error('trigger', 'A folder has no trigger');
  }
  if (type === 'deterministic' && typeof content === 'string') checkDeterministicContent(id, content, checker);
}

function checkFolderParent(id: string, parentId: Json | undefined, checker: Checker): void {
  if (parentId === null || parentId === undefined) return;
  const path = 'folder_parent_id';
  if (typeof parentId !== 'string') checker.errors.push({ path, message: 'Folder parent must be a procedure id or null' });
  // A procedure that is its own parent is reported as a cycle (folderCycles).
  else if (parentId === id) return;
  else if (!checker.set.has(parentId)) checker.errors.push({ path, message: `Folder parent ${JSON.stringify(parentId)} is not a procedure of this agent` });
  else if (checker.set.get(parentId)?.type !== 'folder') checker.errors.push({ path, message: `Folder parent ${JSON.stringify(parentId)} is not a folder` });
}

function parseContent(content: string): Json | undefined {
  try {
    return JSON.parse(content) as Json;
  } catch {
    return undefined;
  }
}

function checkDeterministicContent(id: string, content: string, checker: Checker): void {
  const parsed = parseContent(content);
  if (parsed === undefined) {
    checker.errors.push({ path: 'content', message: 'Content of a deterministic procedure must be JSON: {"steps": [...]}' });
    return;
  }
  if (!isJsonObject(parsed)) {
    checker.errors.push({ path: 'content', message: 'Content of a deterministic procedure must be a JSON object: {"steps": [...]}' });
    return;
  }
  // An older guide put `trigger` inside the content; the top-level field is the trigger, so it is ignored here.
  const steps = parsed.steps;
  if (!Array.isArray(steps)) {
    checker.errors.push({ path: 'steps', message: 'Procedure requires a steps array' });
    return;
  }
  if (steps.length === 0) {
    checker.errors.push({ path: 'steps', message: 'Procedure requires at least one step' });
    return;
  }
  new StepWalk(id, checker).list(steps, { path: 'steps', label: (index) => `Step ${index + 1}`, kind: 'procedure', insideBranch: false, depth: 1 });
}

/** Where a step list sits: it decides which steps may appear in it. */
interface ListPlace {
  path: string;
  /** The message prefix of the step at `index`: `Step 3`, `Step 3, branch 2 step 1`. */
  label: (index: number) => string;
  /** `on_failure`: a list of a tool call's on_failure (retry may end it). */
  kind: 'procedure' | 'branch' | 'on_failure';
  /** Inside a branch step, at any depth: no branch step may appear. */
  insideBranch: boolean;
  depth: number;
}

type ConditionType = 'llm' | 'expression';

const STEP_NAMES: Record<StepType, string> = {
  ask: 'Ask',
  tell: 'Tell',
  say: 'Say',
  branch: 'Branch',
  tool_call: 'Tool call',
  retry: 'Retry',
  sub_procedure: 'Sub-procedure',
  system_tool: 'System tool',
};

/** One walk over a deterministic procedure's steps, collecting every error it finds. */
class StepWalk {
  constructor(
    private readonly procedureId: string,
    private readonly checker: Checker,
  ) {}

  private error(path: string, message: string): void {
    this.checker.errors.push({ path, message });
  }

  list(steps: Json[], place: ListPlace): void {
    if (place.depth > MAX_STEP_NESTING) {
      this.error(place.path, `${place.label(0)}: Steps are nested more than ${MAX_STEP_NESTING} levels deep`);
      return;
    }
    steps.forEach((step, index) => {
      const previous = index > 0 ? steps[index - 1] : undefined;
      const previousType = isJsonObject(previous) ? previous.type : undefined;
      this.step(step, index === steps.length - 1, previousType, `${place.path}[${index}]`, place.label(index), place);
    });
  }

  private step(step: Json, isLast: boolean, previousType: Json | undefined, at: string, label: string, place: ListPlace): void {
    if (!isJsonObject(step)) {
      this.error(at, `${label}: A step must be an object with a type`);
      return;
    }
    const type = step.type;
    if (typeof type !== 'string' || !(STEP_TYPES as readonly string[]).includes(type)) {
      this.error(`${at}.type`, `${label}: Step type must be one of ${STEP_TYPES.join(', ')}`);
      return;
    }
    const path = `${at}.${type}`;
    switch (type as StepType) {
      case 'ask':
      case 'tell':
        this.requireText(step.instruction, `${path}.instruction`, `${label}: ${STEP_NAMES[type as StepType]} step requires an instruction`);
        return;
      case 'say':
        this.requireText(step.message, `${path}.message`, `${label}: Say step requires a message`);
        this.checkTranslations(step.message_translations, `${path}.message_translations`, label);
        return;
      case 'branch':
        this.checkBranchStep(step, previousType, path, label, place);
        return;
      case 'tool_call':
        this.checkToolCall(step, path, label, place);
        return;
      case 'retry':
        if (place.kind !== 'on_failure') this.error(path, `${label}: Retry step is only allowed inside a tool call's on_failure`);
        else if (!isLast) this.error(path, `${label}: Retry step must be the last step of its list`);
        if (step.max_retries !== undefined && step.max_retries !== null && !(Number.isInteger(step.max_retries) && (step.max_retries as number) >= 1 && (step.max_retries as number) <= 3)) {
          this.error(`${path}.max_retries`, `${label}: Retry step max_retries must be an integer from 1 to 3`);
        }
        return;
      case 'sub_procedure':
        this.checkSubProcedure(step.procedure_id, path, label);
        return;
      case 'system_tool':
        if (step.system_tool_name !== 'end_call') {
          this.error(`${path}.system_tool_name`, `${label}: System tool step supports only "end_call"`);
        } else if (!isLast) {
          this.error(path, `${label}: End call must be the last step of its list`);
        }
        return;
    }
  }

  private requireText(value: Json | undefined, path: string, missing: string): void {
    if (typeof value !== 'string' || value.trim() === '') this.error(path, missing);
  }

  private checkTranslations(translations: Json | undefined, path: string, label: string): void {
    if (translations === undefined || translations === null) return;
    if (!isJsonObject(translations)) {
      this.error(path, `${label}: Say step message_translations must map languages to {"value": message}`);
      return;
    }
    for (const [language, translation] of Object.entries(translations)) {
      const value = isJsonObject(translation) ? translation.value : undefined;
      if (typeof value !== 'string' || value.trim() === '') {
        this.error(`${path}.${language}.value`, `${label}: Say step translation ${JSON.stringify(language)} requires a message`);
      }
    }
  }

  private checkBranchStep(step: JsonObject, previousType: Json | undefined, path: string, label: string, place: ListPlace): void {
    if (place.insideBranch) this.error(path, `${label}: A branch step cannot be nested inside another branch`);
    if (previousType === 'branch') this.error(path, `${label}: A branch step cannot directly follow another branch step`);
    if (!Array.isArray(step.branches) || step.branches.length === 0) {
      this.error(`${path}.branches`, `${label}: Branch step requires at least one branch`);
    } else {
      const types = this.checkBranches(step.branches, `${path}.branches`, label, (j) => `${label}, branch ${j + 1} step`, 'branch', place);
      if (previousType === 'ask' && types.includes('expression')) {
        this.error(path, `${label}: A branch on expression conditions cannot directly follow an ask step`);
      }
    }
    if (step.fallback !== undefined && step.fallback !== null) {
      if (!Array.isArray(step.fallback)) this.error(`${path}.fallback`, `${label}: Branch fallback must be a list of steps`);
      else this.nested(step.fallback, `${path}.fallback`, `${label}, fallback step`, 'branch', place);
    }
  }

  /**
   * The branches of a branch step or of an on_failure: each a condition and a non-empty step list,
   * all conditions of one type. Returns the condition types found, in order.
   */
  private checkBranches(
    branches: Json[],
    path: string,
    label: string,
    stepsLabel: (index: number) => string,
    kind: ListPlace['kind'],
    place: ListPlace,
  ): ConditionType[] {
    const types: ConditionType[] = [];
    branches.forEach((branch, j) => {
      const at = `${path}[${j}]`;
      if (!isJsonObject(branch)) {
        this.error(at, `${label}: Branch ${j + 1} must be an object with a condition and steps`);
        return;
      }
      const type = this.checkCondition(branch.condition, `${at}.condition`, `${label}: Branch ${j + 1}`);
      if (type !== undefined) {
        if (types.length > 0 && type !== types[0]) {
          this.error(`${at}.condition`, `${label}: All conditions of a branch must be of one type (branch 1 is ${types[0]}, branch ${j + 1} is ${type})`);
        }
        types.push(type);
      }
      if (!Array.isArray(branch.steps) || branch.steps.length === 0) {
        this.error(`${at}.steps`, `${label}: Branch ${j + 1} requires at least one step`);
      } else {
        this.nested(branch.steps, `${at}.steps`, stepsLabel(j), kind, place);
      }
    });
    return types;
  }

  private checkCondition(condition: Json | undefined, path: string, label: string): ConditionType | undefined {
    if (!isJsonObject(condition)) {
      this.error(path, `${label} requires a condition: {"type": "llm", "condition": …} or {"type": "expression", "expression": …}`);
      return undefined;
    }
    if (condition.type === 'llm') {
      this.requireText(condition.condition, `${path}.condition`, `${label}: LLM condition requires its text`);
      return 'llm';
    }
    if (condition.type === 'expression') {
      // The expression's own grammar is undocumented: a non-empty string or an expression object.
      const expression = condition.expression;
      const present = (typeof expression === 'string' && expression.trim() !== '') || isJsonObject(expression);
      if (!present) this.error(`${path}.expression`, `${label}: Expression condition requires an expression`);
      return 'expression';
    }
    this.error(`${path}.type`, `${label}: Condition type must be "llm" or "expression"`);
    return undefined;
  }

  private checkToolCall(step: JsonObject, path: string, label: string, place: ListPlace): void {
    const toolId = step.tool_id;
    if (typeof toolId !== 'string' || toolId === '') {
      this.error(`${path}.tool_id`, `${label}: Tool call step requires a tool_id`);
    } else if (!this.checker.tools.has(toolId)) {
      this.error(`${path}.tool_id`, `${label}: Tool call step references tool ${JSON.stringify(toolId)}, which is not a tool of this agent`);
    }
    const toolName = step.tool_name;
    if (typeof toolName !== 'string' || toolName === '') {
      this.error(`${path}.tool_name`, `${label}: Tool call step requires a tool_name`);
    } else if (typeof toolId === 'string') {
      const known = this.checker.tools.get(toolId);
      if (known !== undefined && known !== toolName) {
        this.error(`${path}.tool_name`, `${label}: Tool call step tool_name ${JSON.stringify(toolName)} does not match the name of tool ${JSON.stringify(toolId)} (${JSON.stringify(known)})`);
      }
    }
    if (step.instruction !== undefined && step.instruction !== null) {
      this.requireText(step.instruction, `${path}.instruction`, `${label}: Tool call step instruction must not be empty`);
    }
    this.checkSchemaOverrides(step.schema_overrides, `${path}.schema_overrides`, label);
    this.checkOnFailure(step.on_failure, `${path}.on_failure`, label, place);
  }

  private checkSchemaOverrides(overrides: Json | undefined, path: string, label: string): void {
    if (overrides === undefined || overrides === null) return;
    if (!isJsonObject(overrides)) {
      this.error(path, `${label}: Tool call step schema_overrides must map parameter paths to overrides`);
      return;
    }
    for (const [parameter, override] of Object.entries(overrides)) {
      const at = `${path}.${parameter}`;
      const source = isJsonObject(override) ? override.source : undefined;
      if (!isJsonObject(override) || typeof source !== 'string' || !SCHEMA_OVERRIDE_SOURCES.includes(source)) {
        this.error(`${at}.source`, `${label}: Schema override ${JSON.stringify(parameter)} source must be one of ${SCHEMA_OVERRIDE_SOURCES.join(', ')}`);
      } else if (source === 'constant' && override.constant_value === undefined) {
        this.error(`${at}.constant_value`, `${label}: Schema override ${JSON.stringify(parameter)} requires a constant_value`);
      } else if (source === 'dynamic_variable' && (typeof override.dynamic_variable !== 'string' || override.dynamic_variable === '')) {
        this.error(`${at}.dynamic_variable`, `${label}: Schema override ${JSON.stringify(parameter)} requires a dynamic_variable`);
      } else if (source === 'llm' && override.prompt !== undefined && override.prompt !== null && typeof override.prompt !== 'string') {
        this.error(`${at}.prompt`, `${label}: Schema override ${JSON.stringify(parameter)} prompt must be a string`);
      }
    }
  }

  private checkOnFailure(onFailure: Json | undefined, path: string, label: string, place: ListPlace): void {
    if (onFailure === undefined || onFailure === null) return;
    if (!isJsonObject(onFailure)) {
      this.error(path, `${label}: Tool call step on_failure must be an object with branches and a fallback`);
      return;
    }
    const branches = onFailure.branches;
    if (branches !== undefined && branches !== null) {
      if (!Array.isArray(branches)) this.error(`${path}.branches`, `${label}: On failure branches must be a list`);
      else this.checkBranches(branches, `${path}.branches`, `${label}, on failure`, (j) => `${label}, on failure branch ${j + 1} step`, 'on_failure', place);
    }
    if (!Array.isArray(onFailure.fallback) || onFailure.fallback.length === 0) {
      this.error(`${path}.fallback`, `${label}: On failure requires at least one fallback step`);
    } else {
      this.nested(onFailure.fallback, `${path}.fallback`, `${label}, on failure fallback step`, 'on_failure', place);
    }
  }

  private nested(steps: Json[], path: string, label: string, kind: ListPlace['kind'], parent: ListPlace): void {
    this.list(steps, {
      path,
      label: (index) => `${label} ${index + 1}`,
      kind,
      insideBranch: parent.insideBranch || kind === 'branch',
      depth: parent.depth + 1,
    });
  }

  private checkSubProcedure(target: Json | undefined, path: string, label: string): void {
    const at = `${path}.procedure_id`;
    if (typeof target !== 'string' || target === '') {
      this.error(at, `${label}: Sub-procedure step requires a procedure_id`);
    } else if (target === this.procedureId) {
      this.error(at, `${label}: Sub-procedure step cannot reference its own procedure`);
    } else if (!this.checker.set.has(target)) {
      this.error(at, `${label}: Sub-procedure step references procedure ${JSON.stringify(target)}, which is not a procedure of this agent`);
    } else if (this.checker.set.get(target)?.type !== 'deterministic') {
      this.error(at, `${label}: Sub-procedure step references procedure ${JSON.stringify(target)}, which is not a deterministic procedure`);
    } else {
      this.checker.edges.push({ from: this.procedureId, to: target, path: at, label });
    }
  }
}

/**
 * Sub-procedures that lead back to the procedure that runs them (a → b → a): upstream documents
 * only "not itself"; a longer cycle would run forever all the same. Each such step gets an error
 * naming the cycle.
 */
function subProcedureCycles(edges: SubProcedureEdge[]): [string, ProcedureError][] {
  const next = new Map<string, string[]>();
  for (const edge of edges) {
    const targets = next.get(edge.from) ?? [];
    if (!targets.includes(edge.to)) targets.push(edge.to);
    next.set(edge.from, targets);
  }
  // Breadth-first from each target once: its shortest path to every procedure it reaches.
  const reachedFrom = new Map<string, Map<string, string | null>>();
  const reach = (start: string) => {
    let parents = reachedFrom.get(start);
    if (parents) return parents;
    parents = new Map([[start, null]]);
    const queue = [start];
    for (let i = 0; i < queue.length; i++) {
      for (const target of next.get(queue[i]) ?? []) {
        if (parents.has(target)) continue;
        parents.set(target, queue[i]);
        queue.push(target);
      }
    }
    reachedFrom.set(start, parents);
    return parents;
  };
  const found: [string, ProcedureError][] = [];
  for (const edge of edges) {
    const parents = reach(edge.to);
    if (!parents.has(edge.from)) continue;
    const back: string[] = [];
    for (let at: string | null = edge.from; at !== null; at = parents.get(at) ?? null) back.unshift(at);
    const cycle = [edge.from, ...back].join(' → ');
    found.push([edge.from, { path: edge.path, message: `${edge.label}: Sub-procedures form a cycle: ${cycle}` }]);
  }
  return found;
}

/** Procedures whose chain of folder parents comes back to them: each one in the cycle is reported. */
function folderCycles(set: ReadonlyMap<string, ProcedureBody>): [string, ProcedureError][] {
  const parentOf = (id: string): string | undefined => {
    const body = set.get(id);
    const parent = isJsonObject(body) ? body.folder_parent_id : undefined;
    return typeof parent === 'string' && set.has(parent) ? parent : undefined;
  };
  const found: [string, ProcedureError][] = [];
  for (const id of set.keys()) {
    const chain = [id];
    const seen = new Set(chain);
    for (let parent = parentOf(id); parent !== undefined && !seen.has(parent); parent = parentOf(parent)) {
      chain.push(parent);
      seen.add(parent);
    }
    const last = chain[chain.length - 1];
    if (parentOf(last) !== id) continue;
    const message = chain.length === 1 ? 'A procedure cannot be its own folder parent' : `Folder parents form a cycle: ${[...chain, id].join(' → ')}`;
    found.push([id, { path: 'folder_parent_id', message }]);
  }
  return found;
}
