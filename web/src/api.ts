import { currentKey, signOut } from './session';

// The one way screens talk to the server: the public API, with the signed-in user's key.

/** One 422 issue, as the server reports it: where (`loc`), what (`msg`) and its kind (`type`). */
export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** A failed call, from the server's error body (or the network). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** The server's `code` (`not_found`, `conflict`…), `validation_error` for a 422 list, `network_error` without an answer. */
    readonly code: string,
    message: string,
    /** The whole `detail`: an object with extra fields (`data`, `request_id`), or the 422 issues. */
    readonly detail: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The 422 issues, when the server sent a list of them. */
  get issues(): ValidationIssue[] {
    return Array.isArray(this.detail) ? (this.detail as ValidationIssue[]) : [];
  }
}

export type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface ApiOptions {
  /** Query parameters; undefined and null values are left out, arrays repeat the name. */
  query?: Record<string, string | number | boolean | null | undefined | (string | number)[]>;
  signal?: AbortSignal;
  /** A key other than the session's (signing in checks a key before keeping it). */
  apiKey?: string;
}

/** Calls `path` (e.g. `/v1/convai/agents`) and returns its JSON body; throws ApiError on any failure. */
export async function api<T>(method: Method, path: string, body?: unknown, options: ApiOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const key = options.apiKey ?? currentKey();
  if (key) headers['xi-api-key'] = key;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(withQuery(path, options.query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: options.signal,
      credentials: 'omit',
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network_error', 'The server could not be reached.', undefined);
  }
  const text = await response.text();
  const parsed = text === '' ? undefined : parseJson(text);
  if (!response.ok) {
    const error = errorFrom(response.status, parsed, text);
    // The session's key was revoked (or the data reset): back to sign-in, then to this page. Only
    // if it is still the session's key: a late answer to the old key must not end a new session.
    if (response.status === 401 && options.apiKey === undefined && key !== undefined && key === currentKey()) signOut(error.message);
    throw error;
  }
  return parsed as T;
}

function withQuery(path: string, query: ApiOptions['query']): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    for (const one of Array.isArray(value) ? value : [value]) params.append(name, String(one));
  }
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Both upstream error shapes: `{detail: {status, message, …}}` and 422 `{detail: [{loc, msg, type}]}`. */
function errorFrom(status: number, body: unknown, text: string): ApiError {
  const detail = (body as { detail?: unknown } | undefined)?.detail;
  if (Array.isArray(detail)) {
    const issues = detail as ValidationIssue[];
    const message = issues.map((issue) => `${fieldOf(issue).join('.')}: ${issue.msg}`).join('; ') || 'The request is not valid.';
    return new ApiError(status, 'validation_error', message, detail);
  }
  if (detail && typeof detail === 'object') {
    const fields = detail as { status?: unknown; code?: unknown; message?: unknown };
    const code = typeof fields.code === 'string' ? fields.code : typeof fields.status === 'string' ? fields.status : `http_${status}`;
    const message = typeof fields.message === 'string' ? fields.message : `The server answered ${status}.`;
    return new ApiError(status, code, message, detail);
  }
  if (typeof detail === 'string') return new ApiError(status, `http_${status}`, detail, detail);
  return new ApiError(status, `http_${status}`, text.trim().slice(0, 300) || `The server answered ${status}.`, undefined);
}

/** Where an issue is, without the leading `body`/`query`/`path` of its `loc`: the field as a form names it. */
export function fieldOf(issue: ValidationIssue): (string | number)[] {
  return ['body', 'query', 'path'].includes(String(issue.loc[0])) ? issue.loc.slice(1) : issue.loc;
}
