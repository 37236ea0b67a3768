import type { FastifyInstance } from 'fastify';

import { RequestValidationError } from './errors.js';

/**
 * What the parser hands on for a body that is the JSON text `null`: Fastify gives `null` for a
 * request without a body too, and the two must not be confused (no body is `{}`, `null` is a 422).
 */
export const JSON_NULL_BODY = Symbol('JSON null body');

/** Deeper JSON than this is refused before any recursive code sees it (a depth bomb). */
export const MAX_JSON_DEPTH = 64;

/**
 * Replaces Fastify's JSON parser so that malformed JSON is a FastAPI-shaped 422 (`json_invalid`,
 * as upstream answers) and nesting is bounded. A `__proto__` key and numbers beyond the double range are refused.
 */
export function registerJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser(['application/json']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    const depthProblem = exceedsDepth(text, MAX_JSON_DEPTH);
    if (depthProblem !== undefined) {
      return done(
        RequestValidationError.at(['body'], `JSON nests deeper than ${MAX_JSON_DEPTH} levels`, 'json_too_deep'),
        undefined,
      );
    }
    try {
      const parsed = JSON.parse(text, checkMember) as unknown;
      done(null, parsed === null ? JSON_NULL_BODY : parsed);
    } catch (error) {
      const message = error instanceof Error ? error.message : 'invalid JSON';
      done(RequestValidationError.at(['body', 0], `JSON decode error: ${message}`, 'json_invalid'), undefined);
    }
  });
}

function checkMember(key: string, value: unknown): unknown {
  // `__proto__` would turn into a prototype change in the first `obj[key] = value` downstream.
  if (key === '__proto__') {
    throw new SyntaxError(`the key ${JSON.stringify(key)} is not allowed`);
  }
  // `1e999` parses as Infinity, which JSON cannot hold: stored, it would read back as null.
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new SyntaxError(`the number at ${JSON.stringify(key)} is out of range`);
  }
  return value;
}

/** Scans brackets outside strings; returns the offset where the limit is passed, if it is. */
function exceedsDepth(text: string, limit: number): number | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > limit) return i;
    } else if (c === 125 || c === 93) depth--;
  }
  return undefined;
}
