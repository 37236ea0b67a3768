import * as z from 'zod';

// Query strings arrive as text; these read them as FastAPI does (`true/false/1/0/yes/no/on/off`).

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

export function queryBoolean(fallback: boolean) {
  return z
    .string()
    .refine((value) => TRUE.has(value.toLowerCase()) || FALSE.has(value.toLowerCase()), {
      message: 'Input should be a valid boolean',
    })
    .transform((value) => TRUE.has(value.toLowerCase()))
    .optional()
    .transform((value) => value ?? fallback);
}

export function queryInteger(options: { min: number; max: number; fallback: number }) {
  return z
    .string()
    .regex(/^-?\d+$/, 'Input should be a valid integer')
    .transform(Number)
    .pipe(z.number().int().min(options.min).max(options.max))
    .optional()
    .transform((value) => value ?? options.fallback);
}

/** A repeatable parameter (`tags=a&tags=b`), as a list. */
export function queryStringList() {
  return z
    .union([z.string(), z.array(z.string())])
    .optional()
    .transform((value) => (value === undefined ? undefined : Array.isArray(value) ? value : [value]));
}

export const optionalString = z.string().optional();
