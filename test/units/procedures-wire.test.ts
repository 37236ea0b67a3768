import { createRequire } from 'node:module';

import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as z from 'zod';

import { type ProcedureBody, validateProcedures } from '../../src/domain/procedures.js';
import { errorHandler } from '../../src/http/error-handler.js';
import { registerJsonBodyParser } from '../../src/http/json-body.js';
import { validatorCompiler } from '../../src/http/validator.js';
import {
  CompileProceduresValidationErrorResponseModel,
  CreateProcedureRequestModel,
  ListProceduresResponseModel,
  ProcedureAtVersionResponseModel,
  ProcedureDraftResponseModel,
  ProcedureListItemResponseModel,
  ProcedureRefResponseModel,
  UpdateProcedureDraftRequestModel,
  compileValidationFailed,
  newProcedureBody,
  procedureAtVersionWire,
  procedureDraftWire,
  procedureListItemWire,
  procedureRefWire,
  procedureValidationFailed,
  updatedProcedureBody,
} from '../../src/wire/procedures.js';

// The SDK's own (de)serializers, as it runs them on every request and response.
const require = createRequire(import.meta.url);
type Serializer = {
  parse(raw: unknown, options: object): { ok: boolean; errors?: { path: string[]; message: string }[] };
  jsonOrThrow(value: unknown, options?: object): unknown;
};
const serializers = require('@elevenlabs/elevenlabs-js/serialization/index.js') as Record<string, Serializer> & {
  conversationalAi: { agents: { procedures: { create: { Request: Serializer }; drafts: { UpdateProcedureDraftRequestModel: Serializer } } } };
};
// Strict: every field we send must be one the SDK knows, of its type.
const STRICT = { unrecognizedObjectKeys: 'fail', allowUnrecognizedUnionMembers: false, allowUnrecognizedEnumValues: false };

function sdkProblems(type: string, value: unknown): string[] {
  const result = serializers[type].parse(value, STRICT);
  return result.ok ? [] : (result.errors ?? []).map((error) => `${error.path.join('.')}: ${error.message}`);
}

const FREE: ProcedureBody = {
  name: 'Refunds',
  content: 'Look up [tool id="tool_orders"], check [kb id="kb_policy"], run [procedure id="agtprc_escalate"] for {{order_id}}.',
  type: 'free_form',
  trigger: 'When the user asks for a refund',
  folder_parent_id: 'agtprc_folder',
};
const STRUCTURED: ProcedureBody = {
  name: 'Verify',
  content: JSON.stringify({ steps: [{ type: 'ask', instruction: 'Ask for {{account}}' }, { type: 'tool_call', tool_id: 'tool_verify', tool_name: 'verify' }] }),
  type: 'deterministic',
  trigger: '',
  folder_parent_id: null,
};

function parseBody<T extends z.ZodType>(schema: T, input: unknown) {
  return schema.safeParse(input);
}

describe('CreateProcedureRequestModel', () => {
  it('fills the defaults for an absent (validated as {}) or null body', () => {
    const defaults = { name: '', content: '', type: 'free_form', trigger: null, folder_parent_id: null };
    expect(CreateProcedureRequestModel.parse({})).toEqual(defaults);
    expect(CreateProcedureRequestModel.parse(null)).toEqual(defaults);
    expect(CreateProcedureRequestModel.parse({ name: null, content: null, type: null, trigger: null, folder_parent_id: null })).toEqual(defaults);
  });

  it('reads every field, with `description` as the alias of `trigger`', () => {
    const body = { name: 'n', content: 'c', type: 'deterministic', trigger: 't', folder_parent_id: 'agtprc_f', unknown: 1 };
    expect(CreateProcedureRequestModel.parse(body)).toEqual({ name: 'n', content: 'c', type: 'deterministic', trigger: 't', folder_parent_id: 'agtprc_f' });
    expect(CreateProcedureRequestModel.parse({ description: 'd' }).trigger).toBe('d');
    expect(CreateProcedureRequestModel.parse({ trigger: null, description: 'd' }).trigger).toBe('d');
    expect(CreateProcedureRequestModel.parse({ trigger: '', description: 'd' }).trigger).toBe('');
    expect(CreateProcedureRequestModel.parse({ trigger: 't', description: 'd' }).trigger).toBe('t');
  });

  it('refuses an unknown type, a name over 200 and content over 50,000 characters, and wrong types', () => {
    for (const [body, path] of [
      [{ type: 'structured' }, ['type']],
      [{ name: 'n'.repeat(201) }, ['name']],
      [{ content: 'c'.repeat(50_001) }, ['content']],
      [{ trigger: 3 }, ['trigger']],
      [{ description: [] }, ['description']],
      [{ folder_parent_id: 1 }, ['folder_parent_id']],
    ] as const) {
      const result = parseBody(CreateProcedureRequestModel, body);
      expect(result.success, JSON.stringify(body)).toBe(false);
      expect(result.error!.issues.map((issue) => issue.path)).toEqual([path]);
    }
    expect(parseBody(CreateProcedureRequestModel, { name: 'n'.repeat(200), content: 'c'.repeat(50_000) }).success).toBe(true);
    expect(parseBody(CreateProcedureRequestModel, [1]).success).toBe(false);
  });

  it('accepts what the SDK sends', () => {
    const sent = serializers.conversationalAi.agents.procedures.create.Request.jsonOrThrow({
      name: 'Refunds',
      content: 'x',
      type: 'folder',
      trigger: '',
      folderParentId: 'agtprc_f',
    });
    expect(CreateProcedureRequestModel.parse(sent)).toEqual({ name: 'Refunds', content: 'x', type: 'folder', trigger: '', folder_parent_id: 'agtprc_f' });
    expect(CreateProcedureRequestModel.parse(serializers.conversationalAi.agents.procedures.create.Request.jsonOrThrow(undefined) ?? {})).toMatchObject({
      type: 'free_form',
    });
  });
});

describe('UpdateProcedureDraftRequestModel', () => {
  it('needs name, content and type; trigger (or description) is optional', () => {
    expect(UpdateProcedureDraftRequestModel.parse({ name: 'n', content: 'c', type: 'deterministic' })).toEqual({ name: 'n', content: 'c', type: 'deterministic', trigger: null });
    expect(UpdateProcedureDraftRequestModel.parse({ name: 'n', content: 'c', type: 'folder', description: 'd' }).trigger).toBe('d');
    const missing = parseBody(UpdateProcedureDraftRequestModel, {});
    expect(missing.error!.issues.map((issue) => issue.path)).toEqual([['name'], ['content'], ['type']]);
    expect(parseBody(UpdateProcedureDraftRequestModel, { name: 'n', content: 'c', type: 'other' }).error!.issues.map((issue) => issue.path)).toEqual([['type']]);
    expect(parseBody(UpdateProcedureDraftRequestModel, { name: 'n'.repeat(201), content: 'c'.repeat(50_001), type: 'free_form' }).error!.issues.map((issue) => issue.path)).toEqual([
      ['name'],
      ['content'],
    ]);
    expect(parseBody(UpdateProcedureDraftRequestModel, null).success).toBe(false);
  });

  it('accepts what the SDK sends', () => {
    const sent = serializers.conversationalAi.agents.procedures.drafts.UpdateProcedureDraftRequestModel.jsonOrThrow({ name: 'n', content: 'c', type: 'free_form', trigger: 't' });
    expect(UpdateProcedureDraftRequestModel.parse(sent)).toEqual({ name: 'n', content: 'c', type: 'free_form', trigger: 't' });
  });
});

describe('bodies from requests', () => {
  it('a created procedure without a trigger has an empty one', () => {
    expect(newProcedureBody(CreateProcedureRequestModel.parse({ name: 'x' }))).toEqual({ name: 'x', content: '', type: 'free_form', trigger: '', folder_parent_id: null });
  });

  it('a draft update replaces everything but a null trigger and the folder', () => {
    expect(updatedProcedureBody(FREE, UpdateProcedureDraftRequestModel.parse({ name: 'n', content: 'c', type: 'free_form' }))).toEqual({
      name: 'n',
      content: 'c',
      type: 'free_form',
      trigger: FREE.trigger,
      folder_parent_id: 'agtprc_folder',
    });
    expect(updatedProcedureBody(FREE, UpdateProcedureDraftRequestModel.parse({ name: 'n', content: 'c', type: 'free_form', trigger: '' })).trigger).toBe('');
  });
});

describe('rendered responses', () => {
  it('list items carry the references of their content, sorted', () => {
    expect(procedureListItemWire('agtprc_a', null, true, FREE)).toEqual({
      procedure_id: 'agtprc_a',
      version_id: null,
      name: 'Refunds',
      type: 'free_form',
      trigger: 'When the user asks for a refund',
      has_draft: true,
      referenced_tool_ids: ['tool_orders'],
      referenced_kb_ids: ['kb_policy'],
      referenced_procedure_ids: ['agtprc_escalate'],
      referenced_dynamic_variables: ['order_id'],
      folder_parent_id: 'agtprc_folder',
    });
    expect(procedureRefWire('agtprc_b', 'agtprcv_1', STRUCTURED)).toEqual({
      procedure_id: 'agtprc_b',
      version_id: 'agtprcv_1',
      name: 'Verify',
      type: 'deterministic',
      trigger: '',
      referenced_tool_ids: ['tool_verify'],
      referenced_kb_ids: [],
      referenced_procedure_ids: [],
      referenced_dynamic_variables: ['account'],
      folder_parent_id: null,
    });
  });

  it('a version and a draft carry the content', () => {
    expect(procedureAtVersionWire('agtprc_a', 'agtprcv_1', FREE)).toEqual({
      procedure_id: 'agtprc_a',
      version_id: 'agtprcv_1',
      name: FREE.name,
      content: FREE.content,
      type: 'free_form',
      trigger: FREE.trigger,
      folder_parent_id: 'agtprc_folder',
    });
    expect(procedureDraftWire('agtprc_a', STRUCTURED)).toEqual({
      procedure_id: 'agtprc_a',
      name: 'Verify',
      content: STRUCTURED.content,
      type: 'deterministic',
      trigger: '',
      folder_parent_id: null,
    });
  });

  it('parse through the SDK strictly, and through our response schemas', () => {
    const folder: ProcedureBody = { name: 'F', content: '', type: 'folder', trigger: '', folder_parent_id: null };
    for (const body of [FREE, STRUCTURED, folder]) {
      for (const versionId of ['agtprcv_1', null]) {
        const item = procedureListItemWire('agtprc_a', versionId, versionId === null, body);
        expect(sdkProblems('ProcedureListItemResponseModel', item)).toEqual([]);
        expect(sdkProblems('ListProceduresResponseModel', { procedures: [item] })).toEqual([]);
        expect(sdkProblems('ProcedureRefResponseModel', procedureRefWire('agtprc_a', versionId, body))).toEqual([]);
        expect(sdkProblems('ProcedureAtVersionResponseModel', procedureAtVersionWire('agtprc_a', versionId, body))).toEqual([]);
        expect(ProcedureListItemResponseModel.safeParse(item).success).toBe(true);
        expect(ListProceduresResponseModel.safeParse({ procedures: [item] }).success).toBe(true);
        expect(ProcedureRefResponseModel.safeParse(procedureRefWire('agtprc_a', versionId, body)).success).toBe(true);
        expect(ProcedureAtVersionResponseModel.safeParse(procedureAtVersionWire('agtprc_a', versionId, body)).success).toBe(true);
      }
      expect(sdkProblems('ProcedureDraftResponseModel', procedureDraftWire('agtprc_a', body))).toEqual([]);
      expect(ProcedureDraftResponseModel.safeParse(procedureDraftWire('agtprc_a', body)).success).toBe(true);
    }
    // The strict check can fail: a field the SDK does not know.
    expect(sdkProblems('ProcedureDraftResponseModel', { ...procedureDraftWire('agtprc_a', FREE), version_id: null })).not.toEqual([]);
  });
});

describe('the validation error bodies', () => {
  const errors = validateProcedures(new Map([['agtprc_a', { ...STRUCTURED, content: JSON.stringify({ steps: [{ type: 'ask', instruction: '' }] }) }]]), {
    tools: new Map(),
  });
  let app: FastifyInstance;

  beforeAll(async () => {
    app = Fastify();
    registerJsonBodyParser(app);
    app.setValidatorCompiler(validatorCompiler);
    app.setErrorHandler(errorHandler(1_000_000));
    await app.register(swagger, { openapi: { info: { title: 't', version: '0' } }, transform: jsonSchemaTransform });
    app.post('/publish', async () => {
      throw procedureValidationFailed(errors);
    });
    app.post('/compile', async () => {
      throw compileValidationFailed(errors);
    });
    app.post('/create', { schema: { body: CreateProcedureRequestModel } }, async (request) => request.body);
    app.patch('/draft', { schema: { body: UpdateProcedureDraftRequestModel } }, async (request) => request.body);
    await app.ready();
  });
  afterAll(() => app.close());

  it('publish: 400 procedure_validation_failed with every error in detail.data.errors', async () => {
    const response = await app.inject({ method: 'POST', url: '/publish' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      detail: {
        status: 'procedure_validation_failed',
        code: 'procedure_validation_failed',
        type: 'invalid_request',
        message: 'Structured procedures failed validation.',
        data: { errors: { agtprc_a: [{ path: 'steps[0].ask.instruction', message: 'Step 1: Ask step requires an instruction' }] } },
        request_id: expect.any(String),
      },
    });
  });

  it("compile: 400 with upstream's flat body, which the SDK parses", async () => {
    const response = await app.inject({ method: 'POST', url: '/compile' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ errors: { agtprc_a: [{ path: 'steps[0].ask.instruction', message: 'Step 1: Ask step requires an instruction' }] } });
    expect(sdkProblems('CompileProceduresValidationErrorResponseModel', response.json())).toEqual([]);
    expect(CompileProceduresValidationErrorResponseModel.safeParse(response.json()).success).toBe(true);
  });

  it('create takes a JSON null body and no body; an unknown type is a 422 at body.type', async () => {
    const defaults = { name: '', content: '', type: 'free_form', trigger: null, folder_parent_id: null };
    const asNull = await app.inject({ method: 'POST', url: '/create', headers: { 'content-type': 'application/json' }, payload: 'null' });
    expect([asNull.statusCode, asNull.json()]).toEqual([200, defaults]);
    const absent = await app.inject({ method: 'POST', url: '/create' });
    expect([absent.statusCode, absent.json()]).toEqual([200, defaults]);
    const unknownType = await app.inject({ method: 'POST', url: '/create', payload: { type: 'structured' } });
    expect(unknownType.statusCode).toBe(422);
    expect(unknownType.json().detail.map((issue: { loc: unknown }) => issue.loc)).toEqual([['body', 'type']]);
    const draftWithoutType = await app.inject({ method: 'PATCH', url: '/draft', payload: { name: 'n', content: 'c' } });
    expect(draftWithoutType.statusCode).toBe(422);
    expect(draftWithoutType.json().detail.map((issue: { loc: unknown }) => issue.loc)).toEqual([['body', 'type']]);
  });

  it('the request schemas document themselves in the OpenAPI document', () => {
    const paths = (app.swagger() as unknown as { paths: Record<string, Record<string, { requestBody: { content: { 'application/json': { schema: Record<string, unknown> } } } }>> }).paths;
    const create = JSON.stringify(paths['/create'].post.requestBody.content['application/json'].schema);
    expect(create).toContain('"folder_parent_id"');
    expect(create).toContain('"deterministic"');
    const draft = paths['/draft'].patch.requestBody.content['application/json'].schema as { required?: string[] };
    expect(draft.required).toEqual(['name', 'content', 'type']);
  });
});
