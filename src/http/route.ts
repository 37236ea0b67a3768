import type { FastifyReply, FastifyRequest } from 'fastify';
import type * as z from 'zod';

import type { Caller, Permission } from '../domain/caller.js';
import type { RouteExample } from './route-example.js';

type Infer<T> = T extends z.ZodType ? z.output<T> : undefined;

export interface RouteContext<P, Q, B> {
  params: Infer<P>;
  query: Infer<Q>;
  body: Infer<B>;
  /**
   * Who called. Every route but a `public` one needs a key; the `onRequest` hook refuses a request
   * without one, and the handler fails loudly if such a route ever reaches it without a caller.
   * A `public` route has none (it authenticates its requests itself, in `beforeValidation`): it
   * must not read this.
   */
  caller: Caller;
  request: FastifyRequest;
  reply: FastifyReply;
}

/** One route, as data: the OpenAPI document and the permission matrix are generated from these. */
export interface RouteDefinition<P = unknown, Q = unknown, B = unknown> {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  permission: Permission;
  params?: P;
  query?: Q;
  body?: B;
  /** Response schemas by status, for the OpenAPI document. */
  responses: Record<number, z.ZodType>;
  /** A route upstream does not have: `x-branchwise-extension: true` in the OpenAPI document. */
  extension?: boolean;
  /** A request this route accepts, for the test suites (see route-example.ts); every route has one. */
  example?: RouteExample;
  /** A hot read: no per-request log line (errors are still logged), decisions.md D17. */
  quiet?: boolean;
  /**
   * Runs before the body is validated: a `public` route's own authentication (a signed webhook),
   * so that an unauthenticated request is refused before anything about its body is said.
   */
  beforeValidation?: (request: FastifyRequest) => Promise<void>;
  /** Keep the body's raw text for the handler (`rawJsonBody`): a signature covers the bytes sent. */
  keepRawBody?: boolean;
  handler(context: RouteContext<P, Q, B>): Promise<unknown>;
}

export function defineRoute<P extends z.ZodType | undefined, Q extends z.ZodType | undefined, B extends z.ZodType | undefined>(
  route: RouteDefinition<P, Q, B>,
): RouteDefinition {
  return route as unknown as RouteDefinition;
}
