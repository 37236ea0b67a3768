import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { Json, JsonObject } from '../../src/domain/canonical-json.js';
import {
  MAX_PROCEDURE_CONTENT,
  MAX_PROCEDURE_NAME,
  MAX_STEP_NESTING,
  type ProcedureBody,
  type ProcedureError,
  procedureReferences,
  toolsOfConfig,
  validateProcedures,
} from '../../src/domain/procedures.js';
import { jsonString, jsonValue } from './json-arbitraries.js';

const TOOLS = new Map<string, string | undefined>([
  ['tool_weather', 'get_weather'],
  ['tool_unnamed', undefined],
]);
const CONTEXT = { tools: TOOLS };
const ID = 'agtprc_main';

function procedure(fields: Partial<Record<keyof ProcedureBody, Json>> = {}): ProcedureBody {
  return { name: 'P', content: '', type: 'free_form', trigger: 'When asked', folder_parent_id: null, ...fields } as ProcedureBody;
}

function deterministic(steps: Json, fields: Partial<Record<keyof ProcedureBody, Json>> = {}): ProcedureBody {
  return procedure({ type: 'deterministic', content: JSON.stringify({ steps }), ...fields });
}

function validate(...entries: [string, ProcedureBody][]): Record<string, ProcedureError[]> {
  return validateProcedures(new Map(entries), CONTEXT);
}

/** The errors of one deterministic procedure with these steps (alone in its set unless others are given). */
function errorsOf(steps: Json, others: [string, ProcedureBody][] = []): ProcedureError[] {
  return validate([ID, deterministic(steps)], ...others)[ID] ?? [];
}

const ask = (instruction: Json = 'Ask for the order id') => ({ type: 'ask', instruction });
const tell = (instruction: Json = 'Explain the policy') => ({ type: 'tell', instruction });
const say = (message: Json = 'Thank you') => ({ type: 'say', message });
const endCall = { type: 'system_tool', system_tool_name: 'end_call' };
const llm = (condition: Json = 'the caller is angry') => ({ type: 'llm', condition });
const expression = (value: Json = 'order_total > 100') => ({ type: 'expression', expression: value });
const branch = (branches: Json[], fallback?: Json) => ({ type: 'branch', branches, ...(fallback === undefined ? {} : { fallback }) });
const arm = (condition: Json, steps: Json = [tell()]) => ({ condition, steps });
const toolCall = (fields: JsonObject = {}) => ({ type: 'tool_call', tool_id: 'tool_weather', tool_name: 'get_weather', ...fields });
const retry = (fields: JsonObject = {}) => ({ type: 'retry', ...fields });

describe('validateProcedures: a valid working set', () => {
  it('accepts every step type in its place, free-form and folder procedures, and folder placement', () => {
    const steps = [
      ask(),
      branch([arm(llm()), arm(llm('the caller is calm'), [say('Fine'), { type: 'sub_procedure', procedure_id: 'agtprc_sub' }])], [tell()]),
      toolCall({
        instruction: 'Look up {{city}}',
        schema_overrides: {
          city: { source: 'dynamic_variable', dynamic_variable: 'city' },
          units: { source: 'constant', constant_value: 'metric' },
          when: { source: 'llm', prompt: 'The date the caller means' },
          debug: { source: 'omit' },
        },
        on_failure: { branches: [arm(llm('timeout'), [tell('Try again'), retry({ max_retries: 3 })])], fallback: [say('Sorry'), retry()] },
      }),
      { type: 'say', message: 'Goodbye', message_translations: { de: { value: 'Tschüss' } } },
      endCall,
    ];
    expect(
      validate(
        [ID, deterministic(steps, { folder_parent_id: 'agtprc_folder' })],
        ['agtprc_sub', deterministic([tell()], { trigger: '' })],
        ['agtprc_free', procedure({ content: 'Use [tool id="tool_x"] then {{var}}' })],
        ['agtprc_folder', procedure({ type: 'folder', trigger: '' })],
        ['agtprc_inner', procedure({ type: 'folder', trigger: '', folder_parent_id: 'agtprc_folder' })],
      ),
    ).toEqual({});
  });

  it('accepts and ignores a trigger inside the content (an older form), and unknown keys', () => {
    const body = procedure({ type: 'deterministic', content: JSON.stringify({ trigger: 'old', steps: [{ ...ask(), note: 'x' }], version: 2 }) });
    expect(validate([ID, body])).toEqual({});
  });

  it('accepts an llm branch right after an ask step, and an expression branch after any other step', () => {
    expect(errorsOf([ask(), branch([arm(llm())])])).toEqual([]);
    expect(errorsOf([tell(), branch([arm(expression()), arm(expression({ op: 'eq', left: 'a', right: 1 }))])])).toEqual([]);
  });

  it('accepts end_call last in a nested list', () => {
    expect(errorsOf([branch([arm(llm(), [say(), endCall])]), tell()])).toEqual([]);
  });
});

describe('validateProcedures: content of a deterministic procedure', () => {
  it('must be JSON', () => {
    expect(validate([ID, procedure({ type: 'deterministic', content: '{"steps": [' })])).toEqual({
      [ID]: [{ path: 'content', message: 'Content of a deterministic procedure must be JSON: {"steps": [...]}' }],
    });
  });

  it('must be a JSON object', () => {
    expect(validate([ID, procedure({ type: 'deterministic', content: '[]' })])[ID]).toEqual([
      { path: 'content', message: 'Content of a deterministic procedure must be a JSON object: {"steps": [...]}' },
    ]);
  });

  it('needs a steps array with at least one step', () => {
    expect(validate([ID, procedure({ type: 'deterministic', content: '{}' })])[ID]).toEqual([{ path: 'steps', message: 'Procedure requires a steps array' }]);
    expect(validate([ID, procedure({ type: 'deterministic', content: '{"steps": {}}' })])[ID]).toEqual([{ path: 'steps', message: 'Procedure requires a steps array' }]);
    expect(errorsOf([])).toEqual([{ path: 'steps', message: 'Procedure requires at least one step' }]);
  });

  it('is not checked for free-form procedures', () => {
    expect(validate([ID, procedure({ content: '{"steps": []}' })])).toEqual({});
  });
});

describe('validateProcedures: each step has a known type and its fields', () => {
  it('a step is an object with a known type', () => {
    expect(errorsOf(['ask'])).toEqual([{ path: 'steps[0]', message: 'Step 1: A step must be an object with a type' }]);
    const typeMessage = 'Step 2: Step type must be one of ask, tell, say, branch, tool_call, retry, sub_procedure, system_tool';
    expect(errorsOf([tell(), { type: 'jump' }])).toEqual([{ path: 'steps[1].type', message: typeMessage }]);
    expect(errorsOf([tell(), { instruction: 'x' }])).toEqual([{ path: 'steps[1].type', message: typeMessage }]);
  });

  it('ask and tell need a non-empty instruction', () => {
    expect(errorsOf([ask('')])).toEqual([{ path: 'steps[0].ask.instruction', message: 'Step 1: Ask step requires an instruction' }]);
    expect(errorsOf([{ type: 'ask' }])).toEqual([{ path: 'steps[0].ask.instruction', message: 'Step 1: Ask step requires an instruction' }]);
    expect(errorsOf([tell(), tell('  \n')])).toEqual([{ path: 'steps[1].tell.instruction', message: 'Step 2: Tell step requires an instruction' }]);
    expect(errorsOf([tell(42)])).toEqual([{ path: 'steps[0].tell.instruction', message: 'Step 1: Tell step requires an instruction' }]);
  });

  it('say needs a non-empty message, and translations map languages to non-empty values', () => {
    expect(errorsOf([say('')])).toEqual([{ path: 'steps[0].say.message', message: 'Step 1: Say step requires a message' }]);
    expect(errorsOf([{ ...say(), message_translations: ['x'] }])).toEqual([
      { path: 'steps[0].say.message_translations', message: 'Step 1: Say step message_translations must map languages to {"value": message}' },
    ]);
    expect(errorsOf([{ ...say(), message_translations: { fr: { value: 'Merci' }, de: { value: '' }, es: 'Gracias' } }])).toEqual([
      { path: 'steps[0].say.message_translations.de.value', message: 'Step 1: Say step translation "de" requires a message' },
      { path: 'steps[0].say.message_translations.es.value', message: 'Step 1: Say step translation "es" requires a message' },
    ]);
    expect(errorsOf([{ ...say(), message_translations: null }])).toEqual([]);
  });

  it('branch needs branches, each with a condition and steps', () => {
    expect(errorsOf([branch([])])).toEqual([{ path: 'steps[0].branch.branches', message: 'Step 1: Branch step requires at least one branch' }]);
    expect(errorsOf([{ type: 'branch' }])).toEqual([{ path: 'steps[0].branch.branches', message: 'Step 1: Branch step requires at least one branch' }]);
    expect(errorsOf([branch([arm(llm()), 'x'])])).toEqual([
      { path: 'steps[0].branch.branches[1]', message: 'Step 1: Branch 2 must be an object with a condition and steps' },
    ]);
    expect(errorsOf([branch([arm(llm(), [])])])).toEqual([{ path: 'steps[0].branch.branches[0].steps', message: 'Step 1: Branch 1 requires at least one step' }]);
    expect(errorsOf([branch([{ condition: llm() }])])).toEqual([{ path: 'steps[0].branch.branches[0].steps', message: 'Step 1: Branch 1 requires at least one step' }]);
    expect(errorsOf([branch([arm(llm()), arm(llm(), [ask('')])])])).toEqual([
      { path: 'steps[0].branch.branches[1].steps[0].ask.instruction', message: 'Step 1, branch 2 step 1: Ask step requires an instruction' },
    ]);
  });

  it('a condition is {type: "llm", condition} or {type: "expression", expression}', () => {
    expect(errorsOf([tell(), branch([arm(llm()), arm(null)])])).toEqual([
      {
        path: 'steps[1].branch.branches[1].condition',
        message: 'Step 2: Branch 2 requires a condition: {"type": "llm", "condition": …} or {"type": "expression", "expression": …}',
      },
    ]);
    expect(errorsOf([branch([arm({ type: 'regex', pattern: 'x' })])])).toEqual([
      { path: 'steps[0].branch.branches[0].condition.type', message: 'Step 1: Branch 1: Condition type must be "llm" or "expression"' },
    ]);
    expect(errorsOf([branch([arm(llm(''))])])).toEqual([
      { path: 'steps[0].branch.branches[0].condition.condition', message: 'Step 1: Branch 1: LLM condition requires its text' },
    ]);
    expect(errorsOf([branch([arm(expression(''))]), tell(), branch([arm(expression(7))])])).toEqual([
      { path: 'steps[0].branch.branches[0].condition.expression', message: 'Step 1: Branch 1: Expression condition requires an expression' },
      { path: 'steps[2].branch.branches[0].condition.expression', message: 'Step 3: Branch 1: Expression condition requires an expression' },
    ]);
  });

  it('a branch fallback is optional and, when given, a list of steps', () => {
    expect(errorsOf([branch([arm(llm())], [])])).toEqual([]);
    expect(errorsOf([branch([arm(llm())], null)])).toEqual([]);
    expect(errorsOf([branch([arm(llm())], 'x')])).toEqual([{ path: 'steps[0].branch.fallback', message: 'Step 1: Branch fallback must be a list of steps' }]);
    expect(errorsOf([branch([arm(llm())], [tell(''), say()])])).toEqual([
      { path: 'steps[0].branch.fallback[0].tell.instruction', message: 'Step 1, fallback step 1: Tell step requires an instruction' },
    ]);
  });

  it('tool_call needs a tool_id and a tool_name, and a given instruction is not empty', () => {
    expect(errorsOf([{ type: 'tool_call' }])).toEqual([
      { path: 'steps[0].tool_call.tool_id', message: 'Step 1: Tool call step requires a tool_id' },
      { path: 'steps[0].tool_call.tool_name', message: 'Step 1: Tool call step requires a tool_name' },
    ]);
    expect(errorsOf([toolCall({ instruction: '' })])).toEqual([
      { path: 'steps[0].tool_call.instruction', message: 'Step 1: Tool call step instruction must not be empty' },
    ]);
    expect(errorsOf([toolCall({ instruction: null })])).toEqual([]);
  });

  it('schema_overrides map parameters to a source and the field it needs', () => {
    expect(errorsOf([toolCall({ schema_overrides: 'x' })])).toEqual([
      { path: 'steps[0].tool_call.schema_overrides', message: 'Step 1: Tool call step schema_overrides must map parameter paths to overrides' },
    ]);
    expect(
      errorsOf([
        toolCall({
          schema_overrides: {
            a: { source: 'random' },
            b: { source: 'constant' },
            c: { source: 'dynamic_variable' },
            d: { source: 'llm', prompt: 3 },
            e: { source: 'constant', constant_value: null },
            f: 'x',
          },
        }),
      ]),
    ).toEqual([
      { path: 'steps[0].tool_call.schema_overrides.a.source', message: 'Step 1: Schema override "a" source must be one of constant, dynamic_variable, llm, omit' },
      { path: 'steps[0].tool_call.schema_overrides.b.constant_value', message: 'Step 1: Schema override "b" requires a constant_value' },
      { path: 'steps[0].tool_call.schema_overrides.c.dynamic_variable', message: 'Step 1: Schema override "c" requires a dynamic_variable' },
      { path: 'steps[0].tool_call.schema_overrides.d.prompt', message: 'Step 1: Schema override "d" prompt must be a string' },
      { path: 'steps[0].tool_call.schema_overrides.f.source', message: 'Step 1: Schema override "f" source must be one of constant, dynamic_variable, llm, omit' },
    ]);
  });

  it('retry max_retries is an integer from 1 to 3 (1 when absent)', () => {
    const inFallback = (step: JsonObject) => [toolCall({ on_failure: { branches: [], fallback: [step] } })];
    for (const good of [1, 2, 3, null]) expect(errorsOf(inFallback(retry({ max_retries: good })))).toEqual([]);
    for (const bad of [0, 4, 1.5, '2', true]) {
      expect(errorsOf(inFallback(retry({ max_retries: bad })))).toEqual([
        {
          path: 'steps[0].tool_call.on_failure.fallback[0].retry.max_retries',
          message: 'Step 1, on failure fallback step 1: Retry step max_retries must be an integer from 1 to 3',
        },
      ]);
    }
  });

  it('system_tool supports only end_call', () => {
    expect(errorsOf([{ type: 'system_tool', system_tool_name: 'transfer_to_number' }])).toEqual([
      { path: 'steps[0].system_tool.system_tool_name', message: 'Step 1: System tool step supports only "end_call"' },
    ]);
    expect(errorsOf([{ type: 'system_tool' }])).toEqual([
      { path: 'steps[0].system_tool.system_tool_name', message: 'Step 1: System tool step supports only "end_call"' },
    ]);
  });

  it('sub_procedure needs a procedure_id', () => {
    expect(errorsOf([{ type: 'sub_procedure', procedure_id: '' }])).toEqual([
      { path: 'steps[0].sub_procedure.procedure_id', message: 'Step 1: Sub-procedure step requires a procedure_id' },
    ]);
  });
});

describe('validateProcedures: the structural rules', () => {
  it('no two branch steps back to back', () => {
    expect(errorsOf([branch([arm(llm())]), branch([arm(llm())])])).toEqual([
      { path: 'steps[1].branch', message: 'Step 2: A branch step cannot directly follow another branch step' },
    ]);
    expect(errorsOf([branch([arm(llm())]), tell(), branch([arm(llm())])])).toEqual([]);
  });

  it('no branch inside a branch: in its branches, its fallback, or a tool call within it', () => {
    const nested = branch([arm(llm())]);
    expect(errorsOf([branch([arm(llm(), [tell(), nested])])])).toEqual([
      { path: 'steps[0].branch.branches[0].steps[1].branch', message: 'Step 1, branch 1 step 2: A branch step cannot be nested inside another branch' },
    ]);
    expect(errorsOf([branch([arm(llm())], [nested])])).toEqual([
      { path: 'steps[0].branch.fallback[0].branch', message: 'Step 1, fallback step 1: A branch step cannot be nested inside another branch' },
    ]);
    expect(errorsOf([branch([arm(llm(), [toolCall({ on_failure: { branches: [], fallback: [nested] } })])])])).toEqual([
      {
        path: 'steps[0].branch.branches[0].steps[0].tool_call.on_failure.fallback[0].branch',
        message: 'Step 1, branch 1 step 1, on failure fallback step 1: A branch step cannot be nested inside another branch',
      },
    ]);
    // A tool call's on_failure outside any branch may hold one.
    expect(errorsOf([toolCall({ on_failure: { branches: [], fallback: [nested] } })])).toEqual([]);
  });

  it('an expression-condition branch cannot directly follow ask', () => {
    expect(errorsOf([ask(), branch([arm(expression())])])).toEqual([
      { path: 'steps[1].branch', message: 'Step 2: A branch on expression conditions cannot directly follow an ask step' },
    ]);
  });

  it('all conditions of one branch are of one type', () => {
    expect(errorsOf([branch([arm(llm()), arm(llm()), arm(expression())])])).toEqual([
      { path: 'steps[0].branch.branches[2].condition', message: 'Step 1: All conditions of a branch must be of one type (branch 1 is llm, branch 3 is expression)' },
    ]);
    expect(errorsOf([toolCall({ on_failure: { branches: [arm(expression()), arm(llm())], fallback: [say()] } })])).toEqual([
      {
        path: 'steps[0].tool_call.on_failure.branches[1].condition',
        message: 'Step 1, on failure: All conditions of a branch must be of one type (branch 1 is expression, branch 2 is llm)',
      },
    ]);
  });

  it('retry only inside on_failure', () => {
    expect(errorsOf([tell(), retry()])).toEqual([{ path: 'steps[1].retry', message: "Step 2: Retry step is only allowed inside a tool call's on_failure" }]);
    expect(errorsOf([branch([arm(llm(), [retry()])])])).toEqual([
      { path: 'steps[0].branch.branches[0].steps[0].retry', message: "Step 1, branch 1 step 1: Retry step is only allowed inside a tool call's on_failure" },
    ]);
  });

  it('retry last in its on_failure list', () => {
    expect(errorsOf([toolCall({ on_failure: { branches: [], fallback: [retry(), say()] } })])).toEqual([
      { path: 'steps[0].tool_call.on_failure.fallback[0].retry', message: 'Step 1, on failure fallback step 1: Retry step must be the last step of its list' },
    ]);
    expect(errorsOf([tell(), toolCall({ on_failure: { branches: [arm(llm(), [retry(), tell()])], fallback: [say()] } })])).toEqual([
      {
        path: 'steps[1].tool_call.on_failure.branches[0].steps[0].retry',
        message: 'Step 2, on failure branch 1 step 1: Retry step must be the last step of its list',
      },
    ]);
  });

  it('end_call last in its list', () => {
    expect(errorsOf([endCall, tell()])).toEqual([{ path: 'steps[0].system_tool', message: 'Step 1: End call must be the last step of its list' }]);
    expect(errorsOf([branch([arm(llm(), [endCall, say()])])])).toEqual([
      { path: 'steps[0].branch.branches[0].steps[0].system_tool', message: 'Step 1, branch 1 step 1: End call must be the last step of its list' },
    ]);
  });

  it('on_failure.fallback not empty', () => {
    const message = 'Step 1: On failure requires at least one fallback step';
    expect(errorsOf([toolCall({ on_failure: { branches: [], fallback: [] } })])).toEqual([{ path: 'steps[0].tool_call.on_failure.fallback', message }]);
    expect(errorsOf([toolCall({ on_failure: {} })])).toEqual([{ path: 'steps[0].tool_call.on_failure.fallback', message }]);
    expect(errorsOf([toolCall({ on_failure: [] })])).toEqual([
      { path: 'steps[0].tool_call.on_failure', message: 'Step 1: Tool call step on_failure must be an object with branches and a fallback' },
    ]);
    expect(errorsOf([toolCall({ on_failure: { branches: null, fallback: [say()] } })])).toEqual([]);
    expect(errorsOf([toolCall({ on_failure: { branches: 'x', fallback: [say()] } })])).toEqual([
      { path: 'steps[0].tool_call.on_failure.branches', message: 'Step 1: On failure branches must be a list' },
    ]);
  });

  it('sub_procedure points at a deterministic procedure of the same set, not itself', () => {
    expect(errorsOf([{ type: 'sub_procedure', procedure_id: ID }])).toEqual([
      { path: 'steps[0].sub_procedure.procedure_id', message: 'Step 1: Sub-procedure step cannot reference its own procedure' },
    ]);
    expect(errorsOf([{ type: 'sub_procedure', procedure_id: 'agtprc_gone' }])).toEqual([
      { path: 'steps[0].sub_procedure.procedure_id', message: 'Step 1: Sub-procedure step references procedure "agtprc_gone", which is not a procedure of this agent' },
    ]);
    expect(errorsOf([{ type: 'sub_procedure', procedure_id: 'agtprc_free' }], [['agtprc_free', procedure()]])).toEqual([
      { path: 'steps[0].sub_procedure.procedure_id', message: 'Step 1: Sub-procedure step references procedure "agtprc_free", which is not a deterministic procedure' },
    ]);
    expect(errorsOf([{ type: 'sub_procedure', procedure_id: 'agtprc_det' }], [['agtprc_det', deterministic([tell()])]])).toEqual([]);
  });

  it('sub_procedures form no cycle (each step that closes one is reported)', () => {
    const call = (target: string) => ({ type: 'sub_procedure', procedure_id: target });
    expect(
      validate(
        ['agtprc_a', deterministic([tell(), call('agtprc_b')])],
        ['agtprc_b', deterministic([call('agtprc_c')])],
        ['agtprc_c', deterministic([call('agtprc_a'), call('agtprc_d')])],
        ['agtprc_d', deterministic([tell()])],
      ),
    ).toEqual({
      agtprc_a: [{ path: 'steps[1].sub_procedure.procedure_id', message: 'Step 2: Sub-procedures form a cycle: agtprc_a → agtprc_b → agtprc_c → agtprc_a' }],
      agtprc_b: [{ path: 'steps[0].sub_procedure.procedure_id', message: 'Step 1: Sub-procedures form a cycle: agtprc_b → agtprc_c → agtprc_a → agtprc_b' }],
      agtprc_c: [{ path: 'steps[0].sub_procedure.procedure_id', message: 'Step 1: Sub-procedures form a cycle: agtprc_c → agtprc_a → agtprc_b → agtprc_c' }],
    });
    // A diamond is no cycle.
    expect(
      validate(
        ['agtprc_a', deterministic([call('agtprc_b'), call('agtprc_c')])],
        ['agtprc_b', deterministic([call('agtprc_d')])],
        ['agtprc_c', deterministic([call('agtprc_d')])],
        ['agtprc_d', deterministic([tell()])],
      ),
    ).toEqual({});
  });

  it("tool_id is one of the agent's tools, and tool_name matches its name where the config knows it", () => {
    expect(errorsOf([toolCall({ tool_id: 'tool_other' })])).toEqual([
      { path: 'steps[0].tool_call.tool_id', message: 'Step 1: Tool call step references tool "tool_other", which is not a tool of this agent' },
    ]);
    expect(errorsOf([toolCall({ tool_name: 'Weather' })])).toEqual([
      {
        path: 'steps[0].tool_call.tool_name',
        message: 'Step 1: Tool call step tool_name "Weather" does not match the name of tool "tool_weather" ("get_weather")',
      },
    ]);
    expect(errorsOf([toolCall({ tool_id: 'tool_unnamed', tool_name: 'anything' })])).toEqual([]);
    expect(validateProcedures(new Map([[ID, deterministic([toolCall()])]]), { tools: new Map() })[ID]).toEqual([
      { path: 'steps[0].tool_call.tool_id', message: 'Step 1: Tool call step references tool "tool_weather", which is not a tool of this agent' },
    ]);
  });
});

describe('validateProcedures: fields of every type', () => {
  const longName = 'n'.repeat(MAX_PROCEDURE_NAME + 1);
  const longContent = 'c'.repeat(MAX_PROCEDURE_CONTENT + 1);

  it(`name at most ${MAX_PROCEDURE_NAME} characters, content at most ${MAX_PROCEDURE_CONTENT}, for every type`, () => {
    const nameError = { path: 'name', message: 'Name must be at most 200 characters' };
    const contentError = { path: 'content', message: 'Content must be at most 50000 characters' };
    expect(validate([ID, procedure({ name: 'n'.repeat(MAX_PROCEDURE_NAME), content: 'c'.repeat(MAX_PROCEDURE_CONTENT) })])).toEqual({});
    expect(validate([ID, procedure({ name: longName, content: longContent })])[ID]).toEqual([nameError, contentError]);
    expect(validate([ID, deterministic([tell()], { name: longName })])[ID]).toEqual([nameError]);
    const bigSteps = JSON.stringify({ steps: [tell('x'.repeat(MAX_PROCEDURE_CONTENT))] });
    expect(validate([ID, procedure({ type: 'deterministic', content: bigSteps })])[ID]).toEqual([contentError]);
    expect(validate([ID, procedure({ type: 'folder', trigger: '', name: longName })])[ID]).toEqual([nameError]);
  });

  it('a folder has empty content and trigger', () => {
    expect(validate([ID, procedure({ type: 'folder', content: 'x', trigger: 'When' })])[ID]).toEqual([
      { path: 'content', message: 'A folder has no content' },
      { path: 'trigger', message: 'A folder has no trigger' },
    ]);
  });

  it('folder_parent_id names a folder of the set', () => {
    expect(validate([ID, procedure({ folder_parent_id: 'agtprc_gone' })])[ID]).toEqual([
      { path: 'folder_parent_id', message: 'Folder parent "agtprc_gone" is not a procedure of this agent' },
    ]);
    expect(validate([ID, procedure({ folder_parent_id: 'agtprc_x' })], ['agtprc_x', procedure()])[ID]).toEqual([
      { path: 'folder_parent_id', message: 'Folder parent "agtprc_x" is not a folder' },
    ]);
    expect(validate([ID, procedure({ folder_parent_id: 3 })])[ID]).toEqual([{ path: 'folder_parent_id', message: 'Folder parent must be a procedure id or null' }]);
  });

  it('folder parents form no cycle', () => {
    const folder = (parent: string) => procedure({ type: 'folder', trigger: '', folder_parent_id: parent });
    expect(validate([ID, folder(ID)])[ID]).toEqual([{ path: 'folder_parent_id', message: 'A procedure cannot be its own folder parent' }]);
    expect(validate(['agtprc_a', folder('agtprc_b')], ['agtprc_b', folder('agtprc_a')], ['agtprc_c', folder('agtprc_a')])).toEqual({
      agtprc_a: [{ path: 'folder_parent_id', message: 'Folder parents form a cycle: agtprc_a → agtprc_b → agtprc_a' }],
      agtprc_b: [{ path: 'folder_parent_id', message: 'Folder parents form a cycle: agtprc_b → agtprc_a → agtprc_b' }],
    });
  });

  it('type is one of free_form, deterministic, folder; fields have their types', () => {
    expect(validate([ID, procedure({ type: 'structured' })])[ID]).toEqual([{ path: 'type', message: 'Type must be one of free_form, deterministic, folder' }]);
    expect(validate([ID, procedure({ name: null, content: 1, trigger: [] })])[ID]).toEqual([
      { path: 'name', message: 'Name must be a string' },
      { path: 'content', message: 'Content must be a string' },
      { path: 'trigger', message: 'Trigger must be a string' },
    ]);
    // A field of the wrong type is reported once, not read as what it should have been.
    expect(validate([ID, procedure({ type: 'deterministic', content: 1 })])[ID]).toEqual([{ path: 'content', message: 'Content must be a string' }]);
    expect(validate([ID, procedure({ type: 'folder', content: null, trigger: '' })])[ID]).toEqual([{ path: 'content', message: 'Content must be a string' }]);
    const { folder_parent_id: _, ...withoutParent } = procedure();
    expect(validate([ID, withoutParent as ProcedureBody])).toEqual({});
    expect(validateProcedures(new Map([[ID, 'x' as unknown as ProcedureBody]]), CONTEXT)[ID]).toEqual([
      { path: '', message: 'A procedure must be an object with name, content, type, trigger and folder_parent_id' },
    ]);
  });
});

describe('validateProcedures: every error of every procedure in one pass', () => {
  it('reports all the errors of one procedure, in step order', () => {
    expect(errorsOf([ask(''), retry(), branch([arm(llm()), arm(expression())]), branch([arm(llm(), [])]), endCall, say('')])).toEqual([
      { path: 'steps[0].ask.instruction', message: 'Step 1: Ask step requires an instruction' },
      { path: 'steps[1].retry', message: "Step 2: Retry step is only allowed inside a tool call's on_failure" },
      { path: 'steps[2].branch.branches[1].condition', message: 'Step 3: All conditions of a branch must be of one type (branch 1 is llm, branch 2 is expression)' },
      { path: 'steps[3].branch', message: 'Step 4: A branch step cannot directly follow another branch step' },
      { path: 'steps[3].branch.branches[0].steps', message: 'Step 4: Branch 1 requires at least one step' },
      { path: 'steps[4].system_tool', message: 'Step 5: End call must be the last step of its list' },
      { path: 'steps[5].say.message', message: 'Step 6: Say step requires a message' },
    ]);
  });

  it('the errors of a set are the errors of each procedure checked alone (no references between them)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(fc.constantFrom('agtprc_a', 'agtprc_b', 'agtprc_c', 'agtprc_d'), procedureArb), { selector: ([id]) => id, maxLength: 4 }), (entries) => {
        const alone: Record<string, ProcedureError[]> = {};
        for (const [id, body] of entries) Object.assign(alone, validate([id, body]));
        expect(validate(...entries)).toEqual(alone);
      }),
      { numRuns: 200 },
    );
  });
});

describe('validateProcedures never throws', () => {
  const check = (body: ProcedureBody) => {
    const result = validate([ID, body]);
    for (const errors of Object.values(result)) {
      expect(errors.length).toBeGreaterThan(0);
      for (const error of errors) expect(typeof error.path === 'string' && typeof error.message === 'string').toBe(true);
    }
  };

  it('on any JSON as content, as steps, or as the body itself', () => {
    fc.assert(
      fc.property(jsonValue, (value) => {
        check(procedure({ type: 'deterministic', content: JSON.stringify(value) }));
        check(procedure({ type: 'deterministic', content: JSON.stringify({ steps: value }) }));
        check(procedure({ type: 'deterministic', content: JSON.stringify({ steps: [value] }) }));
        validateProcedures(new Map([[ID, value as ProcedureBody]]), CONTEXT);
      }),
      { numRuns: 200 },
    );
  });

  it('on any text as content, and on step-like trees', () => {
    fc.assert(
      fc.property(jsonString, fc.constantFrom('free_form', 'deterministic', 'folder'), (content, type) => check(procedure({ type, content }))),
      { numRuns: 100 },
    );
    fc.assert(fc.property(procedureArb, check), { numRuns: 200 });
  });

  it('on step lists nested far beyond any real procedure: reported at the depth limit', () => {
    let steps: Json = [toolCall({ tool_id: 'tool_deepest' })];
    for (let i = 0; i < 200; i++) steps = [toolCall({ on_failure: { branches: [], fallback: steps } })];
    const errors = errorsOf(steps);
    expect(errors).toHaveLength(1);
    expect(errors[0].path).toBe(`steps[0]${'.tool_call.on_failure.fallback[0]'.repeat(MAX_STEP_NESTING)}`.replace(/\[0\]$/, ''));
    expect(errors[0].message).toMatch(/: Steps are nested more than 32 levels deep$/);
    // References are read down to the same depth.
    expect(procedureReferences(deterministic(steps)).referenced_tool_ids).toEqual(['tool_weather']);
  });

  it('on deeply nested JSON content', () => {
    const depth = 20_000;
    const content = `{"steps":[${'['.repeat(depth)}${']'.repeat(depth)}]}`;
    expect(validate([ID, procedure({ type: 'deterministic', content })])[ID]).toEqual([
      { path: 'steps[0]', message: 'Step 1: A step must be an object with a type' },
    ]);
  });
});

describe('procedureReferences', () => {
  const none = { referenced_tool_ids: [], referenced_kb_ids: [], referenced_procedure_ids: [], referenced_dynamic_variables: [] };

  it('free-form: inline tool, kb and procedure references and {{variables}}, sorted and unique', () => {
    const content = [
      '1. Ask for {{order_id}} and greet {{ user_name }}.',
      '2. Look it up with [tool id="tool_b" name="Get order"] or [tool name="Other" data-id="tool_z" id="tool_a"].',
      '3. Check [kb id="kb_policy" name="Refund policy"] and [kb id=\'kb_faq\'].',
      '4. Escalate with [procedure id="agtprc_escalate" name="Escalate"]; again [tool id="tool_b"].',
      '5. End with [system_tool id="end_call" name="End call"]; {{system__time}} and {{order_id}}.',
      '6. Not references: [tool name="no id"], [tool id=""], [toolbox id="x"], {{}}, {{ not a var }}.',
    ].join('\n');
    expect(procedureReferences(procedure({ content }))).toEqual({
      referenced_tool_ids: ['tool_a', 'tool_b'],
      referenced_kb_ids: ['kb_faq', 'kb_policy'],
      referenced_procedure_ids: ['agtprc_escalate'],
      referenced_dynamic_variables: ['order_id', 'system__time', 'user_name'],
    });
  });

  it('deterministic: tool calls, sub-procedures, {{variables}} of instructions and messages, dynamic-variable overrides', () => {
    const steps = [
      ask('Ask for {{order_id}}'),
      branch(
        [arm(llm('{{ignored_condition}}'), [{ type: 'sub_procedure', procedure_id: 'agtprc_z' }, say('Hi {{name}}')])],
        [{ type: 'say', message: 'x', message_translations: { de: { value: 'Hallo {{name_de}}' } } }],
      ),
      toolCall({
        instruction: 'Use {{city}}',
        schema_overrides: { city: { source: 'dynamic_variable', dynamic_variable: 'home_city' }, x: { source: 'llm', prompt: '{{no}}' } },
        on_failure: { branches: [arm(llm(), [toolCall({ tool_id: 'tool_backup' })])], fallback: [{ type: 'sub_procedure', procedure_id: 'agtprc_a' }] },
      }),
      { type: 'tell', instruction: 'Mention [tool id="tool_inline"] and [kb id="kb_x"]' },
    ];
    expect(procedureReferences(deterministic(steps))).toEqual({
      referenced_tool_ids: ['tool_backup', 'tool_weather'],
      referenced_kb_ids: [],
      referenced_procedure_ids: ['agtprc_a', 'agtprc_z'],
      referenced_dynamic_variables: ['city', 'home_city', 'name', 'name_de', 'order_id'],
    });
  });

  it('nothing for folders, unparsable deterministic content, or markup read as the wrong type', () => {
    expect(procedureReferences(procedure({ type: 'folder', content: '[tool id="tool_a"]' }))).toEqual(none);
    expect(procedureReferences(procedure({ type: 'deterministic', content: '[tool id="tool_a"] {{x}}' }))).toEqual(none);
    expect(procedureReferences(procedure({ content: JSON.stringify({ steps: [toolCall()] }) }))).toEqual(none);
    expect(procedureReferences(procedure({ content: 3 }))).toEqual(none);
    expect(procedureReferences(procedure({ type: 'deterministic', content: '{"steps": {"type": "tool_call", "tool_id": "tool_a"}}' }))).toEqual(none);
  });

  it('never throws, and its lists are sorted and unique', () => {
    fc.assert(
      fc.property(fc.oneof(procedureArb, jsonString.map((content) => procedure({ content }))), (body) => {
        for (const list of Object.values(procedureReferences(body))) expect(list).toEqual([...new Set(list)].sort());
      }),
      { numRuns: 200 },
    );
  });
});

describe('toolsOfConfig', () => {
  it("reads tool_ids, inline tools with an id, and enabled built-in tools", () => {
    const config: JsonObject = {
      agent: {
        prompt: {
          tool_ids: ['tool_a', 'tool_b', 7, ''],
          tools: [
            { id: 'tool_b', type: 'webhook', name: 'lookup' },
            { tool_id: 'tool_c', type: 'client', name: 'show' },
            { type: 'client', name: 'no_id' },
            { id: 'tool_d' },
            { id: 'tool_b', type: 'webhook' },
            'x',
          ],
          built_in_tools: { end_call: { type: 'system', name: 'end_call' }, transfer_to_number: null, skip_turn: { type: 'system', name: '' } },
        },
      },
    };
    expect(Object.fromEntries(toolsOfConfig(config))).toEqual({
      tool_a: undefined,
      tool_b: 'lookup',
      tool_c: 'show',
      tool_d: undefined,
      end_call: 'end_call',
      skip_turn: 'skip_turn',
    });
  });

  it('an empty map for a config without tools or of another shape', () => {
    for (const config of [{}, { agent: null }, { agent: { prompt: 'x' } }, { agent: { prompt: { tool_ids: 'x', tools: {}, built_in_tools: [] } } }]) {
      expect(toolsOfConfig(config as JsonObject).size).toBe(0);
    }
    fc.assert(fc.property(jsonValue, (value) => void toolsOfConfig({ agent: { prompt: value } })), { numRuns: 100 });
  });
});

// ---------------------------------------------------------------------------------------------
// Step-like trees: the step vocabulary with random, often wrong, fields. sub_procedure steps point
// only at an id no set holds, so a procedure's errors do not depend on the rest of its set.

const text = fc.constantFrom<Json>('x', '', ' ', 'Use {{v}}', 3, null);
const conditionArb = fc.oneof(
  fc.record({ type: fc.constant('llm'), condition: text }),
  fc.record({ type: fc.constant('expression'), expression: fc.oneof(text, fc.constant({ op: 'eq' })) }),
  fc.constantFrom<Json>(null, 'llm', { type: 'regex' }),
);

const stepArbs = fc.letrec<{ step: Json; steps: Json[] }>((tie) => ({
  steps: fc.array(tie('step'), { maxLength: 4 }),
  step: fc.oneof(
    { maxDepth: 4, depthIdentifier: 'step' },
    fc.record({ type: fc.constantFrom('ask', 'tell'), instruction: text }),
    fc.record({ type: fc.constant('say'), message: text }, { requiredKeys: ['type'] }),
    fc.record({ type: fc.constant('retry'), max_retries: fc.constantFrom<Json>(1, 3, 0, '2') }, { requiredKeys: ['type'] }),
    fc.record({ type: fc.constant('system_tool'), system_tool_name: fc.constantFrom('end_call', 'skip_turn') }),
    fc.record({ type: fc.constant('sub_procedure'), procedure_id: fc.constantFrom<Json>('agtprc_nowhere', '', 5) }),
    fc.constantFrom<Json>('ask', null, { type: 'jump' }),
    fc.record(
      { type: fc.constant('branch'), branches: fc.array(fc.record({ condition: conditionArb, steps: tie('steps') }), { maxLength: 3 }), fallback: tie('steps') },
      { requiredKeys: ['type', 'branches'] },
    ),
    fc.record(
      {
        type: fc.constant('tool_call'),
        tool_id: fc.constantFrom<Json>('tool_weather', 'tool_unnamed', 'tool_other', ''),
        tool_name: fc.constantFrom<Json>('get_weather', 'other', ''),
        on_failure: fc.record({ branches: fc.array(fc.record({ condition: conditionArb, steps: tie('steps') }), { maxLength: 2 }), fallback: tie('steps') }),
      },
      { requiredKeys: ['type', 'tool_id'] },
    ),
  ),
}));

const procedureArb: fc.Arbitrary<ProcedureBody> = fc.oneof(
  stepArbs.steps.map((steps) => deterministic(steps)),
  fc.record({ name: fc.constantFrom('P', 'n'.repeat(201)), content: fc.constantFrom('', 'x', '{{v}}'), type: fc.constantFrom('free_form', 'folder', 'other') }).map(
    (fields) => procedure(fields),
  ),
);
