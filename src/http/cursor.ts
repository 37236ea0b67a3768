import { InvalidRequestError } from '../errors.js';
import { hasBadText } from './text.js';

/** An opaque page cursor: the sort value and the id of a page's last row, as base64url JSON. */
export function encodeCursor(value: string | number, id: string): string {
  return Buffer.from(JSON.stringify([value, id]), 'utf8').toString('base64url');
}

/**
 * The sort value and id of a cursor this server returned, the value checked by `fits`; anything
 * else is a 400 `invalid_cursor`.
 */
export function decodeCursor<V extends string | number>(cursor: string, fits: (value: unknown) => value is V): { value: V; id: string } {
  try {
    const [value, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (fits(value) && typeof id === 'string' && !hasBadText(id) && !(typeof value === 'string' && hasBadText(value))) return { value, id };
  } catch {
    // refused below
  }
  throw new InvalidRequestError('The cursor is not one this server returned.', 'invalid_cursor');
}

/** A cursor value that is a time or a sequence number. */
export const isSafeInteger = (value: unknown): value is number => Number.isSafeInteger(value);
/** A cursor value that is a name. */
export const isString = (value: unknown): value is string => typeof value === 'string';
