import * as z from 'zod';

/**
 * An enum that also accepts values the spec does not list yet: upstream adds LLM and voice
 * model names every month, and a newer client's value must not be a 422 (decisions.md D1).
 * The known values still document the field in the OpenAPI.
 */
export function openEnum<const T extends readonly [string, ...string[]]>(values: T) {
  return z.union([z.enum(values), z.string()]);
}
