/**
 * The one error hierarchy. Services throw these; the error handler turns them into upstream's
 * `{"detail": {...}}` shape (contract §1.4). Routes never build error bodies by hand.
 */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly type: string,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidRequestError extends ApiError {
  constructor(message: string, code = 'invalid_request') {
    super(400, 'invalid_request', code, message);
  }
}

/** A 400 whose `detail` carries upstream's `data` too (`procedure_validation_failed`: its errors). */
export class InvalidRequestWithDataError extends InvalidRequestError {
  constructor(
    code: string,
    message: string,
    readonly data: Record<string, unknown>,
  ) {
    super(message, code);
  }
}

/** A 400 that upstream answers with a body of its own shape, not `{"detail": …}` (procedures compile: `{"errors": …}`). */
export class FlatBodyError extends ApiError {
  constructor(
    code: string,
    message: string,
    readonly body: Record<string, unknown>,
  ) {
    super(400, 'invalid_request', code, message);
  }
}

export class AuthenticationError extends ApiError {
  constructor(code: 'missing_api_key' | 'invalid_api_key', message: string) {
    super(401, 'authentication_error', code, message);
  }
}

export class ForbiddenError extends ApiError {
  constructor(message: string, code = 'insufficient_permissions') {
    super(403, 'authorization_error', code, message);
  }
}

/** Also for another workspace's resources: existence is never revealed. */
export class NotFoundError extends ApiError {
  constructor(what: string, id: string, code = `${what}_not_found`) {
    super(404, 'not_found', code, `${capitalize(what)} ${JSON.stringify(id)} was not found.`);
  }
}

export class ConflictError extends ApiError {
  constructor(code: string, message: string) {
    super(409, 'conflict', code, message);
  }
}

export class PayloadTooLargeError extends ApiError {
  constructor(limitBytes: number) {
    super(413, 'invalid_request', 'payload_too_large', `Request body is larger than the limit of ${limitBytes} bytes.`);
  }
}

/** One item of a FastAPI-style 422 (`{"detail": [{loc, msg, type}]}`). */
export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** Request validation failures, also for ids inside a body that do not resolve (decisions.md D2). */
export class RequestValidationError extends Error {
  readonly statusCode = 422;
  constructor(readonly issues: ValidationIssue[]) {
    super(issues.map((issue) => `${issue.loc.join('.')}: ${issue.msg}`).join('; '));
    this.name = 'RequestValidationError';
  }

  static at(loc: (string | number)[], msg: string, type = 'value_error'): RequestValidationError {
    return new RequestValidationError([{ loc, msg, type }]);
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
