import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { sql } from 'kysely';
import type * as z from 'zod';

import { isLarge, offload } from './compute/offload.js';
import { type Config, DEFAULT_HTTP_TIMEOUTS } from './config.js';
import { type AppContext, createContext } from './context.js';
import type { Store } from './db/connect.js';
import { agentRoutes } from './features/agents/agents.routes.js';
import { agentsService } from './features/agents/agents.service.js';
import { auditRoutes } from './features/audit/audit.routes.js';
import { branchRoutes } from './features/branches/branches.routes.js';
import { deploymentRoutes } from './features/deployments/deployments.routes.js';
import { draftRoutes } from './features/drafts/drafts.routes.js';
import { mergeProposalRoutes } from './features/merge-proposals/merge-proposals.routes.js';
import { mergeRoutes } from './features/merges/merges.routes.js';
import { versionRoutes } from './features/versions/versions.routes.js';
import { DEFAULT_WORKSPACE, type WorkspacesService, workspacesService } from './features/workspaces/workspaces.service.js';
import type { Caller } from './features/workspaces/workspaces.store.js';
import { ApiError, AuthenticationError, ForbiddenError, PayloadTooLargeError, RequestValidationError } from './http/errors.js';
import { agentFastPath, FAST_PATH_ROUTE, type FastPathCounters } from './http/fast-path.js';
import { JSON_NULL_BODY, registerJsonBodyParser } from './http/json-body.js';
import { deepObjectParamsOf, foldDeepObjects } from './http/query.js';
import { RateLimitedError, RateLimiter } from './http/rate-limit.js';
import { createHttpServer } from './http/server.js';
import { type Permission, type RouteDefinition, roleAllows } from './http/route.js';
import { validatePart } from './http/validate-part.js';
import { LatencyRecorder } from './metrics/latency.js';
import { type ConfigBodyName, configBodyName } from './wire/request-bodies.js';
import { type AppMetrics, createMetrics } from './metrics/metrics.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
  interface FastifyContextConfig {
    permission?: Permission;
    /** false: the per-key rate limit does not apply (a scrape must never be turned away). */
    rateLimited?: boolean;
  }
}

/** A body over the limit is read and discarded up to this many times the limit before the connection is closed. */
export const BODY_DRAIN_FACTOR = 4;

export interface AppOptions {
  config: Pick<Config, 'bodyLimitBytes' | 'logLevel'> & Partial<Pick<Config, 'cacheMaxBytes' | 'rateLimit' | 'httpTimeouts'>>;
  store: Store;
  /** Overrides the clock (also the rate limiter's), for tests. */
  now?: () => number;
  logger?: boolean;
}

export interface App {
  server: FastifyInstance;
  context: AppContext;
  workspaces: WorkspacesService;
  routes: RouteDefinition[];
  /** What the routed read's fast path served. */
  fastPath: FastPathCounters;
  /** Served at `GET /metrics` (admin keys of the default workspace). */
  metrics: AppMetrics;
  /** Present when a rate limit is configured. */
  limiter?: RateLimiter;
}

/** Every API route, as data: the OpenAPI document and the permission tests read this. */
export function routeTable(context: AppContext): RouteDefinition[] {
  return [
    ...agentRoutes(context),
    ...branchRoutes(context),
    ...mergeRoutes(context),
    ...versionRoutes(context),
    ...draftRoutes(context),
    ...deploymentRoutes(context),
    ...mergeProposalRoutes(context),
    ...auditRoutes(context),
  ];
}

export async function buildApp(options: AppOptions): Promise<App> {
  const context = createContext(options.store, options.now, options.config.cacheMaxBytes);
  const workspaces = workspacesService(options.store, options.now);
  const fastPath: FastPathCounters = { served: 0, latency: new LatencyRecorder() };
  const limiter = options.config.rateLimit ? new RateLimiter(options.config.rateLimit, options.now) : undefined;
  const metrics = createMetrics({ context, store: options.store, fastPath, fastPathRoute: FAST_PATH_ROUTE, limiter });
  context.metrics = metrics.writes;
  const agentsForFastPath = agentsService(context);
  const serveFast = agentFastPath(
    workspaces,
    context.routing,
    (caller, agentId, selector) => agentsForFastPath.quickGet(caller, agentId, selector),
    fastPath,
    limiter,
  );
  const server = Fastify({
    // `GET agent` answers on raw node:http before Fastify sees the request (DESIGN §12.12).
    serverFactory: (handler) =>
      createHttpServer(options.config.httpTimeouts ?? DEFAULT_HTTP_TIMEOUTS, serveFast, handler, BODY_DRAIN_FACTOR * options.config.bodyLimitBytes),
    logger:
      options.logger === false
        ? false
        : { level: options.config.logLevel, redact: { paths: ['req.headers["xi-api-key"]'], remove: true } },
    bodyLimit: options.config.bodyLimitBytes,
    genReqId: newRequestId,
    requestIdHeader: false,
    // Upstream ignores trailing slashes and repeated ones the same way.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
    // Requests node:http cannot parse (a malformed request line, headers too large, too slow)
    // never reach a route; they still get the documented error shape.
    clientErrorHandler: answerClientError,
    // URL problems the router finds before any route runs still get the documented error shape.
    frameworkErrors: (error, request, reply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const apiError = tooLong
        ? new ApiError(404, 'not_found', 'not_found', 'No resource has that id.')
        : new ApiError(400, 'invalid_request', 'invalid_request', 'The request URL is malformed.');
      void reply.code(apiError.statusCode as never).send(errorBody(apiError, request) as never);
    },
  });

  registerJsonBodyParser(server);
  server.setValidatorCompiler(({ schema, httpPart }) => {
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
  });
  // Responses are built to the wire shape by the services (often as pre-serialized text).
  server.setSerializerCompiler(() => (data) => JSON.stringify(data));

  server.setErrorHandler((error: FastifyError | Error, request, reply) => {
    if (error instanceof RequestValidationError) {
      return reply.code(422).send({ detail: error.issues });
    }
    let apiError: ApiError;
    if (error instanceof RateLimitedError) {
      apiError = error;
      void reply.header('retry-after', String(error.retryAfterSeconds));
    } else if (error instanceof ApiError) apiError = error;
    else if ((error as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      apiError = new PayloadTooLargeError(options.config.bodyLimitBytes);
      // Fastify asks to close at once, which resets a client still sending: the server drains the
      // rest instead, up to a bound, and closes only beyond it (createHttpServer).
      void reply.removeHeader('connection');
    }
    else if (typeof (error as FastifyError).statusCode === 'number' && (error as FastifyError).statusCode! < 500) {
      const status = (error as FastifyError).statusCode!;
      apiError = new ApiError(status, 'invalid_request', 'invalid_request', error.message);
    } else {
      request.log.error({ err: error }, 'unhandled error');
      apiError = new ApiError(500, 'internal_error', 'internal_error', 'The server failed to handle this request.');
    }
    return reply.code(apiError.statusCode).send(errorBody(apiError, request));
  });
  server.setNotFoundHandler((request, reply) => {
    reply.code(404).send(
      errorBody(new ApiError(404, 'not_found', 'not_found', `No route for ${request.method} ${request.url.split('?')[0]}.`), request),
    );
  });

  await server.register(swagger, {
    openapi: {
      info: {
        title: 'branchwise',
        version: '0.1.0',
        description:
          'A self-hostable server for the ElevenLabs Agents API: agents, branches, versions, drafts, merges and ' +
          'deployments. Authenticate with the `xi-api-key` header.',
      },
      components: { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'xi-api-key' } } },
    },
    transform: jsonSchemaTransform,
  });
  await server.register(swaggerUi, { routePrefix: '/docs' });

  server.get('/openapi.json', { schema: { hide: true } }, async () => server.swagger());
  server.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  server.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    try {
      await sql`select 1`.execute(options.store.db);
      return { status: 'ok' };
    } catch {
      return reply.code(503).send({ status: 'unavailable' });
    }
  });

  server.addHook('onRequest', async (request) => {
    const permission = request.routeOptions.config.permission;
    if (permission === undefined || permission === 'public') return;
    const header = request.headers['xi-api-key'];
    const key = Array.isArray(header) ? header[0] : header;
    if (!key) throw new AuthenticationError('missing_api_key', 'This request needs an API key in the xi-api-key header.');
    const caller = await workspaces.authenticate(key);
    if (!caller) throw new AuthenticationError('invalid_api_key', 'The API key is not valid.');
    // Limited per key once the key is known to be valid (an invalid one never gets a bucket).
    if (limiter && request.routeOptions.config.rateLimited !== false) {
      const waitSeconds = limiter.check(request.raw, caller, key);
      if (waitSeconds > 0) throw new RateLimitedError(waitSeconds);
    }
    if (!roleAllows(caller.role, permission)) {
      throw new ForbiddenError(`The ${caller.role} role may not ${describePermission(permission)}.`);
    }
    request.caller = caller;
  });

  // By route pattern, never the raw URL (ids would make a series per agent).
  server.addHook('onResponse', (request, reply, done) => {
    metrics.recordResponse(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  // Counts cover every workspace, so only the operator's (the default workspace's) admins read them.
  // Not rate-limited: Prometheus scrapes on a schedule with one key, and a 429 would be a gap in
  // the very graphs that show the limiting (issue 16).
  server.get('/metrics', { schema: { hide: true }, config: { permission: 'admin', rateLimited: false } }, async (request, reply) => {
    const operators = (await workspaces.listWorkspaces()).find((workspace) => workspace.name === DEFAULT_WORKSPACE);
    if (request.caller?.workspaceId !== operators?.id) {
      throw new ForbiddenError(`Metrics cover every workspace: they need an admin key of the "${DEFAULT_WORKSPACE}" workspace.`);
    }
    return reply.type(metrics.contentType).send(await metrics.render());
  });

  const routes = routeTable(context);
  for (const route of routes) registerRoute(server, route);

  return { server, context, workspaces, routes, fastPath, metrics, limiter };
}

/** Config bodies checked in a compute worker, which the validator then passes as they are. */
const validatedBodies = new WeakSet<object>();

/**
 * A large config body is checked against its route schema in a compute worker, off the event loop
 * (src/compute): the same check the validator makes, with the same answer.
 */
async function validateLargeBody(request: FastifyRequest, name: ConfigBodyName): Promise<void> {
  const body = request.body;
  if (body === null || typeof body !== 'object' || !isLarge(body)) return;
  const value = (await offload('validateConfigBody', name, body)) as object;
  validatedBodies.add(value);
  request.body = value;
}

function registerRoute(server: FastifyInstance, route: RouteDefinition): void {
  const configBody = route.body ? configBodyName(route.body) : undefined;
  server.route({
    method: route.method,
    url: route.url,
    config: { permission: route.permission },
    ...(route.quiet ? { logLevel: 'warn' } : {}),
    schema: {
      operationId: route.operationId,
      summary: route.summary,
      description: route.description,
      tags: [route.tag],
      security: route.permission === 'public' ? [] : [{ apiKey: [] }],
      // Routes upstream does not have; @fastify/swagger copies `x-` keys into the operation.
      ...(route.extension ? { 'x-branchwise-extension': true } : {}),
      ...(route.params ? { params: route.params } : {}),
      ...(route.query ? { querystring: route.query } : {}),
      ...(route.body ? { body: route.body } : {}),
      response: route.responses,
    },
    ...(configBody ? { preValidation: (request: FastifyRequest) => validateLargeBody(request, configBody) } : {}),
    handler: async (request, reply) =>
      route.handler({
        params: request.params as never,
        query: request.query as never,
        body: request.body as never,
        caller: request.caller as Caller,
        request,
        reply,
      }),
  });
}

function describePermission(permission: Permission): string {
  switch (permission) {
    case 'admin':
      return 'do this; it needs admin';
    case 'write':
      return 'make changes';
    case 'comment':
      return 'comment or review';
    default:
      return 'read this';
  }
}

const newRequestId = () => `req_${randomBytes(12).toString('hex')}`;

function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  // A reset connection has nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'The request took too long to arrive.']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'The request headers are too large.']
        : [400, 'The request is malformed.'];
  const code = status === 400 ? 'invalid_request' : status === 408 ? 'request_timeout' : 'request_header_fields_too_large';
  const body = JSON.stringify({ detail: { status: code, code, type: 'invalid_request', message, request_id: newRequestId() } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

function errorBody(error: ApiError, request: FastifyRequest) {
  return {
    detail: {
      status: error.code,
      code: error.code,
      type: error.type,
      message: error.message,
      request_id: request.id,
    },
  };
}
