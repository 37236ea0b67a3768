import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

import type { HttpTimeouts } from '../config.js';

/** Answers a request itself (true, or a promise of true) or leaves it to Fastify (false). */
export type FrontHandler = (request: IncomingMessage, response: ServerResponse) => boolean | Promise<boolean>;

/**
 * The `node:http` server under Fastify: the fast path answers first (DESIGN §12.12), Fastify the
 * rest. Fastify applies its own timeout options only to servers it creates, so with a
 * `serverFactory` they are set here, on node:http itself.
 */
export function createHttpServer(timeouts: HttpTimeouts, front: FrontHandler, handler: (request: IncomingMessage, response: ServerResponse) => void): Server {
  const server = createServer(
    {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      // node:http enforces the two above on a timer (30 s by default), so a 10 s limit could let a
      // slow client stay 40 s; check often enough to keep them close to what they say.
      connectionsCheckingInterval: checkingIntervalFor(timeouts),
    },
    (request, response) => {
      const served = front(request, response);
      if (served === false) handler(request, response);
      else if (served !== true) {
        served.then(
          (done) => done || handler(request, response),
          () => handler(request, response),
        );
      }
    },
  );
  server.keepAliveTimeout = timeouts.keepAliveMs;
  // Without a 'timeout' listener node:http destroys a socket idle this long.
  server.setTimeout(timeouts.connectionMs);
  return server;
}

function checkingIntervalFor(timeouts: HttpTimeouts): number {
  const shortest = Math.min(...[timeouts.headersMs, timeouts.requestMs].filter((ms) => ms > 0));
  return Number.isFinite(shortest) ? Math.min(1_000, Math.max(10, Math.floor(shortest / 4))) : 30_000;
}
