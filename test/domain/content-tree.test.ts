import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { type Json, type JsonObject, canonicalJson } from '../../src/domain/canonical-json.js';
import {
  type ContentNode,
  type EncodedTree,
  childHashes,
  decodeTree,
  EncodingMemo,
  encodeTree,
  hashNode,
} from '../../src/domain/content-tree.js';
import { largeConversationConfig } from '../support/builders.js';
import {
  changedLeaf,
  jsonObject,
  jsonString,
  leafPaths,
  longString,
  valueAt,
  withKeysReversed,
  withValueAt,
} from './json-arbitraries.js';

/** Decodes the way the document store does: node bodies parsed from their stored text. */
function decode(tree: EncodedTree): JsonObject {
  return decodeTree(tree.rootHash, (hash) => {
    const body = tree.nodes.get(hash);
    return body === undefined ? undefined : (JSON.parse(body) as ContentNode);
  });
}

/** Total size of the node bodies in `after` that `before` does not already hold. */
function addedNodes(before: EncodedTree, after: EncodedTree): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  for (const [hash, body] of after.nodes) {
    if (before.nodes.has(hash)) continue;
    count++;
    bytes += Buffer.byteLength(body);
  }
  return { count, bytes };
}

/**
 * A ~20 KB document shaped like nested config: every container has 4 children, 4 levels deep,
 * leaves mostly strings that stay inline and a few long ones that become nodes of their own.
 */
const TREE_DEPTH = 4;
function nestedDocument(depth: number): fc.Arbitrary<Json> {
  if (depth === 0) {
    return fc.oneof(
      { arbitrary: fc.string({ minLength: 40, maxLength: 110 }), weight: 9 },
      { arbitrary: longString, weight: 1 },
    );
  }
  const child = nestedDocument(depth - 1);
  return fc
    .tuple(fc.boolean(), fc.array(child, { minLength: 4, maxLength: 4 }))
    .map(([asArray, children]) => (asArray ? children : Object.fromEntries(children.map((c, i) => [`key_${i}`, c]))));
}
const largeDocument = fc
  .array(nestedDocument(TREE_DEPTH - 1), { minLength: 4, maxLength: 4 })
  .map((children): JsonObject => Object.fromEntries(children.map((c, i) => [`section_${i}`, c])));

describe('encodeTree / decodeTree', () => {
  it('decodes to the encoded document, up to key order', () => {
    fc.assert(
      fc.property(jsonObject, (document) => {
        expect(canonicalJson(decode(encodeTree(document)))).toBe(canonicalJson(document));
      }),
      { numRuns: 200 },
    );
  });

  it('round-trips arrays with referenced items at indexes of two digits', () => {
    const strings = Array.from({ length: 12 }, (_, i) => `${i}`.padEnd(200, 'x'));
    const document = { list: [null, ...strings, 'short', { nested: strings.slice(0, 11) }] };
    expect(decode(encodeTree(document))).toEqual(document);
  });

  it('round-trips strings at the inline limit', () => {
    for (const length of [127, 128, 129]) {
      for (const char of ['x', '"', 'é', '\u0000']) {
        const document = { s: char.repeat(length), list: [char.repeat(length)], nested: { o: char.repeat(length) } };
        expect(decode(encodeTree(document))).toEqual(document);
      }
    }
  });

  it('keeps a string of 128 characters inline and gives a longer one its own node', () => {
    expect(encodeTree({ a: 'x'.repeat(128) }).nodes.size).toBe(1);
    expect(encodeTree({ a: 'x'.repeat(129) }).nodes.size).toBe(2);
  });

  it('gives the same root hash and nodes for the same document, whatever the key order', () => {
    fc.assert(
      fc.property(jsonObject, (document) => {
        const first = encodeTree(document);
        const again = encodeTree(structuredClone(document));
        const reordered = encodeTree(withKeysReversed(document) as JsonObject);
        expect(again.rootHash).toBe(first.rootHash);
        expect(reordered.rootHash).toBe(first.rootHash);
        expect(new Map(reordered.nodes)).toEqual(first.nodes);
      }),
      { numRuns: 200 },
    );
  });

  it('gives different root hashes to different documents', () => {
    fc.assert(
      fc.property(jsonObject, jsonObject, (a, b) => {
        fc.pre(canonicalJson(a) !== canonicalJson(b));
        expect(encodeTree(a).rootHash).not.toBe(encodeTree(b).rootHash);
      }),
      { numRuns: 200 },
    );
  });

  it('gives a different root hash when any one leaf changes', () => {
    fc.assert(
      fc.property(jsonObject, fc.nat(), (document, pick) => {
        const paths = leafPaths(document).filter((path) => path.length > 0);
        fc.pre(paths.length > 0);
        const path = paths[pick % paths.length];
        const changed = withValueAt(document, path, changedLeaf(valueAt(document, path)));
        expect(encodeTree(changed).rootHash).not.toBe(encodeTree(document).rootHash);
      }),
      { numRuns: 200 },
    );
  });

  it.each<[string, JsonObject, JsonObject]>([
    ['null member vs missing member', { a: null }, {}],
    ['empty array vs empty object', { a: [] }, { a: {} }],
    ['string vs number', { a: '1' }, { a: 1 }],
    ['long string vs the same string in an array', { a: 'x'.repeat(200) }, { a: ['x'.repeat(200)] }],
    ['null item vs referenced item', { a: [null, null] }, { a: [null, 'y'.repeat(200)] }],
    ['referenced string vs inline object of the same text', { s: 'z'.repeat(200) }, { o: { s: 'z'.repeat(200) } }],
    ['key "r" vs a reference', { r: { a: 'hash' } }, { a: 'q'.repeat(200) }],
  ])('gives different root hashes: %s', (_name, a, b) => {
    expect(encodeTree(a).rootHash).not.toBe(encodeTree(b).rootHash);
  });

  it('adds at most 2 KB besides the new value when one leaf of a ~20 KB document changes', () => {
    fc.assert(
      fc.property(largeDocument, fc.nat(), jsonString, (document, pick, replacement) => {
        expect(Buffer.byteLength(JSON.stringify(document))).toBeGreaterThan(15_000);
        const paths = leafPaths(document);
        const path = paths[pick % paths.length];
        fc.pre(valueAt(document, path) !== replacement);
        const before = encodeTree(document);
        const after = encodeTree(withValueAt(document, path, replacement));
        const added = addedNodes(before, after);
        expect(added.bytes).toBeLessThanOrEqual(2_048 + Buffer.byteLength(JSON.stringify(replacement)));
        // The root, the containers on the way down and, for a long string, the string's node.
        expect(added.count).toBeLessThanOrEqual(TREE_DEPTH + 1);
      }),
      { numRuns: 100 },
    );
  });

  it('adds at most 2 KB besides the new value when one field of a 20 KB agent config changes', () => {
    const config = largeConversationConfig(20_000) as unknown as JsonObject;
    const before = encodeTree(config);
    const paths = leafPaths(config);
    fc.assert(
      fc.property(fc.constantFrom(...paths), (path) => {
        const replacement = changedLeaf(valueAt(config, path));
        const added = addedNodes(before, encodeTree(withValueAt(config, path, replacement)));
        expect(added.count).toBeGreaterThan(0);
        expect(added.bytes).toBeLessThanOrEqual(2_048 + Buffer.byteLength(JSON.stringify(replacement)));
      }),
      { numRuns: 100 },
    );
  });

  it('writes every node body as JSON of one node shape, stored under its own hash', () => {
    fc.assert(
      fc.property(jsonObject, (document) => {
        const tree = encodeTree(document);
        expect(tree.nodes.has(tree.rootHash)).toBe(true);
        for (const [hash, body] of tree.nodes) {
          expect(hashNode(body)).toBe(hash);
          const node: unknown = JSON.parse(body);
          expect(node).toBeTypeOf('object');
          const fields = Object.keys(node as object).sort();
          expect([['s'], ['o'], ['a'], ['o', 'r'], ['a', 'r']]).toContainEqual(fields);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('reaches exactly the encoded nodes by following childHashes from the root', () => {
    fc.assert(
      fc.property(jsonObject, (document) => {
        const tree = encodeTree(document);
        const reached = new Set<string>();
        const pending = [tree.rootHash];
        while (pending.length > 0) {
          const hash = pending.pop() as string;
          if (reached.has(hash)) continue;
          reached.add(hash);
          const body = tree.nodes.get(hash);
          expect(body, `node ${hash} is referenced but was not encoded`).toBeDefined();
          pending.push(...childHashes(JSON.parse(body as string) as ContentNode));
        }
        expect([...reached].sort()).toEqual([...tree.nodes.keys()].sort());
      }),
      { numRuns: 200 },
    );
  });

  it('lists the references of object and array nodes, and none for string nodes', () => {
    expect(childHashes({ s: 'x'.repeat(200) })).toEqual([]);
    expect(childHashes({ o: { a: 1 } })).toEqual([]);
    expect(childHashes({ o: {}, r: { a: 'h1', b: 'h2' } }).sort()).toEqual(['h1', 'h2']);
    expect(childHashes({ a: [null, 1, null], r: { '0': 'h1', '2': 'h3' } }).sort()).toEqual(['h1', 'h3']);
  });

  it('refuses to decode when a node is missing', () => {
    const tree = encodeTree({ a: 'x'.repeat(200) });
    const missing = [...tree.nodes.keys()].find((hash) => hash !== tree.rootHash) as string;
    expect(() =>
      decodeTree(tree.rootHash, (hash) => (hash === missing ? undefined : (JSON.parse(tree.nodes.get(hash) as string) as ContentNode))),
    ).toThrow(`missing content node ${missing}`);
  });

  it('refuses to decode a root that is not an object', () => {
    expect(() => decodeTree('root', () => ({ s: 'text' }))).toThrow('is not an object');
    expect(() => decodeTree('root', () => ({ a: [1] }))).toThrow('is not an object');
  });

  it('shares structure inside a long array of small objects: one changed item adds little', () => {
    const document: JsonObject = { items: Array.from({ length: 300 }, (_, i) => ({ id: `item_${i}`, n: i })) };
    const before = encodeTree(document);
    expect(JSON.stringify(document).length).toBeGreaterThan(7_000);
    const items = (document.items as JsonObject[]).map((item, i) => (i === 150 ? { ...item, n: -1 } : item));
    const after = encodeTree({ items });
    const added = [...after.nodes].filter(([hash]) => !before.nodes.has(hash));
    expect(added.reduce((sum, [, body]) => sum + body.length, 0)).toBeLessThan(2_048 + 300 * 30);
    const back = decodeTree(after.rootHash, (hash) => JSON.parse(after.nodes.get(hash) as string) as ContentNode);
    expect(canonicalJson(back)).toBe(canonicalJson({ items }));
  });

  // Issue 14: each wide level used to encode its subtree twice (inline, then split), so a chain of
  // wide objects cost 2^depth: 16 levels (22 KB) took 3 s, 60 levels would never finish.
  it('encodes a chain of wide objects as deep as the body parser allows, once per level', () => {
    const wideChain = (depth: number, shared?: JsonObject): JsonObject => {
      let value: JsonObject = shared ?? { leaf: 1 };
      for (let level = 0; level < depth; level++) {
        const next: JsonObject = { d: value, same: value === shared ? value : { x: level } };
        for (let i = 0; i < 20; i++) next[`a${i}`] = `${level}-${i}`.padEnd(60, 'x');
        value = next;
      }
      return value;
    };
    const document = { root: wideChain(60), list: [wideChain(3), wideChain(3)] };
    const tree = encodeTree(document);
    expect(tree.nodes.size).toBeGreaterThan(60);
    const back = decodeTree(tree.rootHash, (hash) => JSON.parse(tree.nodes.get(hash) as string) as ContentNode);
    expect(canonicalJson(back)).toBe(canonicalJson(document));
    // The same value gives the same tree whether or not its containers are shared objects.
    expect(encodeTree(JSON.parse(JSON.stringify(document)) as JsonObject).rootHash).toBe(tree.rootHash);
    const small: JsonObject = { s: 1 };
    const sharing = { a: wideChain(2, small), b: small, c: [small, small] };
    expect(encodeTree(sharing).rootHash).toBe(encodeTree(JSON.parse(JSON.stringify(sharing)) as JsonObject).rootHash);
  });

  it('keeps a __proto__ key as data', () => {
    const document = JSON.parse('{"__proto__":{"x":1},"y":"' + 'z'.repeat(200) + '"}') as JsonObject;
    const tree = encodeTree(document);
    const back = decodeTree(tree.rootHash, (hash) => JSON.parse(tree.nodes.get(hash) as string) as ContentNode);
    expect(Object.keys(back)).toEqual(['__proto__', 'y']);
    expect(canonicalJson(back)).toBe(canonicalJson(document));
  });
});

/** `value` with the value at `path` replaced, copying only the containers on the path (as a merge patch does). */
function sharingWith(value: Json, path: (string | number)[], replacement: Json): Json {
  if (path.length === 0) return replacement;
  const [step, ...rest] = path;
  const copy = (Array.isArray(value) ? [...value] : { ...(value as JsonObject) }) as Record<string | number, Json>;
  copy[step] = sharingWith(copy[step], rest, replacement);
  return copy as Json;
}

describe('encodeTree with an EncodingMemo', () => {
  it('gives the same tree as encoding from scratch, and builds every node the stored ones lack', () => {
    fc.assert(
      fc.property(
        largeDocument.chain((document) => fc.tuple(fc.constant(document), fc.array(fc.constantFrom(...leafPaths(document)), { minLength: 1, maxLength: 3 }), jsonString)),
        ([document, paths, replacement]) => {
          const memo = new EncodingMemo();
          const stored = new Map<string, string>();
          const first = encodeTree(document, memo);
          for (const [hash, body] of first.nodes) stored.set(hash, body);
          first.remember();
          // The next version shares every subtree off the changed paths (as a merge patch leaves it).
          let next: JsonObject = document;
          for (const path of paths) next = sharingWith(next, path, replacement) as JsonObject;
          const reused = encodeTree(next, memo);
          const scratch = encodeTree(structuredClone(next));
          expect(reused.rootHash).toBe(scratch.rootHash);
          expect(reused.size).toBe(scratch.size);
          for (const [hash, body] of reused.nodes) stored.set(hash, body);
          // Everything reachable is stored: what the memo skipped was stored by the first version.
          expect([...scratch.nodes.keys()].filter((hash) => !stored.has(hash))).toEqual([]);
          // Only the containers on the changed paths (and a replacement string) are encoded again.
          expect(reused.nodes.size).toBeLessThanOrEqual(paths.length * (TREE_DEPTH + 2));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('remembers nothing until told to (a rolled-back write must not count as stored)', () => {
    const memo = new EncodingMemo();
    const document = largeConversationConfig(20_000) as unknown as JsonObject;
    const first = encodeTree(document, memo);
    expect(encodeTree(document, memo).nodes.size).toBe(first.nodes.size);
    first.remember();
    expect(encodeTree(document, memo).nodes.size).toBe(0);
  });
});

