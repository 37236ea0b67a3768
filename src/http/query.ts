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

/** Query parameters that may also come as deepObject keys (see `foldDeepObjects`). */
const deepObjectParams = new WeakSet<z.ZodType>();

/** Marks a query parameter's schema: `name[a][b]=v` keys are folded into it as an object. */
export function deepObjectParam<T extends z.ZodType>(schema: T): T {
  deepObjectParams.add(schema);
  return schema;
}

/** The parameters of a query schema that take deepObject keys. */
export function deepObjectParamsOf(query: z.ZodType): ReadonlySet<string> {
  const shape = query instanceof z.ZodObject ? (query.shape as Record<string, z.ZodType>) : {};
  return new Set(Object.entries(shape).filter(([, schema]) => deepObjectParams.has(schema)).map(([name]) => name));
}

/**
 * Folds deepObject keys into the parameter they belong to: `name[a][b]=v` becomes `name: {a: {b: v}}`
 * (how the Python SDK sends a dict). Only for the `declared` names (`deepObjectParam`), and only when `name` itself is
 * not sent too (then the keys stay as they are and the route sees the plain value). The first
 * segment is read up to the `]` that ends it, so it may hold brackets of its own (`a.tools[name=x]`).
 */
export function foldDeepObjects(query: Record<string, unknown>, declared: ReadonlySet<string>): Record<string, unknown> {
  let folded: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(query)) {
    const open = key.indexOf('[');
    if (open <= 0 || !key.endsWith(']')) continue;
    const name = key.slice(0, open);
    if (!declared.has(name) || name in query) continue;
    const segments = deepObjectSegments(key.slice(open + 1, -1));
    // No JSON body may hold this key (json-body.ts); a query string may not smuggle it in either.
    if (segments.includes('__proto__')) continue;
    folded ??= { ...query };
    delete folded[key];
    const target = (folded[name] ??= Object.create(null) as Record<string, unknown>);
    if (typeof target !== 'object' || target === null) continue;
    setDeep(target as Record<string, unknown>, segments, value);
  }
  return folded ?? query;
}

/** `a.b[k=v]][value][x` → ['a.b[k=v]', 'value', 'x']: later segments are plain names without brackets. */
function deepObjectSegments(inner: string): string[] {
  const segments: string[] = [];
  let rest = inner;
  // Peel `][name` segments off the end while the name has no bracket: what is left is the first segment.
  for (;;) {
    const split = rest.lastIndexOf('][');
    if (split < 0) break;
    const tail = rest.slice(split + 2);
    if (tail.includes('[') || tail.includes(']')) break;
    segments.unshift(tail);
    rest = rest.slice(0, split);
  }
  segments.unshift(rest);
  return segments;
}

function setDeep(target: Record<string, unknown>, segments: string[], value: unknown): void {
  let node = target;
  for (const segment of segments.slice(0, -1)) {
    const next = Object.hasOwn(node, segment) ? node[segment] : undefined;
    if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      node[segment] = Object.create(null) as Record<string, unknown>;
    }
    node = node[segment] as Record<string, unknown>;
  }
  node[segments[segments.length - 1]] = value;
}
