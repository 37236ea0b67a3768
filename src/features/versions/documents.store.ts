import { setImmediate } from 'node:timers/promises';

import type { Kysely } from 'kysely';

import { withinBudgetOr } from '../../compute/offload.js';
import { MAX_BOUND_VALUES, queryInSlices } from '../../db/in-lists.js';
import type { Database } from '../../db/schema.js';
import type { JsonObject } from '../../domain/canonical-json.js';
import { type ContentNode, childHashes, decodeTreeInSteps, type EncodedTree, EncodingMemo, encodeTree } from '../../domain/content-tree.js';
import { LruCache } from '../../domain/lru.js';
import { RequestValidationError } from '../../errors.js';
import type { AgentDocument } from '../agents/agent-document.js';

/** The document a version holds (through the documents store's cache). */
export async function loadDocument(context: { documents: DocumentStore }, db: Kysely<Database>, version: { document_hash: string }): Promise<AgentDocument> {
  return (await context.documents.load(db, version.document_hash)) as AgentDocument;
}

/**
 * Version documents in the content-addressed `blobs` table. Nodes are immutable, so decoded
 * documents are cached by root hash for as long as memory allows; callers must treat the
 * returned objects as read-only.
 */
export interface PreparedDocument {
  document: JsonObject;
  rootHash: string;
  /** The nodes this encoding built; subtrees reused from the memo are stored already. */
  nodes: Map<string, string>;
  tree: EncodedTree;
}

/**
 * Most array items and object members (at any depth) in one stored document, defaults included.
 * A document grows by merge-patch commits and merges, each within the request limits
 * (`MAX_JSON_VALUES`); this bounds what the event loop does with it even when the work is in a
 * compute worker: copying the document to the worker costs about a microsecond a value (50 ms
 * at this size on a loaded machine, bench: "The event loop under the largest requests").
 */
export const MAX_DOCUMENT_VALUES = 50_000;

/** Nodes read between turns of the event loop when a document is loaded… */
const NODES_PER_STEP = 2_000;
/** …or characters of them parsed. */
const BYTES_PER_STEP = 1024 * 1024;
/** Work (`decodeTreeInSteps`: about a node, a member copied or a KB of string) between turns of the event loop. */
const DECODING_WORK_PER_STEP = 2_000;
/** Most characters of node bodies in one INSERT: a statement is one synchronous SQLite write. */
const BYTES_PER_INSERT = 1024 * 1024;

/** A parsed document, with its filled response subtrees (spec-defaults), takes about this many times its stored JSON size in memory. */
const PARSED_OVERHEAD = 5;

interface CachedDocument {
  document: JsonObject;
  /** Stored JSON size of its nodes. */
  bytes: number;
}

export class DocumentStore {
  private readonly documents: LruCache<string, CachedDocument>;
  /** Encodings of stored documents' subtrees: a commit encodes only the path to its change. */
  private readonly encodings = new EncodingMemo();
  /** Documents as `load` returned them or as they were stored, with their hash. */
  private readonly storedDocuments = new WeakMap<JsonObject, { rootHash: string; size: number; values: number }>();
  /** Hashes known to be stored, so that a commit only writes the nodes it adds. */
  private readonly storedHashes = new LruCache<string, true>(200_000);

  constructor(maxBytes = Number.POSITIVE_INFINITY) {
    this.documents = new LruCache({ maxEntries: 20_000, maxBytes, sizeOf: (cached) => cached.bytes * PARSED_OVERHEAD });
  }

  /**
   * Encodes a document; nothing is written yet. A document over `MAX_DOCUMENT_VALUES` is a 422.
   * A document as `load` returned it is stored already: it is not encoded again. A large one is
   * encoded in a compute worker (src/compute), off the event loop.
   */
  async prepare(document: JsonObject): Promise<PreparedDocument> {
    const stored = this.storedDocuments.get(document);
    if (stored) return { document, rootHash: stored.rootHash, nodes: new Map(), tree: { ...stored, nodes: new Map(), remember() {} } };
    const encoded = await withinBudgetOr(() => encodeTree(document, this.encodings), 'encodeDocument', document);
    return 'remember' in encoded ? this.checked(document, encoded) : this.adopt(document, encoded);
  }

  /**
   * A document encoded elsewhere (a compute worker, src/compute): its subtrees are new objects,
   * which the memo does not know, so later encodings of it start afresh.
   */
  adopt(document: JsonObject, encoding: Omit<EncodedTree, 'remember'>): PreparedDocument {
    return this.checked(document, { ...encoding, remember() {} });
  }

  private checked(document: JsonObject, tree: EncodedTree): PreparedDocument {
    if (tree.values > MAX_DOCUMENT_VALUES) {
      throw RequestValidationError.at(
        ['body'],
        `The resulting config would hold ${tree.values} values (array items and object members); the limit is ${MAX_DOCUMENT_VALUES} per version`,
        'document_too_large',
      );
    }
    return { document, rootHash: tree.rootHash, nodes: tree.nodes, tree };
  }

  /** Writes the nodes of a prepared document that are not known to be stored already. */
  async write(db: Kysely<Database>, prepared: PreparedDocument): Promise<void> {
    // Two bound values a row.
    const rowsPerInsert = MAX_BOUND_VALUES / 2;
    const inserts: { hash: string; body: string }[][] = [[]];
    let bytes = 0;
    for (const [hash, body] of prepared.nodes) {
      if (this.storedHashes.get(hash) !== undefined) continue;
      const current = inserts[inserts.length - 1];
      if (current.length === rowsPerInsert || (current.length > 0 && bytes + body.length > BYTES_PER_INSERT)) {
        inserts.push([]);
        bytes = 0;
      }
      inserts[inserts.length - 1].push({ hash, body });
      bytes += body.length;
    }
    // SQLite answers at once: a large document lets other requests run around each statement.
    const large = inserts.length > 1;
    for (const rows of inserts) {
      if (rows.length === 0) continue;
      if (large) await setImmediate();
      await db
        .insertInto('blobs')
        .values(rows)
        .onConflict((conflict) => conflict.column('hash').doNothing())
        .execute();
    }
    if (large) await setImmediate();
  }

  /**
   * Call once the transaction that wrote the document has committed: only then may later
   * writes skip its nodes (a rolled-back write must not leave them marked as stored).
   */
  markStored(prepared: PreparedDocument): void {
    for (const hash of prepared.nodes.keys()) this.storedHashes.set(hash, true);
    prepared.tree.remember();
    this.storedDocuments.set(prepared.document, { rootHash: prepared.rootHash, size: prepared.tree.size, values: prepared.tree.values });
    this.documents.set(prepared.rootHash, { document: prepared.document, bytes: prepared.tree.size });
  }

  async load(db: Kysely<Database>, rootHash: string): Promise<JsonObject> {
    const cached = this.documents.get(rootHash);
    if (cached) return cached.document;
    const nodes = new Map<string, ContentNode>();
    let bytes = 0;
    let wanted = [rootHash];
    let parsed = 0;
    let parsedBytes = 0;
    while (wanted.length > 0) {
      // A level of a wide document can hold more nodes than one statement may bind.
      const rows = await queryInSlices(wanted, (slice) => db.selectFrom('blobs').select(['hash', 'body']).where('hash', 'in', slice).execute());
      const next: string[] = [];
      for (const row of rows) {
        // SQLite answers at once: a large document lets other requests run as it is read.
        parsedBytes += row.body.length;
        if (++parsed >= NODES_PER_STEP || parsedBytes >= BYTES_PER_STEP) {
          parsed = 0;
          parsedBytes = 0;
          await setImmediate();
        }
        const node = JSON.parse(row.body) as ContentNode;
        bytes += row.body.length;
        nodes.set(row.hash, node);
        for (const child of childHashes(node)) if (!nodes.has(child)) next.push(child);
      }
      if (rows.length < new Set(wanted).size) throw new Error(`document ${rootHash} has missing nodes`);
      wanted = [...new Set(next)];
    }
    const steps = decodeTreeInSteps(rootHash, (hash) => nodes.get(hash), DECODING_WORK_PER_STEP);
    let step = steps.next();
    for (; !step.done; step = steps.next()) await setImmediate();
    const document = step.value;
    // Stored, so checked against the limit when it was written.
    this.storedDocuments.set(document, { rootHash, size: bytes, values: 0 });
    this.documents.set(rootHash, { document, bytes });
    return document;
  }

  /** Cache statistics (for metrics). */
  get cache(): Pick<LruCache<string, CachedDocument>, 'hits' | 'misses' | 'bytes' | 'size'> {
    return this.documents;
  }
}

