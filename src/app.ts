import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { sql } from 'kysely';

import { type Config, DEFAULT_EXPERIMENT_EVALUATION_INTERVAL_MS, DEFAULT_EXPERIMENT_RETENTION_DAYS, DEFAULT_HTTP_TIMEOUTS } from './config.js';
import { type AppContext, createContext } from './context.js';
import type { Store } from './db/connect.js';
import { agentRoutes } from './features/agents/agents.routes.js';
import { agentsService } from './features/agents/agents.service.js';
import { auditRoutes } from './features/audit/audit.routes.js';
import { procedureRoutes } from './features/procedures/procedures.routes.js';
import { type GuardedRolloutEvaluator, guardedRolloutEvaluator } from './features/experiments/guarded-rollouts.evaluator.js';
import { guardedRolloutRoutes } from './features/experiments/guarded-rollouts.routes.js';
import { DEFAULT_SOURCES, type GuardedRolloutSources } from './features/experiments/guarded-rollouts.sources.js';
import { experimentRoutes } from './features/experiments/experiments.routes.js';
import { wireExperiments } from './features/experiments/experiments.runtime.js';
import { experimentRetention } from './features/experiments/retention.js';
import { branchRoutes } from './features/branches/branches.routes.js';
import { deploymentRoutes } from './features/deployments/deployments.routes.js';
import { draftRoutes } from './features/drafts/drafts.routes.js';
import { mergeProposalRoutes } from './features/merge-proposals/merge-proposals.routes.js';
import { mergeRoutes } from './features/merges/merges.routes.js';
import { versionRoutes } from './features/versions/versions.routes.js';
import { apiKeyAuthenticator } from './features/workspaces/api-key-authenticator.js';
import { whoamiRoutes } from './features/workspaces/whoami.routes.js';
import { workspaceUserRoutes } from './features/workspaces/workspace-users.routes.js';
import { DEFAULT_WORKSPACE, type WorkspacesService, workspacesService } from './features/workspaces/workspaces.service.js';
import { ForbiddenError } from './errors.js';
import type { Caller } from './domain/caller.js';
import { checkAccess } from './http/authenticator.js';
import { registerDashboard } from './http/dashboard.js';
import { answerClientError, errorHandler, frameworkErrors, newRequestId, notFoundHandler } from './http/error-handler.js';
import { agentFastPath, FAST_PATH_ROUTE, type FastPathCounters } from './http/fast-path.js';
import { deferredBodyError, registerJsonBodyParser } from './http/json-body.js';
import { RateLimiter } from './http/rate-limit.js';
import { createHttpServer } from './http/server.js';
import type { RouteDefinition } from './http/route.js';
import { validateLargeBody, validatorCompiler } from './http/validator.js';
import { LatencyRecorder } from './metrics/latency.js';
import { configBodyName } from './wire/request-bodies.js';
import { type AppMetrics, createMetrics } from './metrics/metrics.js';
import { createWriteMetrics } from './metrics/write-metrics.js';

/** A body over the limit is read and discarded up to this many times the limit before the connection is closed. */
export const BODY_DRAIN_FACTOR = 4;

export interface AppOptions {
  config: Pick<Config, 'bodyLimitBytes' | 'logLevel'> &
    Partial<Pick<Config, 'cacheMaxBytes' | 'rateLimit' | 'httpTimeouts' | 'publicUrl' | 'recordExposures' | 'exposureFlushIntervalMs' | 'experimentEvaluationIntervalMs' | 'experimentRetentionDays'>>;
  store: Store;
  /** Overrides the clock (also the rate limiter's), for tests. */
  now?: () => number;
  logger?: boolean;
  /** The built dashboard's folder (default web/dist, see src/http/dashboard.ts). */
  dashboardDir?: string;
  /** Overrides what the guarded rollout evaluator reads (experiment results, metrics), for tests. */
  guardedRolloutSources?: Partial<GuardedRolloutSources>;
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
  /** Evaluates running guarded rollouts on a timer, in the process holding its lease; stopped when the server closes. */
  guardedRollouts: GuardedRolloutEvaluator;
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
    ...procedureRoutes(context),
    ...guardedRolloutRoutes(context),
    ...experimentRoutes(context),
    ...whoamiRoutes(context),
    ...workspaceUserRoutes(context),
  ];
}

export async function buildApp(options: AppOptions): Promise<App> {
  const context = createContext(options.store, createWriteMetrics(), options.now, options.config.cacheMaxBytes);
  const workspaces = workspacesService(options.store, options.now);
  const authenticator = apiKeyAuthenticator(workspaces);
  const fastPath: FastPathCounters = { served: 0, latency: new LatencyRecorder() };
  const limiter = options.config.rateLimit ? new RateLimiter(options.config.rateLimit, options.now) : undefined;
  const metrics = createMetrics({ context, store: options.store, fastPath, fastPathRoute: FAST_PATH_ROUTE, limiter });
  const agentsForFastPath = agentsService(context);
  const serveFast = agentFastPath(
    authenticator,
    context.routing,
    (caller, agentId, selector) => agentsForFastPath.quickGet(caller, agentId, selector),
    fastPath,
    limiter,
  );
  const server = Fastify({
    // `GET agent` answers on raw node:http before Fastify sees the request (decisions.md D17).
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
    frameworkErrors,
  });

  registerJsonBodyParser(server);
  server.setValidatorCompiler(validatorCompiler);
  // Responses are built to the wire shape by the services (often as pre-serialized text).
  server.setSerializerCompiler(() => (data) => JSON.stringify(data));

  server.setErrorHandler(errorHandler(options.config.bodyLimitBytes));
  server.setNotFoundHandler(notFoundHandler);

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
  await registerDashboard(server, options.dashboardDir);

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

  server.addHook('onRequest', checkAccess(authenticator, limiter));

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

  // Routed reads record exposures; what is buffered is written when the server closes (SIGTERM).
  server.addHook('onClose', wireExperiments(context, metrics.registry, options.config));
  const routes = routeTable(context);
  for (const route of routes) registerRoute(server, route);

  const guardedRollouts = guardedRolloutEvaluator(context, {
    intervalMs: options.config.experimentEvaluationIntervalMs ?? DEFAULT_EXPERIMENT_EVALUATION_INTERVAL_MS,
    sources: { ...DEFAULT_SOURCES, ...options.guardedRolloutSources },
    warn: (details, message) => server.log.warn(details, message),
  });
  guardedRollouts.start();
  server.addHook('onClose', () => guardedRollouts.stop());
  const retention = experimentRetention(context, {
    retentionDays: options.config.experimentRetentionDays ?? DEFAULT_EXPERIMENT_RETENTION_DAYS,
    warn: (details, message) => server.log.warn(details, message),
  });
  retention.start();
  server.addHook('onClose', () => retention.stop());

  return { server, context, workspaces, routes, fastPath, metrics, limiter, guardedRollouts };
}

/** A route's own authentication, then what its body's parser found wrong (json-body.ts). */
function authenticatingRoute(authenticate: (request: FastifyRequest) => Promise<void>) {
  return async (request: FastifyRequest): Promise<void> => {
    await authenticate(request);
    const error = deferredBodyError(request);
    if (error) throw error;
  };
}

function registerRoute(server: FastifyInstance, route: RouteDefinition): void {
  const configBody = route.body ? configBodyName(route.body) : undefined;
  server.route({
    method: route.method,
    url: route.url,
    config: { permission: route.permission, ...(route.keepRawBody ? { keepRawBody: true } : {}) },
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
    ...(route.beforeValidation ? { preValidation: authenticatingRoute(route.beforeValidation) } : {}),
    handler: async (request, reply) => {
      const caller = request.caller;
      if (!caller && route.permission !== 'public') throw new Error(`${route.operationId} ran without a caller: its onRequest hook did not authenticate`);
      // A public route has no caller and never reads it (route.ts).
      return route.handler({ params: request.params as never, query: request.query as never, body: request.body as never, caller: caller as Caller, request, reply });
    },
  });
}

