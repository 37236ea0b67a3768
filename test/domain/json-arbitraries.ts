import fc from 'fast-check';

import type { Json, JsonObject } from '../../src/domain/canonical-json.js';

/**
 * JSON values as `JSON.parse` gives them to the domain layer. Two departures from `fc.jsonValue`:
 * no `-0` (JSON text written by `JSON.stringify` never holds one), and no `__proto__` key, which
 * the HTTP body parser refuses (src/http/json-body.ts) and fast-check generates on purpose.
 */
export const jsonKey: fc.Arbitrary<string> = fc
  .oneof(
    fc.string({ maxLength: 12 }),
    fc.string({ unit: 'grapheme', maxLength: 8 }),
    // Keys that look like the node format's own fields, array indexes, or need escaping.
    fc.constantFrom('s', 'o', 'a', 'r', '0', '9', '10', '', 'say "hi"', 'back\\slash', 'line\nbreak'),
  )
  .filter((key) => key !== '__proto__');

const jsonNumber: fc.Arbitrary<number> = fc
  .oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }))
  .map((n) => (Object.is(n, -0) ? 0 : n));

/** Strings longer than the content tree's inline limit (128 UTF-16 units). */
export const longString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ minLength: 129, maxLength: 300 }),
  fc.string({ unit: 'grapheme', minLength: 70, maxLength: 200 }),
  fc
    .tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }), fc.integer({ min: 40, max: 200 }))
    .map(([piece, times]) => piece.repeat(times)),
);

/** Strings right at the inline limit, including ones whose JSON is much longer than they are. */
const boundaryString: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 125, max: 131 }), fc.constantFrom('x', 'é', '"', '\\', '\u0001', '😀'))
  .map(([length, char]) => char.repeat(length).slice(0, length));

export const jsonString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.string({ maxLength: 20 }), weight: 4 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 20 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 10 }), weight: 2 },
  { arbitrary: longString, weight: 2 },
  { arbitrary: boundaryString, weight: 1 },
);

export const jsonLeaf: fc.Arbitrary<Json> = fc.oneof(fc.constant(null), fc.boolean(), jsonNumber, jsonString);

const containerConstraints = { key: jsonKey, values: [jsonLeaf], maxDepth: 4, maxKeys: 8 };

/** Objects nesting objects, arrays and leaves. */
export const jsonObject = fc.object(containerConstraints) as fc.Arbitrary<JsonObject>;

/** Any JSON value, leaves included. */
export const jsonValue = fc.anything(containerConstraints) as fc.Arbitrary<Json>;

/** JSON from a tiny alphabet, so that two independent draws are often equal. */
export const tinyJson = fc.anything({
  key: fc.constantFrom('a', 'b'),
  values: [fc.constantFrom<Json>(null, true, 0, 1, 'a', '')],
  maxDepth: 2,
  maxKeys: 2,
}) as fc.Arbitrary<Json>;

/** The same value with every object's keys inserted in reverse order. */
export function withKeysReversed(value: Json): Json {
  if (Array.isArray(value)) return value.map(withKeysReversed);
  if (value !== null && typeof value === 'object') {
    const reversed: JsonObject = {};
    for (const key of Object.keys(value).reverse()) reversed[key] = withKeysReversed(value[key]);
    return reversed;
  }
  return value;
}

export type JsonPath = (string | number)[];

/** Paths to every leaf, empty containers counted as leaves. */
export function leafPaths(value: Json, prefix: JsonPath = []): JsonPath[] {
  if (Array.isArray(value)) {
    if (value.length === 0) return [prefix];
    return value.flatMap((item, index) => leafPaths(item, [...prefix, index]));
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0) return [prefix];
    return keys.flatMap((key) => leafPaths(value[key], [...prefix, key]));
  }
  return [prefix];
}

export function valueAt(value: Json, path: JsonPath): Json {
  let current = value;
  for (const step of path) current = (current as Record<string | number, Json>)[step];
  return current;
}

/** A copy of `value` with the value at `path` replaced; `path` must not be empty. */
export function withValueAt<T extends Json>(value: T, path: JsonPath, replacement: Json): T {
  const copy = structuredClone(value);
  const parent = valueAt(copy, path.slice(0, -1)) as Record<string | number, Json>;
  parent[path[path.length - 1]] = replacement;
  return copy;
}

/** A value that is surely different from `leaf` (a leaf or an empty container). */
export function changedLeaf(leaf: Json): Json {
  if (typeof leaf === 'string') return `${leaf}!`;
  if (typeof leaf === 'number') return String(leaf);
  if (typeof leaf === 'boolean') return !leaf;
  if (leaf === null) return 0;
  if (Array.isArray(leaf)) return [...leaf, 0];
  return { ...leaf, changed: 0 };
}
