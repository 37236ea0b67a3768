import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { type Json, type JsonObject, canonicalJson, isJsonObject } from '../../src/domain/canonical-json.js';
import { applyMergePatch } from '../../src/domain/json-merge-patch.js';
import { jsonKey, jsonObject, jsonValue } from './json-arbitraries.js';

/** A patch: like any JSON object, but with `null` (removal) members mixed in at every level. */
const mergePatch: fc.Arbitrary<JsonObject> = fc.object({
  key: jsonKey,
  values: [jsonValue, fc.constant(null)],
  maxDepth: 3,
  maxKeys: 6,
}) as fc.Arbitrary<JsonObject>;

/** A target and a patch that touch the same keys often enough to merge nested objects. */
const targetAndPatch = fc.oneof(
  fc.tuple(jsonValue, mergePatch),
  fc.tuple(jsonObject, mergePatch),
  jsonObject.chain((target) =>
    fc.tuple(
      fc.constant(target),
      fc
        .subarray(Object.keys(target))
        .chain((keys) =>
          fc.tuple(...keys.map((key) => fc.tuple(fc.constant(key), fc.oneof(fc.constant(null), jsonValue, mergePatch)))),
        )
        .map((members): JsonObject => Object.fromEntries(members)),
    ),
  ),
);

/** RFC 7386 §2 read as a specification of the result, member by member. */
function expectPatched(target: Json | undefined, patch: Json, result: Json): void {
  if (!isJsonObject(patch)) {
    expect(result).toEqual(patch);
    return;
  }
  expect(isJsonObject(result)).toBe(true);
  const merged = result as JsonObject;
  const base = isJsonObject(target) ? target : {};
  const expectedKeys = new Set(Object.keys(base));
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) expectedKeys.delete(key);
    else expectedKeys.add(key);
  }
  expect(Object.keys(merged).sort()).toEqual([...expectedKeys].sort());
  for (const key of expectedKeys) {
    if (Object.hasOwn(patch, key)) expectPatched(base[key], patch[key], merged[key]);
    else expect(merged[key]).toEqual(base[key]);
  }
}

describe('applyMergePatch', () => {
  // RFC 7386 Appendix A, every row.
  it.each<[Json, Json, Json]>([
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ])('RFC 7386 appendix A: %j patched with %j is %j', (target, patch, expected) => {
    expect(applyMergePatch(target, patch)).toEqual(expected);
  });

  it('RFC 7386 §3: the example of the document and its patch', () => {
    const target = {
      title: 'Goodbye!',
      author: { givenName: 'John', familyName: 'Doe' },
      tags: ['example', 'sample'],
      content: 'This will be unchanged',
    };
    const patch = {
      title: 'Hello!',
      phoneNumber: '+01-123-456-7890',
      author: { familyName: null },
      tags: ['example'],
    };
    expect(applyMergePatch(target, patch)).toEqual({
      title: 'Hello!',
      author: { givenName: 'John' },
      tags: ['example'],
      content: 'This will be unchanged',
      phoneNumber: '+01-123-456-7890',
    });
  });

  it('treats a missing target as an empty object', () => {
    expect(applyMergePatch(undefined, { a: { b: null, c: 1 } })).toEqual({ a: { c: 1 } });
    expect(applyMergePatch(undefined, [1])).toEqual([1]);
  });

  it('merges as RFC 7386 specifies, member by member', () => {
    fc.assert(
      fc.property(targetAndPatch, ([target, patch]) => {
        expectPatched(target, patch, applyMergePatch(target, patch));
      }),
      { numRuns: 200 },
    );
  });

  it('modifies neither the target nor the patch', () => {
    fc.assert(
      fc.property(targetAndPatch, ([target, patch]) => {
        const targetBefore = structuredClone(target);
        const patchBefore = structuredClone(patch);
        applyMergePatch(target, patch);
        expect(target).toEqual(targetBefore);
        expect(patch).toEqual(patchBefore);
      }),
      { numRuns: 200 },
    );
  });

  it('returns an object that later edits do not share with the target', () => {
    const target = { a: { b: 1 }, c: 2 };
    const result = applyMergePatch(target, { a: { d: 3 } }) as { a: Record<string, number> };
    result.a.e = 4;
    expect(target).toEqual({ a: { b: 1 }, c: 2 });
  });

  it('is idempotent: applying an object patch twice equals applying it once', () => {
    fc.assert(
      fc.property(targetAndPatch, ([target, patch]) => {
        const once = applyMergePatch(target, patch);
        const twice = applyMergePatch(once, patch);
        expect(canonicalJson(twice)).toBe(canonicalJson(once));
      }),
      { numRuns: 200 },
    );
  });

  it('removes a key patched with null and keeps every other key as it was', () => {
    fc.assert(
      fc.property(
        jsonObject.filter((target) => Object.keys(target).length > 0),
        fc.nat(),
        (target, pick) => {
          const keys = Object.keys(target);
          const removed = keys[pick % keys.length];
          const result = applyMergePatch(target, { [removed]: null }) as JsonObject;
          expect(Object.hasOwn(result, removed)).toBe(false);
          expect(canonicalJson(result)).toBe(canonicalJson(Object.fromEntries(Object.entries(target).filter(([key]) => key !== removed))));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('ignores null for a key the target does not have', () => {
    expect(applyMergePatch({ a: 1 }, { b: null, c: { d: null } })).toEqual({ a: 1, c: {} });
  });
});
