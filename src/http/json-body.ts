import type { FastifyInstance, FastifyRequest } from 'fastify';

import { RequestValidationError } from '../errors.js';

/**
 * What the parser hands on for a body that is the JSON text `null`: Fastify gives `null` for a
 * request without a body too, and the two must not be confused (no body is `{}`, `null` is a 422).
 */
export const JSON_NULL_BODY = Symbol('JSON null body');

/** Deeper JSON than this is refused before any recursive code sees it (a depth bomb). */
export const MAX_JSON_DEPTH = 64;

/**
 * Most JSON values (array items and object members, at any depth) in one request body. What a
 * write costs (validation, defaults, content hashing, storing) grows with the number of values, not
 * with bytes: at the 2 MiB body limit `[{},{},…]` is 700,000 values and took ~10 s of event loop.
 * This cap keeps every request under ~100 ms of event loop (bench/event-loop.bench.ts) while
 * leaving room for large real configs (a default agent as GET returns it has ~350).
 */
export const MAX_JSON_VALUES = 20_000;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Keep the JSON body's text as received (`rawJsonBody`): for a signature over the body. */
    keepRawBody?: boolean;
  }
}

/** Raw JSON text of the requests whose route asked for it, while they are alive. */
const rawBodies = new WeakMap<FastifyRequest, string>();
/** Why such a body could not be parsed: said once the route has authenticated the request. */
const deferredErrors = new WeakMap<FastifyRequest, Error>();

/**
 * The parse error of a `keepRawBody` route's body, if any: such a route authenticates its request
 * from the raw body first (a signature), so that an unsigned request learns nothing about its body.
 */
export function deferredBodyError(request: FastifyRequest): Error | undefined {
  return deferredErrors.get(request);
}

/**
 * The body's text as received (decoded as UTF-8), for a route with `keepRawBody`; '' for none. Its
 * UTF-8 bytes are the bytes sent whenever they were valid UTF-8 (JSON must be).
 */
export function rawJsonBody(request: FastifyRequest): string {
  return rawBodies.get(request) ?? '';
}

/**
 * Replaces Fastify's JSON parser so that malformed JSON is a FastAPI-shaped 422 (`json_invalid`,
 * as upstream answers) and nesting is bounded. A `__proto__` key and numbers beyond the double range are refused.
 */
export function registerJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser(['application/json']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    const keepRaw = request.routeOptions.config.keepRawBody === true;
    if (keepRaw) rawBodies.set(request, text);
    const fail = (error: Error) => {
      if (!keepRaw) return done(error, undefined);
      deferredErrors.set(request, error);
      return done(null, undefined);
    };
    if (text.trim() === '') return done(null, undefined);
    const shape = measureJson(text, MAX_JSON_DEPTH);
    if (shape.tooDeep) {
      return fail(RequestValidationError.at(['body'], `JSON nests deeper than ${MAX_JSON_DEPTH} levels`, 'json_too_deep'));
    }
    if (shape.values > MAX_JSON_VALUES) {
      return fail(
        RequestValidationError.at(
          ['body'],
          `JSON has ${shape.values} values (array items and object members); the limit is ${MAX_JSON_VALUES} per request`,
          'json_too_many_values',
        ),
      );
    }
    try {
      const parsed = JSON.parse(text, checkMember) as unknown;
      done(null, parsed === null ? JSON_NULL_BODY : parsed);
    } catch (error) {
      const message = error instanceof Error ? error.message : 'invalid JSON';
      fail(RequestValidationError.at(['body', 0], `JSON decode error: ${message}`, 'json_invalid'));
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

/**
 * Scans brackets and commas outside strings, before the text is parsed: whether it nests deeper
 * than `depthLimit`, and how many array items and object members it has (each but the first of a
 * container follows a comma; a container that is not empty has a first). Malformed text is
 * counted as it comes; the parser refuses it afterwards.
 */
export function measureJson(text: string, depthLimit: number): { tooDeep: boolean; values: number } {
  let depth = 0;
  let values = 0;
  let inString = false;
  /** Just after `{` or `[`: the next character that is not whitespace says whether it is empty. */
  let opened = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 32 || c === 10 || c === 13 || c === 9) continue;
    if (opened) {
      opened = false;
      if (c !== 125 && c !== 93) values++;
    }
    if (c === 34) inString = true;
    else if (c === 44) values++;
    else if (c === 123 || c === 91) {
      if (++depth > depthLimit) return { tooDeep: true, values };
      opened = true;
    } else if (c === 125 || c === 93) depth--;
  }
  return { tooDeep: false, values };
}
