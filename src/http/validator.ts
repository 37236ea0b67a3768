import type { FastifyRequest, FastifySchemaCompiler } from 'fastify';
import type * as z from 'zod';

import { isLarge, offload } from '../compute/offload.js';
import type { ConfigBodyName } from '../wire/request-bodies.js';
import { JSON_NULL_BODY } from './json-body.js';
import { deepObjectParamsOf, foldDeepObjects } from './query.js';
import { validatePart } from './validate-part.js';

/** Config bodies checked in a compute worker, which the validator then passes as they are. */
const validatedBodies = new WeakSet<object>();

/** Fastify's validator for every route part: its zod schema, answering with FastAPI-style 422s. */
export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const where = httpPart === 'querystring' ? 'query' : httpPart === 'params' ? 'path' : (httpPart ?? 'body');
  // Query parameters marked so may also come as deepObject keys (`name[a][b]=…`).
  const deepObjects = where === 'query' ? deepObjectParamsOf(schema as z.ZodType) : undefined;
  return (data: unknown) => {
    // An absent body is validated as an empty object: optional bodies then pass, and a required
    // field is reported at its own `loc`. A JSON `null` is a body, and a wrong one: validated as
    // sent, it is a 422 like any other non-object.
    let input = where !== 'body' ? data : data === JSON_NULL_BODY ? null : (data ?? {});
    if (deepObjects?.size && typeof input === 'object' && input !== null) input = foldDeepObjects(input as Record<string, unknown>, deepObjects);
    // A large config body was validated already, off the event loop (the preValidation hook).
    if (where === 'body' && validatedBodies.has(input as object)) return { value: input };
    return validatePart(schema as z.ZodType, where, input);
  };
};

/**
 * A large config body is checked against its route schema in a compute worker, off the event loop
 * (src/compute): the same check the validator makes, with the same answer.
 */
export async function validateLargeBody(request: FastifyRequest, name: ConfigBodyName): Promise<void> {
  const body = request.body;
  if (body === null || typeof body !== 'object' || !isLarge(body)) return;
  const value = (await offload('validateConfigBody', name, body)) as object;
  validatedBodies.add(value);
  request.body = value;
}
