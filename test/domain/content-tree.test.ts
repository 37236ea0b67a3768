import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { type Json, type JsonObject, canonicalJson, setMember } from '../../src/domain/canonical-json.js';
import {
  type ContentNode,
  type EncodedTree,
  childHashes,
  decodeTree,
  decodeTreeInSteps,
  EncodingMemo,
  encodeTree,
  hashNode,
  MAX_NODE_BYTES,
  stringChunks,
} from '../../src/domain/content-tree.js';
import { OVER_BUDGET, withinBudget } from '../../src/domain/work-budget.js';
import { largeConversationConfig } from '../support/builders.js';
import {
  changedLeaf,
  jsonObject,
  jsonKey,
  jsonString,
  jsonValue,
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

/** Words of prose, with multi-byte and astral characters and characters JSON escapes. */
const WORDS = ['the', 'agent', 'must', 'greet', 'caller', 'politely', 'and', 'ask', 'order', 'refund', 'café', 'naïve', '日本語', 'émoji😀', 'tab\tstop', 'say "hi"', 'back\\slash', '𝒳'];

/** `length` units of pseudo-random prose from `seed`, in lines of about 80 units or, without `newlines`, one line. */
function prose(seed: number, length: number, newlines: boolean): string {
  let state = seed >>> 0;
  const next = (bound: number) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state >>> 8) % bound;
  };
  const words: string[] = [];
  let size = 0;
  while (size < length) {
    const word = next(12) === 0 ? `${next(100_000)}` : WORDS[next(WORDS.length)];
    const separator = newlines && next(12) === 0 ? '\n' : ' ';
    words.push(word, separator);
    size += word.length + 1;
  }
  return words.join('');
}

/** Pieces of text: any characters (lone surrogates included), escapes, newlines. */
const textPiece = fc.oneof(
  { arbitrary: fc.string({ maxLength: 60 }), weight: 6 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 20 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 10 }), weight: 2 },
  { arbitrary: fc.constantFrom('\n', '\n\n', '😀', '\ud83d', '\ude00', '\u0000', '"', '\\', 'é', '日本語'), weight: 2 },
);

/** Strings over the chunking threshold (4,096 units): prose with or without newlines, and arbitrary text. */
const chunkedString: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 4_097, max: 30_000 }), fc.boolean()).map(([seed, length, newlines]) => prose(seed, length, newlines)),
  fc.array(textPiece, { minLength: 20, maxLength: 300 }).map((pieces) => {
    let text = pieces.join('');
    while (text.length <= 4_096) text += text.length > 0 ? `${text.length}${text}` : 'x';
    return text;
  }),
  // The same astral character over and over: every chunk boundary is next to a surrogate pair.
  fc.tuple(fc.constantFrom('😀', '𝒳', 'a😀', '\n😀'), fc.integer({ min: 2_100, max: 9_000 })).map(([piece, times]) => piece.repeat(times)),
);

/** Items of a wide array, drawn by index: small objects, numbers, strings and a few arbitrary values. */
function wideItem(pool: Json[], seed: number, i: number): Json {
  switch ((i * 7 + seed) % 5) {
    case 0:
      return pool[i % pool.length];
    case 1:
      return i;
    case 2:
      return `${seed}-${i}`;
    default:
      return { id: `item_${seed}_${i}`, n: i };
  }
}

/** Arrays and objects whose node would be over the chunking bound (32 KB) as one node. */
const wideArray: fc.Arbitrary<Json[]> = fc
  .tuple(fc.array(jsonValue, { minLength: 1, maxLength: 8 }), fc.integer({ min: 2_000, max: 6_000 }), fc.nat(1_000))
  .map(([pool, length, seed]) => Array.from({ length }, (_, i) => wideItem(pool, seed, i)));
const wideObject: fc.Arbitrary<JsonObject> = fc
  .tuple(fc.array(jsonValue, { minLength: 1, maxLength: 8 }), fc.integer({ min: 2_000, max: 5_000 }), fc.nat(1_000), jsonKey)
  .map(([pool, length, seed, prefix]) => Object.fromEntries(Array.from({ length }, (_, i) => [`${prefix}${(i * 7919) % length}`, wideItem(pool, seed, i)])));

/** Documents stored with chunks: long strings and wide containers, at the root and nested. */
const chunkedDocument: fc.Arbitrary<JsonObject> = fc
  .record(
    { text: chunkedString, list: wideArray, map: wideObject, nested: fc.array(fc.oneof(chunkedString, jsonObject), { maxLength: 2 }), small: jsonObject },
    { requiredKeys: ['text'] },
  )
  .map((document) => document as JsonObject);

/** The kind of each node a tree holds ('s', 'o', 'a', 'sc', 'ac', 'oc'). */
function nodeKinds(tree: EncodedTree): Set<string> {
  return new Set([...tree.nodes.values()].map((body) => Object.keys(JSON.parse(body) as object).filter((field) => field !== 'r')[0]));
}

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
          expect([['s'], ['o'], ['a'], ['o', 'r'], ['a', 'r'], ['sc'], ['ac'], ['oc']]).toContainEqual(fields);
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
    // An index lists its chunks in order, a chunk repeated as often as it occurs.
    expect(childHashes({ sc: ['h2', 'h1', 'h2'] })).toEqual(['h2', 'h1', 'h2']);
    expect(childHashes({ ac: ['h1', 'h1'] })).toEqual(['h1', 'h1']);
    expect(childHashes({ oc: ['h3', 'h1'] })).toEqual(['h3', 'h1']);
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


/** Total bytes of the node bodies in a tree. */
function treeBytes(tree: EncodedTree): number {
  let bytes = 0;
  for (const body of tree.nodes.values()) bytes += Buffer.byteLength(body);
  return bytes;
}

/** `text` with one line replaced, inserted after, or removed. */
function withLineEdited(text: string, pick: number, edit: 'replace' | 'insert' | 'delete'): string {
  const lines = text.split('\n');
  const at = pick % lines.length;
  if (edit === 'replace') lines[at] = 'A line that one edit changed.';
  else if (edit === 'insert') lines.splice(at, 0, 'A line that one edit inserted.');
  else lines.splice(at, 1);
  return lines.join('\n');
}

describe('chunks: long strings and wide containers (issues 14 and 18)', () => {
  it('decodes documents with long strings and wide arrays and objects to the encoded document', () => {
    fc.assert(
      fc.property(chunkedDocument, (document) => {
        const tree = encodeTree(document);
        expect(canonicalJson(decode(tree))).toBe(canonicalJson(document));
        expect(nodeKinds(tree)).toContain('sc');
      }),
      { numRuns: 25 },
    );
  }, 120_000);

  it('stores wide arrays and objects as indexes over chunks of their members', () => {
    fc.assert(
      fc.property(wideArray, wideObject, (list, map) => {
        const tree = encodeTree({ list, map });
        const kinds = nodeKinds(tree);
        expect(kinds).toContain('ac');
        expect(kinds).toContain('oc');
        const back = decode(tree);
        expect(back.list).toEqual(list);
        expect(canonicalJson(back.map)).toBe(canonicalJson(map));
      }),
      { numRuns: 20 },
    );
  }, 120_000);

  it('cuts long strings into chunks that join to the string, never inside a surrogate pair', () => {
    fc.assert(
      fc.property(chunkedString, (text) => {
        const chunks = stringChunks(text);
        expect(chunks.join('')).toBe(text);
        if (Buffer.byteLength(JSON.stringify(text)) > 8 * 1024 + 2) expect(chunks.length).toBeGreaterThan(1);
        for (let i = 1; i < chunks.length; i++) {
          const last = chunks[i - 1].charCodeAt(chunks[i - 1].length - 1);
          const first = chunks[i].charCodeAt(0);
          expect(last >= 0xd800 && last <= 0xdbff && first >= 0xdc00 && first <= 0xdfff, `chunk ${i} starts inside a surrogate pair`).toBe(false);
        }
        for (const chunk of chunks) expect(Buffer.byteLength(JSON.stringify(chunk))).toBeLessThanOrEqual(8 * 1024 + 2);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps a string of 4,096 units one node and stores a longer one in chunks', () => {
    const text = prose(1, 5_000, true);
    expect(nodeKinds(encodeTree({ a: text.slice(0, 4_096) }))).toEqual(new Set(['o', 's']));
    const chunked = encodeTree({ a: text.slice(0, 4_097) });
    expect(nodeKinds(chunked)).toEqual(new Set(['o', 'sc', 's']));
    expect(decode(chunked).a).toBe(text.slice(0, 4_097));
  });

  // Issue 18: "a one-line edit of a 50,000-character procedure stores well under its size".
  it('stores under 10% of a 50,000-unit string for a one-line edit of it', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.constantFrom('replace', 'insert', 'delete') as fc.Arbitrary<'replace' | 'insert' | 'delete'>, (seed, pick, edit) => {
        const text = prose(seed, 50_000, true);
        const before = encodeTree({ procedure: { content: text } });
        const after = encodeTree({ procedure: { content: withLineEdited(text, pick, edit) } });
        const added = addedNodes(before, after);
        expect(added.bytes).toBeLessThan(Buffer.byteLength(text) / 10);
        // Before chunks, the edit stored the whole string again.
        expect(treeBytes(before)).toBeGreaterThan(Buffer.byteLength(text));
      }),
      { numRuns: 100 },
    );
  });

  it('stores under 10% of a 50,000-unit string without newlines for an edit of a few words in it', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(50_000), fc.string({ maxLength: 40 }), (seed, at, replacement) => {
        const text = prose(seed, 50_000, false);
        const before = encodeTree({ prompt: text });
        const after = encodeTree({ prompt: text.slice(0, at) + replacement + text.slice(at + 20) });
        expect(addedNodes(before, after).bytes).toBeLessThan(Buffer.byteLength(text) / 10);
      }),
      { numRuns: 100 },
    );
  });

  // Issue 14: a one-item edit of a wide array used to rewrite the whole array node (1.5 MB here).
  it('stores a few chunks and index nodes for a one-item edit of a 40,000-item array', () => {
    const items: JsonObject[] = Array.from({ length: 40_000 }, (_, i) => ({ id: `item_${i}`, n: i }));
    const before = encodeTree({ items });
    expect(treeBytes(before)).toBeGreaterThan(1_000_000);
    fc.assert(
      fc.property(fc.nat(39_999), fc.constantFrom('replace', 'insert', 'delete'), (at, edit) => {
        const edited = [...items];
        if (edit === 'replace') edited[at] = { id: `item_${at}`, n: -1 };
        else if (edit === 'insert') edited.splice(at, 0, { id: 'inserted', n: 0 });
        else edited.splice(at, 1);
        const added = addedNodes(before, encodeTree({ items: edited }));
        // The chunk around the edit (at most 8 KB, two when a cut moves) and an index node a level.
        expect(added.bytes).toBeLessThan(20_000);
      }),
      { numRuns: 10 },
    );
  }, 120_000);

  it('stores a few chunks and index nodes for a one-member edit of a 20,000-member object', () => {
    const members: JsonObject = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`key_${i}`, `value ${i}`]));
    const before = encodeTree({ members });
    fc.assert(
      fc.property(fc.nat(19_999), jsonValue, (at, replacement) => {
        fc.pre(canonicalJson(replacement).length <= 200);
        const added = addedNodes(before, encodeTree({ members: { ...members, [`key_${at}`]: replacement } }));
        expect(added.bytes).toBeLessThan(20_000);
      }),
      { numRuns: 10 },
    );
  }, 120_000);

  it(`writes no node body over ${MAX_NODE_BYTES} bytes, whatever the document`, () => {
    const largest = (document: JsonObject) => Math.max(...[...encodeTree(document).nodes.values()].map((body) => Buffer.byteLength(body)));
    fc.assert(
      fc.property(fc.oneof(chunkedDocument, jsonObject), (document) => {
        expect(largest(document)).toBeLessThanOrEqual(MAX_NODE_BYTES);
      }),
      { numRuns: 40 },
    );
    // The shapes of the largest requests (bench/event-loop.bench.ts) and strings whose JSON is 6 bytes a unit.
    const shapes: JsonObject[] = [
      { x: Array.from({ length: 100_000 }, (_, i) => i) },
      { x: Array.from({ length: 100_000 }, () => ({})) },
      { x: Array.from({ length: 30_000 }, (_, i) => ({ i, v: 'a' })) },
      { x: Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i])) },
      { x: Array.from({ length: 6_900 }, (_, i) => `${i}`.padEnd(300, 'x')) },
      { x: '\u0001'.repeat(2_000_000), y: '😀'.repeat(500_000), z: '\u0001'.repeat(4_096) },
      { x: Array.from({ length: 3_000 }, (_, i) => ({ [`k${i}`.padEnd(120, 'k')]: 'v'.repeat(120) })) },
    ];
    for (const shape of shapes) expect(largest(shape)).toBeLessThanOrEqual(MAX_NODE_BYTES);
  }, 120_000);

  it('gives the same root hash and nodes for the same chunked document, whatever the key order', () => {
    fc.assert(
      fc.property(chunkedDocument, (document) => {
        const first = encodeTree(document);
        const reordered = encodeTree(withKeysReversed(document) as JsonObject);
        expect(reordered.rootHash).toBe(first.rootHash);
        expect(new Map(reordered.nodes)).toEqual(first.nodes);
        expect(encodeTree(structuredClone(document)).rootHash).toBe(first.rootHash);
      }),
      { numRuns: 20 },
    );
  }, 120_000);

  it('gives the same tree with the memo after an edit of a wide array as from scratch', () => {
    fc.assert(
      fc.property(wideArray, fc.nat(), jsonValue, (list, pick, replacement) => {
        const memo = new EncodingMemo();
        const first = encodeTree({ list }, memo);
        first.remember();
        const edited = [...list];
        edited[pick % list.length] = replacement;
        const reused = encodeTree({ list: edited }, memo);
        const scratch = encodeTree(structuredClone({ list: edited }));
        expect(reused.rootHash).toBe(scratch.rootHash);
        expect(reused.size).toBe(scratch.size);
        for (const hash of scratch.nodes.keys()) expect(reused.nodes.has(hash) || first.nodes.has(hash)).toBe(true);
      }),
      { numRuns: 20 },
    );
  }, 120_000);

  // Compatibility: documents without strings over 4,096 units or nodes over 32 KB keep the hashes
  // they were stored under before chunks existed (computed by that release's encoder).
  it.each<[string, JsonObject, string]>([
    ['a 6 KB agent config', largeConversationConfig(6_000) as unknown as JsonObject, 'A9AO5PS2aa8ubtrIDLiym9'],
    ['a string of 4,096 units', { conversation_config: { agent: { prompt: { prompt: 'ab\n"é😀'.repeat(700).slice(0, 4_096) } } } }, 'B967u9yOHxjHV4YpLxzcNT'],
    ['an array of 700 small objects (a 25 KB node)', { x_items: Array.from({ length: 700 }, (_, i) => ({ id: `item_${i}`, n: i })) }, 'X0ZFbDrCSy3el0SPPpp-2j'],
    ['an object of 1,000 numbers', { x_wide: Object.fromEntries(Array.from({ length: 1_000 }, (_, i) => [`k${i}`, i])) }, 'NsJ2t5lD-Ql0nwta4UQrYw'],
  ])('keeps the hash %s had before chunks', (_name, document, rootHash) => {
    expect(encodeTree(document).rootHash).toBe(rootHash);
  });

  it('decodes nodes stored by earlier releases: a long string as one node, a wide array as one node', () => {
    const text = prose(7, 50_000, true);
    const numbers = Array.from({ length: 10_000 }, (_, i) => i);
    // Literal bodies in the format of earlier releases (no chunks), as the blobs table holds them.
    const stringBody = `{"s":${JSON.stringify(text)}}`;
    const arrayBody = `{"a":[${numbers.join(',')}]}`;
    const objectsBody = `{"a":[null,{"k":1},null],"r":{"0":"${hashNode('{"o":{"k":2}}')}","2":"${hashNode(stringBody)}"}}`;
    const rootBody = `{"o":{"name":"old"},"r":{"items":"${hashNode(objectsBody)}","numbers":"${hashNode(arrayBody)}","prompt":"${hashNode(stringBody)}"}}`;
    const stored = new Map([stringBody, arrayBody, objectsBody, rootBody, '{"o":{"k":2}}'].map((body) => [hashNode(body), body]));
    const lookup = (hash: string) => JSON.parse(stored.get(hash) as string) as ContentNode;
    const expected = { items: [{ k: 2 }, { k: 1 }, text], name: 'old', numbers, prompt: text };
    expect(decodeTree(hashNode(rootBody), lookup)).toEqual(expected);
    // The same document encoded today reads the same and is stored in chunks.
    const today = encodeTree(expected);
    expect(today.rootHash).not.toBe(hashNode(rootBody));
    expect(canonicalJson(decode(today))).toBe(canonicalJson(expected));
    expect(nodeKinds(today)).toEqual(new Set(['o', 'a', 's', 'sc', 'ac']));
  });

  it('counts string bytes as work: encoding a 1 MB string is over a budget a 20 KB config fits in', () => {
    const config = largeConversationConfig(20_000) as unknown as JsonObject;
    expect(withinBudget(200, () => encodeTree(config))).not.toBe(OVER_BUDGET);
    expect(withinBudget(200, () => encodeTree({ prompt: prose(3, 1_000_000, true) }))).toBe(OVER_BUDGET);
  });

  it('pauses decoding after the work of a wide node, not only after many nodes', () => {
    const tree = encodeTree({ list: Array.from({ length: 50_000 }, (_, i) => i), text: prose(5, 200_000, true) });
    expect(tree.nodes.size).toBeLessThan(1_000);
    const lookup = (hash: string) => JSON.parse(tree.nodes.get(hash) as string) as ContentNode;
    const steps = decodeTreeInSteps(tree.rootHash, lookup, 1_000);
    let pauses = 0;
    let step = steps.next();
    for (; !step.done; step = steps.next()) pauses++;
    // Counting nodes (fewer than 1,000) it would not pause at all; counting work it pauses after each
    // index node that copies thousands of items, and after the 200 KB string is joined.
    expect(pauses).toBeGreaterThanOrEqual(5);
    expect(canonicalJson(step.value)).toBe(canonicalJson(decode(tree)));
  });

  it('joins a wide container a chunk at a time: no step copies much more than its share of members', () => {
    const wide = Object.fromEntries(Array.from({ length: 30_000 }, (_, i) => [`key${i}`, i]));
    for (const document of [{ wide }, { list: Object.values(wide) }] as JsonObject[]) {
      const tree = encodeTree(document);
      const lookup = (hash: string) => JSON.parse(tree.nodes.get(hash) as string) as ContentNode;
      const steps = decodeTreeInSteps(tree.rootHash, lookup, 1_000);
      let pauses = 0;
      let step = steps.next();
      for (; !step.done; step = steps.next()) pauses++;
      // A pause per thousand members joined (the chunks, parsed as they are, cost a unit each), not
      // one after the whole index.
      expect(pauses).toBeGreaterThanOrEqual(29);
      expect(step.value).toEqual(document);
    }
  });

  it('gives object keys back in the order they were hashed, whatever the keys (wide containers too)', () => {
    const keys = fc.oneof(jsonKey, fc.nat({ max: 5_000 }).map(String), fc.constantFrom('__proto__', '4294967294', '4294967295', '01', '-1'));
    fc.assert(
      fc.property(fc.uniqueArray(keys, { minLength: 200, maxLength: 3_000 }), fc.boolean(), (names, widen) => {
        const members = names.map((name, i) => [name, widen ? `${i}`.padEnd(40, 'v') : i] as const);
        const document = JSON.parse(JSON.stringify({ wide: Object.fromEntries(members) })) as JsonObject;
        // JSON.parse keeps __proto__ as data; so does the sorted copy, set member by member.
        const sorted: JsonObject = {};
        for (const name of [...names].sort()) setMember(sorted, name, (document.wide as JsonObject)[name]);
        const back = decode(encodeTree(document)).wide as JsonObject;
        expect(Object.keys(back)).toEqual(Object.keys(sorted));
        expect(canonicalJson(back)).toBe(canonicalJson(sorted));
      }),
      { numRuns: 60 },
    );
  });

  it('joins the chunks of an object with integer-like keys in order too (they are listed first whatever the order)', () => {
    const pausesDecoding = (document: JsonObject) => {
      const tree = encodeTree(document);
      const steps = decodeTreeInSteps(tree.rootHash, (hash) => JSON.parse(tree.nodes.get(hash) as string) as ContentNode, 1_000);
      let pauses = 0;
      for (let step = steps.next(); !step.done; step = steps.next()) pauses++;
      return pauses;
    };
    const numbered = Object.fromEntries(Array.from({ length: 30_000 }, (_, i) => [String(i * 7), i]));
    const named = Object.fromEntries(Array.from({ length: 30_000 }, (_, i) => [`k${i * 7}`, i]));
    // The longer keys make more chunks; sorting the members again would add 30,000 units of work.
    expect(pausesDecoding({ wide: numbered })).toBeLessThanOrEqual(pausesDecoding({ wide: named }));
  });

  it('sorts an index whose chunks are out of key order (never written, still read right)', () => {
    const chunks: ContentNode[] = [{ o: { m: 1, z: 2 } }, { o: { a: 3, b: 4 } }];
    const nodes = new Map<string, ContentNode>([
      ['root', { o: {}, r: { wide: 'index' } }],
      ['index', { oc: ['c1', 'c2'] }],
      ['c1', chunks[0]],
      ['c2', chunks[1]],
    ]);
    const back = decodeTree('root', (hash) => nodes.get(hash));
    expect(Object.keys(back.wide as JsonObject)).toEqual(['a', 'b', 'm', 'z']);
  });
});
