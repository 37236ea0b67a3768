import { createHash } from 'node:crypto';

import { type Json, type JsonObject, isJsonObject, setMember } from './canonical-json.js';
import { LruCache } from './lru.js';
import { murmur3 } from './murmur3.js';
import { spend } from './work-budget.js';

/**
 * Version documents are stored as a Merkle tree of content-addressed nodes, so that versions
 * share every subtree they have in common: a one-field commit to a 20 KB config adds only the
 * nodes on the path from the root to the changed field (decisions.md D6).
 *
 * A node body is deterministic JSON (sorted object keys; array references in index order) of one of
 *   {"s": "<long string>"}
 *   {"o": {<inline members>}, "r": {"<key>": "<hash>"}}
 *   {"a": [<inline items, null where referenced>], "r": {"<index>": "<hash>"}}
 *   {"sc": ["<hash>", …]}  a string over `LONG_STRING`: its chunks ("s" nodes) joined, in order
 *   {"ac": ["<hash>", …]}  a wide array: its chunks ("a" nodes of consecutive items) concatenated
 *   {"oc": ["<hash>", …]}  a wide object: its chunks ("o" nodes of consecutive members) merged
 * Children whose canonical JSON is short stay inline; longer ones become nodes of their own. Chunk
 * boundaries are chosen by content, so an edit changes only the chunks around it and the index; an
 * index of many entries lists index nodes of the same kind (a Prolly tree).
 * No node body exceeds `MAX_NODE_BYTES` (but for one object member whose key alone is longer).
 */

const INLINE_LIMIT = 128;
/**
 * A node larger than this moves even its small container children out to nodes of their own,
 * so that a change inside a long array of small objects does not rewrite the whole array.
 */
const WIDE_NODE_LIMIT = 1024;
/**
 * A container whose node body would be larger than this (UTF-8 bytes) is stored in chunks, so that
 * no blob row (one INSERT, one synchronous SQLite write) is larger, and a one-item edit of a wide
 * array rewrites a chunk and the index, not the array. Documents without such nodes keep the hashes
 * they had before chunks existed.
 */
const WIDE_CHUNK_LIMIT = 32 * 1024;
/**
 * Strings longer than this (UTF-16 units) are stored in chunks: a one-line edit of a long prompt or
 * procedure stores a chunk or two and the index. Shorter ones stay one "s" node (at most 6 bytes of
 * JSON a unit: 24 KB, under `MAX_NODE_BYTES`), so most stored documents keep their hashes.
 */
const LONG_STRING = 4096;
/** The largest node body (UTF-8 bytes), but for a chunk holding one object member with a longer key. */
export const MAX_NODE_BYTES = WIDE_CHUNK_LIMIT;

/**
 * String chunks: at least `STRING_CHUNK_MIN` units, then a cut where a gear hash of the last 32
 * units matches (1 in 256), moved back to just after a newline within `NEWLINE_REACH` units if
 * there is one; never more than `STRING_CHUNK_MAX_BYTES` of JSON, never between the halves of a
 * surrogate pair. Small chunks (~500 units) and a small minimum let the cuts after an edit fall
 * where they fell before, so an edit rewrites about one chunk and an index node a level: a
 * one-line edit of a 50,000-unit string stores ~1.6 KB on average, under 4 KB in 1,200 trials
 * (FastCDC's normalized chunking, ~1.3 K-unit chunks, stored 2.3 KB on average and up to 11 KB).
 */
const STRING_CHUNK_MIN = 256;
const GEAR_MASK = 0xff000000 | 0;
const NEWLINE_REACH = 64;
const STRING_CHUNK_MAX_BYTES = 8 * 1024;
/**
 * Container chunks: at least `CHUNK_MIN_BYTES`, then a cut after a member with probability its
 * size / `CHUNK_TARGET_BYTES` (by a hash of the member, so by content), never over
 * `CHUNK_MAX_BYTES`: about 1.5 KB a chunk whatever the size of the members. A one-item edit of a
 * 40,000-item array (1.2 MB as one node) stores ~3 KB on average, under 7 KB in the trials; with
 * 1–2 KB the tail reached 19 KB (a moved cut took longer to fall back in step).
 */
const CHUNK_MIN_BYTES = 512;
const CHUNK_TARGET_BYTES = 1024;
const CHUNK_MAX_BYTES = 8 * 1024;
/**
 * An index of more than `INDEX_GROUP_ABOVE` entries is grouped into index nodes of at most
 * `INDEX_MAX` entries (under 1 KB), a group ending after an entry whose hash matches (1 in 8), so an
 * edit rewrites one small index node per level rather than a list of every chunk.
 */
const INDEX_GROUP_ABOVE = 16;
const INDEX_MAX = 32;
const INDEX_GROUP_MASK = 7;

export type ContentNode =
  | { s: string }
  | { o: JsonObject; r?: Record<string, string> }
  | { a: Json[]; r?: Record<string, string> }
  | { sc: string[] }
  | { ac: string[] }
  | { oc: string[] };

type IndexKind = 'sc' | 'ac' | 'oc';

export function hashNode(body: string): string {
  return createHash('sha256').update(body).digest('base64url').slice(0, 22);
}

export interface EncodedTree {
  rootHash: string;
  /** The nodes this encoding built, by hash (including ones a store may already hold). */
  nodes: Map<string, string>;
  /** Bytes of the whole tree's nodes, including subtrees reused from the memo. */
  size: number;
  /** Array items and object members in the whole document, at any depth. */
  values: number;
  /** Records this tree's encodings in the memo: call once its nodes are stored. */
  remember(): void;
}

/** `values`: the array items and object members inside the value, at any depth. */
type Encoded = { inline: string; size: number; values: number } | { ref: string; size: number; values: number };
type EncodedNode = { ref: string; size: number; values: number };

/** A member of a container, encoded: `key` is an object member's key as JSON, absent for an array item. */
interface Part {
  key?: string;
  encoded: Encoded;
  /** Whether the member is an object or array (a node of its own when its parent is split). */
  container: boolean;
}

/**
 * Encodings of values whose nodes are known to be stored. Documents share their untouched
 * subtrees (the same objects) with the version they were made from, so encoding the next version
 * only visits the path to what changed. Keyed by object identity: callers must not mutate a
 * document once it is encoded.
 */
export class EncodingMemo {
  readonly containers = new WeakMap<object, Encoded>();
  /** A container's hash as a node of its own (wide nodes move every container child out). */
  readonly containerNodes = new WeakMap<object, EncodedNode>();
  /** Long strings are one node (or an index of chunks) each; the same string instance is looked up cheaply. */
  readonly strings = new LruCache<string, EncodedNode>(2_000);
}

interface Encoding {
  nodes: Map<string, string>;
  memo?: EncodingMemo;
  /**
   * This encoding's own results, by container. Without them a container under a wide node would be
   * encoded again for each wide ancestor (once inline, once split): twice the work per level, so
   * a chain of wide objects cost 2^depth (a 22 KB body of 16 such levels took 3 s).
   */
  encodedHere: Map<object, Encoded>;
  nodesHere: Map<object, EncodedNode>;
  /** What to record in the memo once stored. */
  seen: { containers: [object, Encoded][]; containerNodes: [object, EncodedNode][]; strings: [string, EncodedNode][] };
}

export function encodeTree(document: JsonObject, memo?: EncodingMemo): EncodedTree {
  const encoding: Encoding = { nodes: new Map(), memo, encodedHere: new Map(), nodesHere: new Map(), seen: { containers: [], containerNodes: [], strings: [] } };
  const root = encodeContainer(document, encoding, true);
  if (!('ref' in root)) throw new Error('unreachable: the root is always a node');
  return {
    rootHash: root.ref,
    nodes: encoding.nodes,
    size: root.size,
    values: root.values,
    remember() {
      if (!memo) return;
      for (const [value, encoded] of encoding.seen.containers) memo.containers.set(value, encoded);
      for (const [value, encoded] of encoding.seen.containerNodes) memo.containerNodes.set(value, encoded);
      for (const [value, encoded] of encoding.seen.strings) memo.strings.set(value, encoded);
    },
  };
}

function encodeValue(value: Json, encoding: Encoding): Encoded {
  if (typeof value === 'string') {
    if (value.length <= INLINE_LIMIT) return { inline: JSON.stringify(value), size: value.length + 2, values: 0 };
    const known = encoding.memo?.strings.get(value);
    if (known) return known;
    // Hashing (and chunking) a string costs about as much a KB as a member does.
    spend(1 + (value.length >> 10));
    const encoded = value.length > LONG_STRING ? encodeLongString(value, encoding) : storeNode(`{"s":${JSON.stringify(value)}}`, 0, 0, encoding);
    encoding.seen.strings.push([value, encoded]);
    return encoded;
  }
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    return { inline: text, size: text.length, values: 0 };
  }
  const known = encoding.memo?.containers.get(value) ?? encoding.encodedHere.get(value);
  if (known) return known;
  const encoded = encodeContainer(value, encoding, false);
  encoding.seen.containers.push([value, encoded]);
  return encoded;
}

/**
 * The container as a node (its hash), or, when `forceNode` is false and the container is short
 * and has no referenced children, as inline JSON.
 */
function encodeContainer(value: JsonObject | Json[], encoding: Encoding, forceNode: boolean): Encoded {
  if (forceNode) {
    const known = encoding.memo?.containerNodes.get(value) ?? encoding.nodesHere.get(value);
    if (known) return known;
  }
  spend(1 + (Array.isArray(value) ? value.length : Object.keys(value).length));
  const parts = encodeParts(value, encoding, false);
  const inline = assemble(Array.isArray(value), parts);
  if (!forceNode && inline.refs === 0 && inline.body.length <= INLINE_LIMIT) {
    const encoded = { inline: inline.members, size: inline.members.length, values: inline.values };
    encoding.encodedHere.set(value, encoded);
    return encoded;
  }
  let encoded: EncodedNode;
  if (inline.body.length <= WIDE_NODE_LIMIT) encoded = storeNode(inline.body, inline.childSize, inline.values, encoding);
  else if (splitBodyBytes(parts) <= WIDE_CHUNK_LIMIT) {
    const split = assemble(Array.isArray(value), encodeParts(value, encoding, true));
    encoded = storeNode(split.body, split.childSize, split.values, encoding);
  } else encoded = encodeWideContainer(Array.isArray(value), parts, encoding);
  encoding.seen.containerNodes.push([value, encoded]);
  // As a node it is the same whether or not it was forced to be one; unforced, it may be inline.
  encoding.nodesHere.set(value, encoded);
  if (!forceNode) encoding.encodedHere.set(value, encoded);
  return encoded;
}

/** The members of a container, encoded; with `splitContainers`, every object or array child becomes a node. */
function encodeParts(value: JsonObject | Json[], encoding: Encoding, splitContainers: boolean): Part[] {
  const encodeChild = (child: Json): Part => {
    const container = child !== null && typeof child === 'object';
    return { encoded: splitContainers && container ? encodeContainer(child, encoding, true) : encodeValue(child, encoding), container };
  };
  if (Array.isArray(value)) return value.map(encodeChild);
  const parts: Part[] = [];
  for (const key of Object.keys(value).sort()) {
    const member = value[key];
    if (member === undefined) continue;
    parts.push({ ...encodeChild(member), key: JSON.stringify(key) });
  }
  return parts;
}

/** The node body of an array (parts without keys) or an object (parts with keys, sorted). */
function assemble(isArray: boolean, parts: Part[]) {
  const inlineParts: string[] = [];
  const refParts: string[] = [];
  let childSize = 0;
  let values = 0;
  parts.forEach(({ key, encoded }, index) => {
    values += 1 + encoded.values;
    if ('inline' in encoded) inlineParts.push(isArray ? encoded.inline : `${key}:${encoded.inline}`);
    else {
      if (isArray) inlineParts.push('null');
      refParts.push(isArray ? `"${index}":"${encoded.ref}"` : `${key}:"${encoded.ref}"`);
      childSize += encoded.size;
    }
  });
  const members = isArray ? `[${inlineParts.join(',')}]` : `{${inlineParts.join(',')}}`;
  const field = isArray ? 'a' : 'o';
  const body = refParts.length ? `{"${field}":${members},"r":{${refParts.join(',')}}}` : `{"${field}":${members}}`;
  return { members, body, refs: refParts.length, childSize, values };
}

/** UTF-8 bytes a member adds to its parent's node body (commas and the reference's key included). */
function partBytes(part: Part, asReference: boolean): number {
  const keyBytes = part.key === undefined ? 0 : Buffer.byteLength(part.key) + 1;
  if (!asReference && 'inline' in part.encoded) return keyBytes + Buffer.byteLength(part.encoded.inline) + 1;
  // An array item: `null,` and `"<index>":"<hash>",` (an index of at most 6 digits); a member: `"<hash>",`.
  return part.key === undefined ? 5 + 6 + 28 : keyBytes + 25;
}

/** At least the bytes of the node a container would be with its container children split out. */
function splitBodyBytes(parts: Part[]): number {
  let bytes = 16;
  for (const part of parts) bytes += partBytes(part, part.container);
  return bytes;
}

/**
 * A wide container as an index over chunks of consecutive members, each chunk a node of the
 * container's own kind with its small children inline (the chunk bounds what an edit rewrites).
 */
function encodeWideContainer(isArray: boolean, parts: Part[], encoding: Encoding): EncodedNode {
  const chunks: EncodedNode[] = [];
  const addChunk = (members: Part[]) => {
    const built = assemble(isArray, members);
    chunks.push(storeNode(built.body, built.childSize, built.values, encoding));
  };
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < parts.length; i++) {
    const size = partBytes(parts[i], false);
    if (i > start && bytes + size > CHUNK_MAX_BYTES) {
      addChunk(parts.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += size;
    if (bytes >= CHUNK_MIN_BYTES && endsChunk(parts[i], size)) {
      addChunk(parts.slice(start, i + 1));
      start = i + 1;
      bytes = 0;
    }
  }
  if (start < parts.length) addChunk(parts.slice(start));
  return storeIndex(isArray ? 'ac' : 'oc', chunks, encoding);
}

/** Whether a chunk ends after this member: with probability size / `CHUNK_TARGET_BYTES`, decided by the member's content. */
function endsChunk(part: Part, size: number): boolean {
  const text = `${part.key ?? ''}:${'inline' in part.encoded ? part.encoded.inline : part.encoded.ref}`;
  return murmur3(text) < size * (2 ** 32 / CHUNK_TARGET_BYTES);
}

/** A string over `LONG_STRING` as an index over "s" nodes of its chunks. */
function encodeLongString(value: string, encoding: Encoding): EncodedNode {
  const chunks = stringChunks(value).map((chunk) => storeNode(`{"s":${JSON.stringify(chunk)}}`, 0, 0, encoding));
  return storeIndex('sc', chunks, encoding);
}

/** 256 pseudo-random 32-bit numbers, fixed forever: stored chunk boundaries depend on them. */
const GEAR = Int32Array.from({ length: 256 }, (_, i) => murmur3(`gear ${i}`));

/** Splits a string where its content says (FastCDC-style gear hash), so an edit moves no boundary far from it. */
export function stringChunks(text: string): string[] {
  const chunks: string[] = [];
  let start = 0;
  let bytes = 0;
  let hash = 0;
  /** Where the chunk may end just after a newline (-1: no newline since `start`). */
  let afterNewline = -1;
  const cutAt = (cut: number, upTo: number) => {
    chunks.push(text.slice(start, cut));
    start = cut;
    bytes = jsonBytesBetween(text, cut, upTo);
    afterNewline = -1;
  };
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // Printable ASCII but `"` and `\`, most of any text, is one byte of JSON.
    const cost = unit >= 0x20 && unit < 0x7f && unit !== 0x22 && unit !== 0x5c ? 1 : jsonBytesAt(text, i);
    if (bytes + cost > STRING_CHUNK_MAX_BYTES) {
      let cut = afterNewline > start + STRING_CHUNK_MIN ? afterNewline : i;
      if (splitsPair(text, cut)) cut -= 1;
      cutAt(cut, i);
    }
    bytes += cost;
    hash = ((hash << 1) + GEAR[(unit ^ (unit >>> 8)) & 0xff]) | 0;
    if (unit === 10) afterNewline = i + 1;
    if (i + 1 - start >= STRING_CHUNK_MIN && (hash & GEAR_MASK) === 0 && !splitsPair(text, i + 1)) {
      cutAt(afterNewline > i + 1 - NEWLINE_REACH && afterNewline > start + STRING_CHUNK_MIN ? afterNewline : i + 1, i + 1);
    }
  }
  if (start < text.length) chunks.push(text.slice(start));
  return chunks;
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/** Whether cutting before `index` would separate the two halves of a surrogate pair. */
function splitsPair(text: string, index: number): boolean {
  return index > 0 && index < text.length && isHighSurrogate(text.charCodeAt(index - 1)) && isLowSurrogate(text.charCodeAt(index));
}

/** UTF-8 bytes of the unit at `index` in `JSON.stringify` of the string (a lone surrogate is escaped). */
function jsonBytesAt(text: string, index: number): number {
  const unit = text.charCodeAt(index);
  if (unit < 0x20) return unit === 8 || unit === 9 || unit === 10 || unit === 12 || unit === 13 ? 2 : 6;
  if (unit === 0x22 || unit === 0x5c) return 2;
  if (unit < 0x80) return 1;
  if (unit < 0x800) return 2;
  if (isHighSurrogate(unit)) return isLowSurrogate(text.charCodeAt(index + 1)) ? 2 : 6;
  if (isLowSurrogate(unit)) return index > 0 && isHighSurrogate(text.charCodeAt(index - 1)) ? 2 : 6;
  return 3;
}

function jsonBytesBetween(text: string, from: number, to: number): number {
  let bytes = 0;
  for (let i = from; i < to; i++) bytes += jsonBytesAt(text, i);
  return bytes;
}

/** An index node over `entries`; more than `INDEX_MAX` are grouped by content into index nodes of the same kind first. */
function storeIndex(kind: IndexKind, entries: EncodedNode[], encoding: Encoding): EncodedNode {
  const indexNode = (group: EncodedNode[]) =>
    storeNode(
      `{"${kind}":[${group.map((entry) => `"${entry.ref}"`).join(',')}]}`,
      group.reduce((sum, entry) => sum + entry.size, 0),
      group.reduce((sum, entry) => sum + entry.values, 0),
      encoding,
    );
  let level = entries;
  while (level.length > INDEX_GROUP_ABOVE) {
    const next: EncodedNode[] = [];
    let start = 0;
    for (let i = 0; i < level.length; i++) {
      const length = i + 1 - start;
      // At least two entries a group, so that every level is shorter than the one below.
      if (length === INDEX_MAX || (length >= 2 && (murmur3(level[i].ref) & INDEX_GROUP_MASK) === 0)) {
        next.push(indexNode(level.slice(start, i + 1)));
        start = i + 1;
      }
    }
    if (start < level.length) next.push(indexNode(level.slice(start)));
    level = next;
  }
  return indexNode(level);
}

/** Stores a node; `size` counts its body and the bodies below it. */
function storeNode(body: string, childSize: number, values: number, encoding: Encoding): EncodedNode {
  return { ref: store(body, encoding.nodes), size: body.length + childSize, values };
}

function store(body: string, nodes: Map<string, string>): string {
  const hash = hashNode(body);
  nodes.set(hash, body);
  return hash;
}

/** The hashes a node refers to (an index's chunks in order, repeats included). */
export function childHashes(node: ContentNode): string[] {
  if ('sc' in node) return node.sc;
  if ('ac' in node) return node.ac;
  if ('oc' in node) return node.oc;
  return 'r' in node && node.r ? Object.values(node.r) : [];
}

/** Rebuilds a document from its nodes; `lookup` must know every node reachable from the root. */
export function decodeTree(rootHash: string, lookup: (hash: string) => ContentNode | undefined): JsonObject {
  const steps = decodeTreeInSteps(rootHash, lookup, Number.POSITIVE_INFINITY);
  for (let step = steps.next(); ; step = steps.next()) if (step.done) return step.value;
}

/**
 * `decodeTree` that pauses (yields) after about `workPerStep` units of work (`decodingWork`), so
 * that a caller can let other work run while a large document is rebuilt. Children are rebuilt
 * before their parent.
 */
export function* decodeTreeInSteps(rootHash: string, lookup: (hash: string) => ContentNode | undefined, workPerStep: number): Generator<void, JsonObject> {
  const decoded = new Map<string, Json>();
  const stack: { hash: string; expanded: boolean }[] = [{ hash: rootHash, expanded: false }];
  let sinceYield = 0;
  function* spend(work: number): Generator<void, void> {
    sinceYield += work;
    if (sinceYield >= workPerStep) {
      sinceYield = 0;
      yield;
    }
  }
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (decoded.has(top.hash)) {
      stack.pop();
      continue;
    }
    const node = lookup(top.hash);
    if (!node) throw new Error(`missing content node ${top.hash}`);
    if (!top.expanded) {
      top.expanded = true;
      for (const child of childHashes(node)) if (!decoded.has(child)) stack.push({ hash: child, expanded: false });
      continue;
    }
    stack.pop();
    // An index joins its chunks a chunk at a time: a wide container is too much work for one step.
    const value = 'ac' in node || 'oc' in node ? yield* decodeIndex(node, decoded, spend) : decodeNode(node, decoded);
    decoded.set(top.hash, value);
    yield* spend(decodingWork(node, value));
  }
  const root = decoded.get(rootHash);
  if (!isJsonObject(root)) throw new Error(`document ${rootHash} is not an object`);
  return root;
}

/**
 * Units of work rebuilding a node took, about as `spend` counts them: one for the node, one a
 * member copied or merged, one a KB of string joined.
 */
function decodingWork(node: ContentNode, value: Json): number {
  if ('s' in node) return 1;
  if ('sc' in node) return 1 + ((value as string).length >> 10);
  // A node without references is its parsed members as they are: nothing is copied.
  // An index's members were counted as its chunks were joined (`decodeIndex`).
  if ('ac' in node || 'oc' in node || !('r' in node && node.r)) return 1;
  return 1 + (Array.isArray(value) ? value.length : Object.keys(value as JsonObject).length);
}

/** One node, its children decoded already. */
function decodeNode(node: ContentNode, decoded: Map<string, Json>): Json {
  if ('s' in node) return node.s;
  if ('sc' in node) return node.sc.map((chunk) => decoded.get(chunk) as string).join('');
  if ('ac' in node || 'oc' in node) {
    const steps = decodeIndex(node, decoded, function* () {});
    for (let step = steps.next(); ; step = steps.next()) if (step.done) return step.value;
  }
  // A node without references holds its members as parsed, keys sorted as they were hashed.
  if (!('r' in node) || !node.r) return 'a' in node ? node.a : node.o;
  if ('a' in node) {
    const items = [...node.a];
    for (const [index, child] of Object.entries(node.r ?? {})) items[Number(index)] = decoded.get(child) as Json;
    return items;
  }
  const members = new Map<string, Json>(Object.entries(node.o));
  for (const [key, child] of Object.entries(node.r ?? {})) members.set(key, decoded.get(child) as Json);
  return sortedObject(members);
}

/**
 * A wide container from its chunks, decoded already, spending a unit of work a member. Chunks hold
 * consecutive members in key order, so an object's members are set in order as they come (only
 * an index whose keys are out of order, which the encoder never writes, is sorted at the end).
 */
function* decodeIndex(node: { ac: string[] } | { oc: string[] }, decoded: Map<string, Json>, spend: (work: number) => Generator<void, void>): Generator<void, Json> {
  if ('ac' in node) {
    const items: Json[] = [];
    for (const chunk of node.ac) {
      const part = decoded.get(chunk) as Json[];
      for (const item of part) items.push(item);
      yield* spend(part.length);
    }
    return items;
  }
  const members: JsonObject = {};
  let previous: string | undefined;
  let inOrder = true;
  for (const chunk of node.oc) {
    const part = decoded.get(chunk) as JsonObject;
    const keys = Object.keys(part);
    for (const key of keys) {
      // An object lists integer-like keys first, whatever their order: only the others keep it.
      if (!isArrayIndex(key)) {
        if (previous !== undefined && key <= previous) inOrder = false;
        previous = key;
      }
      setMember(members, key, part[key]);
    }
    yield* spend(keys.length);
  }
  if (inOrder) return members;
  const all = new Map(Object.entries(members));
  yield* spend(all.size);
  return sortedObject(all);
}

/** Whether an object lists this key before the others, in numeric order (an array index). */
function isArrayIndex(key: string): boolean {
  const first = key.charCodeAt(0);
  if (!(first >= 48 && first <= 57)) return false;
  return /^(?:0|[1-9]\d{0,9})$/.test(key) && Number(key) < 2 ** 32 - 1;
}

/** Keys come back sorted, as they were hashed. */
function sortedObject(members: Map<string, Json>): JsonObject {
  const sorted: JsonObject = {};
  for (const key of [...members.keys()].sort()) setMember(sorted, key, members.get(key) as Json);
  return sorted;
}
