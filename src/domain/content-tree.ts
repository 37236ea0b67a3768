import { createHash } from 'node:crypto';

import { type Json, type JsonObject, isJsonObject, setMember } from './canonical-json.js';
import { LruCache } from './lru.js';
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
 * Children whose canonical JSON is short stay inline; longer ones become nodes of their own.
 */

const INLINE_LIMIT = 128;
/**
 * A node larger than this moves even its small container children out to nodes of their own,
 * so that a change inside a long array of small objects does not rewrite the whole array.
 */
const WIDE_NODE_LIMIT = 1024;

export type ContentNode = { s: string } | { o: JsonObject; r?: Record<string, string> } | { a: Json[]; r?: Record<string, string> };

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
  /** Long strings are one node each; the same string instance is looked up cheaply. */
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
    const body = `{"s":${JSON.stringify(value)}}`;
    const encoded = { ref: store(body, encoding.nodes), size: body.length, values: 0 };
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
  const inline = buildContainer(value, encoding, false);
  if (!forceNode && inline.refs === 0 && inline.body.length <= INLINE_LIMIT) {
    const encoded = { inline: inline.members, size: inline.members.length, values: inline.values };
    encoding.encodedHere.set(value, encoded);
    return encoded;
  }
  const built = inline.body.length > WIDE_NODE_LIMIT ? buildContainer(value, encoding, true) : inline;
  const encoded = { ref: store(built.body, encoding.nodes), size: built.body.length + built.childSize, values: built.values };
  encoding.seen.containerNodes.push([value, encoded]);
  // As a node it is the same whether or not it was forced to be one; unforced, it may be inline.
  encoding.nodesHere.set(value, encoded);
  if (!forceNode) encoding.encodedHere.set(value, encoded);
  return encoded;
}

/** The node body of a container; with `splitContainers`, every object or array child becomes a node. */
function buildContainer(value: JsonObject | Json[], encoding: Encoding, splitContainers: boolean) {
  const inlineParts: string[] = [];
  const refParts: string[] = [];
  let childSize = 0;
  let values = 0;
  const encodeChild = (child: Json): Encoded =>
    splitContainers && child !== null && typeof child === 'object' ? encodeContainer(child, encoding, true) : encodeValue(child, encoding);
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      const encoded = encodeChild(item);
      values += 1 + encoded.values;
      if ('inline' in encoded) inlineParts.push(encoded.inline);
      else {
        inlineParts.push('null');
        refParts.push(`"${index}":"${encoded.ref}"`);
        childSize += encoded.size;
      }
    });
    const members = `[${inlineParts.join(',')}]`;
    const body = refParts.length ? `{"a":${members},"r":{${refParts.join(',')}}}` : `{"a":${members}}`;
    return { members, body, refs: refParts.length, childSize, values };
  }
  for (const key of Object.keys(value).sort()) {
    const member = value[key];
    if (member === undefined) continue;
    const encoded = encodeChild(member);
    values += 1 + encoded.values;
    if ('inline' in encoded) inlineParts.push(`${JSON.stringify(key)}:${encoded.inline}`);
    else {
      refParts.push(`${JSON.stringify(key)}:"${encoded.ref}"`);
      childSize += encoded.size;
    }
  }
  const members = `{${inlineParts.join(',')}}`;
  const body = refParts.length ? `{"o":${members},"r":{${refParts.join(',')}}}` : `{"o":${members}}`;
  return { members, body, refs: refParts.length, childSize, values };
}

function store(body: string, nodes: Map<string, string>): string {
  const hash = hashNode(body);
  nodes.set(hash, body);
  return hash;
}

/** The hashes a node refers to. */
export function childHashes(node: ContentNode): string[] {
  return 'r' in node && node.r ? Object.values(node.r) : [];
}

/** Rebuilds a document from its nodes; `lookup` must know every node reachable from the root. */
export function decodeTree(rootHash: string, lookup: (hash: string) => ContentNode | undefined): JsonObject {
  const steps = decodeTreeInSteps(rootHash, lookup, Number.POSITIVE_INFINITY);
  for (let step = steps.next(); ; step = steps.next()) if (step.done) return step.value;
}

/**
 * `decodeTree` that pauses (yields) after every `nodesPerStep` nodes, so that a caller can let
 * other work run while a large document is rebuilt. Children are rebuilt before their parent.
 */
export function* decodeTreeInSteps(rootHash: string, lookup: (hash: string) => ContentNode | undefined, nodesPerStep: number): Generator<void, JsonObject> {
  const decoded = new Map<string, Json>();
  const stack: { hash: string; expanded: boolean }[] = [{ hash: rootHash, expanded: false }];
  let sinceYield = 0;
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
    decoded.set(top.hash, decodeNode(node, decoded));
    if (++sinceYield >= nodesPerStep) {
      sinceYield = 0;
      yield;
    }
  }
  const root = decoded.get(rootHash);
  if (!isJsonObject(root)) throw new Error(`document ${rootHash} is not an object`);
  return root;
}

/** One node, its children decoded already. */
function decodeNode(node: ContentNode, decoded: Map<string, Json>): Json {
  if ('s' in node) return node.s;
  // A node without references holds its members as parsed, keys sorted as they were hashed.
  if (!('r' in node) || !node.r) return 'a' in node ? node.a : node.o;
  if ('a' in node) {
    const items = [...node.a];
    for (const [index, child] of Object.entries(node.r ?? {})) items[Number(index)] = decoded.get(child) as Json;
    return items;
  }
  const members = new Map<string, Json>(Object.entries(node.o));
  for (const [key, child] of Object.entries(node.r ?? {})) members.set(key, decoded.get(child) as Json);
  // Keys come back sorted, as they were hashed.
  const sorted: JsonObject = {};
  for (const key of [...members.keys()].sort()) setMember(sorted, key, members.get(key) as Json);
  return sorted;
}
