import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

import { ApiError, FlatBodyError, InvalidRequestWithDataError, PayloadTooLargeError, RequestValidationError } from '../errors.js';
import { RateLimitedError } from './rate-limit.js';

// Every error a request can meet, from a malformed request line to a service's ApiError, answered
// in upstream's `{"detail": {...}}` shape (contract §1.4).

export const newRequestId = () => `req_${randomBytes(12).toString('hex')}`;

/** Fastify's error handler: ApiErrors as they say, Fastify's own 4xx as `invalid_request`, anything else a logged 500. */
export function errorHandler(bodyLimitBytes: number) {
  return (error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof RequestValidationError) {
      return reply.code(422).send({ detail: error.issues });
    }
    let apiError: ApiError;
    if (error instanceof RateLimitedError) {
      apiError = error;
      void reply.header('retry-after', String(error.retryAfterSeconds));
    } else if (error instanceof ApiError) apiError = error;
    else if ((error as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      apiError = new PayloadTooLargeError(bodyLimitBytes);
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
    if (apiError instanceof FlatBodyError) return reply.code(apiError.statusCode).send(apiError.body);
    return reply.code(apiError.statusCode).send(errorBody(apiError, request));
  };
}

/** URL problems the router finds before any route runs still get the documented error shape. */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
  const apiError = tooLong
    ? new ApiError(404, 'not_found', 'not_found', 'No resource has that id.')
    : new ApiError(400, 'invalid_request', 'invalid_request', 'The request URL is malformed.');
  void reply.code(apiError.statusCode as never).send(errorBody(apiError, request) as never);
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  reply.code(404).send(
    errorBody(new ApiError(404, 'not_found', 'not_found', `No route for ${request.method} ${request.url.split('?')[0]}.`), request),
  );
}

/**
 * Requests node:http cannot parse (a malformed request line, headers too large, too slow) never
 * reach a route; they still get the documented error shape, written on the raw socket.
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
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
      ...(error instanceof InvalidRequestWithDataError ? { data: error.data } : {}),
      request_id: request.id,
    },
  };
}
