import type * as z from 'zod';

import { ApiError, RequestValidationError } from '../errors.js';
import { findBadText } from './text.js';

/**
 * A request part checked against its route schema, as Fastify's validator compiler answers: the
 * parsed value, or the error (a 422 whose `loc` starts with `where`; a path with text no id holds
 * is a 404). Pure, so that a large body can be checked in a compute worker (src/compute).
 */
export function validatePart(schema: z.ZodType, where: string, input: unknown): { value: unknown } | { error: Error } {
  if (where === 'path') {
    // No id contains such text, so no such resource exists.
    const bad = findBadText(input);
    if (bad) return { error: new ApiError(404, 'not_found', 'not_found', 'No resource has that id.') };
  }
  const result = schema.safeParse(input);
  if (result.success) {
    const bad = findBadText(result.data);
    if (bad) {
      return {
        error: RequestValidationError.at([where, ...bad], 'Text must not contain NUL characters or unpaired UTF-16 surrogates', 'string_invalid_characters'),
      };
    }
    return { value: result.data };
  }
  return {
    error: new RequestValidationError(
      result.error.issues.map((issue) => ({
        loc: [where, ...issue.path.map((segment) => (typeof segment === 'symbol' ? String(segment) : segment))],
        msg: issue.message,
        type: issue.code,
      })),
    ),
  };
}
