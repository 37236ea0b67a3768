import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { type Json, type JsonObject, canonicalJson, deepEqual, setMember } from '../../src/domain/canonical-json.js';
import { applyMergePatch } from '../../src/domain/json-merge-patch.js';
import { changedLeaf, jsonValue, leafPaths, tinyJson, valueAt, withKeysReversed, withValueAt } from './json-arbitraries.js';

/** Pairs that are equal about as often as not: independent tiny values, reorderings, one-leaf edits. */
const jsonPair: fc.Arbitrary<[Json, Json]> = fc.oneof(
  fc.tuple(tinyJson, tinyJson),
  jsonValue.map((value): [Json, Json] => [value, withKeysReversed(value)]),
  fc.tuple(jsonValue, fc.nat()).map(([value, pick]): [Json, Json] => {
    const paths = leafPaths(value);
    const path = paths[pick % paths.length];
    return [value, path.length === 0 ? changedLeaf(value) : withValueAt(value, path, changedLeaf(valueAt(value, path)))];
  }),
);

describe('canonicalJson', () => {
  it('sorts keys at every level, arrays keeping their order', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }, 'x'], c: null } })).toBe('{"a":{"c":null,"d":[{"y":2,"z":1},"x"]},"b":1}');
  });

  it('sorts integer-like keys as strings, unlike JSON.stringify', () => {
    expect(canonicalJson({ a: 3, 9: 2, 10: 1 })).toBe('{"10":1,"9":2,"a":3}');
  });

  it('escapes keys and strings as JSON does', () => {
    expect(canonicalJson({ 'say "hi"': 'line\nbreak\\' })).toBe('{"say \\"hi\\"":"line\\nbreak\\\\"}');
  });

  it('leaves out members that are undefined, as JSON.stringify does', () => {
    const value = { a: 1, b: undefined, c: { d: undefined } } as unknown as Json;
    expect(canonicalJson(value)).toBe('{"a":1,"c":{}}');
    expect(canonicalJson(value)).toBe(JSON.stringify(value));
  });

  it('does not depend on key insertion order', () => {
    fc.assert(
      fc.property(jsonValue, (value) => {
        expect(canonicalJson(withKeysReversed(value))).toBe(canonicalJson(value));
      }),
      { numRuns: 200 },
    );
  });

  it('parses back to the same value', () => {
    fc.assert(
      fc.property(jsonValue, (value) => {
        expect(JSON.parse(canonicalJson(value))).toEqual(value);
      }),
      { numRuns: 200 },
    );
  });
});

describe('deepEqual', () => {
  it('agrees with equality of canonical JSON', () => {
    fc.assert(
      fc.property(jsonPair, ([a, b]) => {
        const canonicalEqual = canonicalJson(a) === canonicalJson(b);
        expect(deepEqual(a, b)).toBe(canonicalEqual);
        expect(deepEqual(b, a)).toBe(canonicalEqual);
      }),
      { numRuns: 200 },
    );
  });

  it.each<[string, Json, Json]>([
    ['an array and an object with index keys', [1], { 0: 1 }],
    ['a missing member and a null one', { a: 1 }, { a: 1, b: null }],
    ['objects with different keys of equal values', { a: 1 }, { b: 1 }],
    ['a key named like an Object.prototype member', { toString: 1 }, { a: 1 }],
    ['arrays of different lengths', [null], [null, null]],
    ['"1" and 1', '1', 1],
    ['null and an empty object', null, {}],
  ])('tells apart %s', (_name, a, b) => {
    expect(deepEqual(a, b)).toBe(false);
    expect(deepEqual(b, a)).toBe(false);
  });
});

describe('setMember', () => {
  it('makes `__proto__` an own member like any other, as JSON.parse does: no prototype change', () => {
    const target: JsonObject = {};
    setMember(target, '__proto__', { x: 1 });
    expect(Object.getPrototypeOf(target)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(target, '__proto__')).toEqual(Object.getOwnPropertyDescriptor(JSON.parse('{"__proto__":{"x":1}}'), '__proto__'));
    expect(Object.keys(target)).toEqual(['__proto__']);
  });

  it('can set `__proto__` again, and a merge patch can change or remove it', () => {
    const target: JsonObject = {};
    setMember(target, '__proto__', 1);
    setMember(target, '__proto__', 2);
    expect(target['__proto__']).toBe(2);
    const stored = JSON.parse('{"__proto__":1,"a":1}') as JsonObject;
    const changed = applyMergePatch(stored, JSON.parse('{"__proto__":2}') as Json) as JsonObject;
    expect(Object.getOwnPropertyDescriptor(changed, '__proto__')?.value).toBe(2);
    expect(Object.keys(applyMergePatch(stored, JSON.parse('{"__proto__":null}') as Json) as JsonObject)).toEqual(['a']);
  });
});
