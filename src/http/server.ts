import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

import type { HttpTimeouts } from '../config.js';

/** Answers a request itself (true, or a promise of true) or leaves it to Fastify (false). */
export type FrontHandler = (request: IncomingMessage, response: ServerResponse) => boolean | Promise<boolean>;

/**
 * The `node:http` server under Fastify: the fast path answers first (decisions.md D17), Fastify the
 * rest. Fastify applies its own timeout options only to servers it creates, so with a
 * `serverFactory` they are set here, on node:http itself. `drainLimitBytes`: how much of a body
 * left unread by an answer (a 413, a 401 before the body…) is read and discarded; see `discardUnread`.
 */
export function createHttpServer(
  timeouts: HttpTimeouts,
  front: FrontHandler,
  handler: (request: IncomingMessage, response: ServerResponse) => void,
  drainLimitBytes: number,
): Server {
  const server = createServer(
    {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      // node:http enforces the two above on a timer (30 s by default), so a 10 s limit could let a
      // slow client stay 40 s; check often enough to keep them close to what they say.
      connectionsCheckingInterval: checkingIntervalFor(timeouts),
    },
    (request, response) => {
      // Before node:http's own 'finish' listener, which would discard the rest unseen and unbounded.
      response.prependOnceListener('finish', () => {
        if (!request.complete) discardUnread(request, drainLimitBytes);
      });
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

/**
 * Reads and discards what the client still sends of a body the answer did not need, up to
 * `limitBytes`, then closes the connection, lingering as nginx's lingering close does. Closing at
 * once, with bytes unread, makes the kernel reset the connection, and a client still writing its
 * body (Node's fetch, the official SDK) fails with EPIPE and never reads the 413 it was sent. A
 * body that ends within the limit leaves the connection open for the next request.
 */
function discardUnread(request: IncomingMessage, limitBytes: number): void {
  let discarded = 0;
  const count = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > limitBytes) {
      request.off('data', count);
      closeAfterLinger(request);
    }
  };
  request.on('data', count);
  request.once('end', () => request.off('data', count));
  request.resume();
}

/** How long a connection cut off for its body stays half-closed before it is closed for good. */
const LINGER_MS = 2_000;

/**
 * Stops reading, sends what is written and then the end (FIN), and closes the connection after
 * `LINGER_MS` (unless it closed meanwhile). The close comes with bytes unread, so the kernel
 * resets the connection, and a reset makes the client's kernel drop whatever the client has not
 * read yet: the answer, if it was busy writing. Unread, the client's writes stop (its window
 * fills), and it has the linger to read its answer and the end; a client that never reads costs a
 * paused socket for that long, never the reading of more bytes.
 */
function closeAfterLinger(request: IncomingMessage): void {
  const socket = request.socket;
  request.pause();
  socket.end();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

function checkingIntervalFor(timeouts: HttpTimeouts): number {
  const shortest = Math.min(...[timeouts.headersMs, timeouts.requestMs].filter((ms) => ms > 0));
  return Number.isFinite(shortest) ? Math.min(1_000, Math.max(10, Math.floor(shortest / 4))) : 30_000;
}
