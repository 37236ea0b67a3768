import { createHash } from 'node:crypto';

import { type Json, type JsonObject, isJsonObject, setMember } from './canonical-json.js';

/**
 * Version documents are stored as a Merkle tree of content-addressed nodes, so that versions
 * share every subtree they have in common: a one-field commit to a 20 KB config adds only the
 * nodes on the path from the root to the changed field (DESIGN §4, §12.15).
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

export interface EncodedTree {
  rootHash: string;
  /** Every node of the tree, by hash (including ones a store may already hold). */
  nodes: Map<string, string>;
}

export function hashNode(body: string): string {
  return createHash('sha256').update(body).digest('base64url').slice(0, 22);
}

export function encodeTree(document: JsonObject): EncodedTree {
  const nodes = new Map<string, string>();
  const rootHash = encodeContainer(document, nodes, true);
  if (rootHash === undefined) throw new Error('unreachable: the root is always a node');
  return { rootHash, nodes };
}

type Encoded = { inline: string } | { ref: string };

function encodeValue(value: Json, nodes: Map<string, string>): Encoded {
  if (typeof value === 'string') {
    if (value.length <= INLINE_LIMIT) return { inline: JSON.stringify(value) };
    return { ref: store(`{"s":${JSON.stringify(value)}}`, nodes) };
  }
  if (value === null || typeof value !== 'object') return { inline: JSON.stringify(value) };
  const inline = encodeContainer(value, nodes, false);
  return typeof inline === 'string' && inline.startsWith('\u0000')
    ? { inline: inline.slice(1) }
    : { ref: inline as string };
}

/**
 * Returns the hash of the container's node, or (when `forceNode` is false and the container is
 * short and has no referenced children) its inline JSON prefixed with a NUL marker.
 */
function encodeContainer(value: JsonObject | Json[], nodes: Map<string, string>, forceNode: boolean): string {
  const inline = buildContainer(value, nodes, false);
  if (!forceNode && inline.refs === 0 && inline.body.length <= INLINE_LIMIT) return `\u0000${inline.members}`;
  const built = inline.body.length > WIDE_NODE_LIMIT ? buildContainer(value, nodes, true) : inline;
  return store(built.body, nodes);
}

/** The node body of a container; with `splitContainers`, every object or array child becomes a node. */
function buildContainer(value: JsonObject | Json[], nodes: Map<string, string>, splitContainers: boolean) {
  const inlineParts: string[] = [];
  const refParts: string[] = [];
  const encodeChild = (child: Json): Encoded =>
    splitContainers && child !== null && typeof child === 'object'
      ? { ref: encodeContainer(child, nodes, true) }
      : encodeValue(child, nodes);
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      const encoded = encodeChild(item);
      if ('inline' in encoded) inlineParts.push(encoded.inline);
      else {
        inlineParts.push('null');
        refParts.push(`"${index}":"${encoded.ref}"`);
      }
    });
    const members = `[${inlineParts.join(',')}]`;
    const body = refParts.length ? `{"a":${members},"r":{${refParts.join(',')}}}` : `{"a":${members}}`;
    return { members, body, refs: refParts.length };
  }
  for (const key of Object.keys(value).sort()) {
    const member = value[key];
    if (member === undefined) continue;
    const encoded = encodeChild(member);
    if ('inline' in encoded) inlineParts.push(`${JSON.stringify(key)}:${encoded.inline}`);
    else refParts.push(`${JSON.stringify(key)}:"${encoded.ref}"`);
  }
  const members = `{${inlineParts.join(',')}}`;
  const body = refParts.length ? `{"o":${members},"r":{${refParts.join(',')}}}` : `{"o":${members}}`;
  return { members, body, refs: refParts.length };
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
  const root = decodeNode(rootHash, lookup);
  if (!isJsonObject(root)) throw new Error(`document ${rootHash} is not an object`);
  return root;
}

function decodeNode(hash: string, lookup: (hash: string) => ContentNode | undefined): Json {
  const node = lookup(hash);
  if (!node) throw new Error(`missing content node ${hash}`);
  if ('s' in node) return node.s;
  if ('a' in node) {
    const items = [...node.a];
    for (const [index, child] of Object.entries(node.r ?? {})) items[Number(index)] = decodeNode(child, lookup);
    return items;
  }
  const members = new Map<string, Json>(Object.entries(node.o));
  for (const [key, child] of Object.entries(node.r ?? {})) members.set(key, decodeNode(child, lookup));
  // Keys come back sorted, as they were hashed.
  const sorted: JsonObject = {};
  for (const key of [...members.keys()].sort()) setMember(sorted, key, members.get(key) as Json);
  return sorted;
}
