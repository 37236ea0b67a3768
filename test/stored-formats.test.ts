import { InsertQueryNode, type KyselyPlugin, PrimitiveValueListNode, type RootOperationNode, ValuesNode } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildApp } from '../src/app.js';
import { openStore } from '../src/db/connect.js';
import type { Json, JsonObject } from '../src/domain/canonical-json.js';
import { hashNode, MAX_NODE_BYTES } from '../src/domain/content-tree.js';
import { DocumentStore } from '../src/features/versions/documents.store.js';
import { createAgent } from './support/fixtures.js';
import { injectAs, okJson, startTestApp, type TestApp } from './support/test-app.js';

// Decisions.md D6: versions stored before long strings and wide containers were chunked hold them as
// one node each. Those versions stay readable, and since the same document encoded today has another
// root hash, "nothing changed" must be decided by content: a PATCH of the same config makes no
// version, and diff, branch and merge read the old nodes.

let testApp: TestApp;

beforeAll(async () => {
  testApp = await startTestApp();
});

afterAll(async () => {
  await testApp.close();
});

/** A new app and store on the same database: every cache starts cold, so reads decode stored nodes. */
async function restart(): Promise<void> {
  await testApp.app.server.close();
  await testApp.store.close();
  testApp.store = await openStore(testApp.database.options);
  testApp.app = await buildApp({ config: { bodyLimitBytes: 2 * 1024 * 1024, logLevel: 'silent' }, store: testApp.store, logger: false });
}

/**
 * `value` in the node format of earlier releases, which had no chunks: a string over 128 units is
 * one `{"s"}` node however long, a container one `{"o"}`/`{"a"}` node however wide, short children
 * inline. Returns the value's inline JSON or its node's hash; `nodes` collects the bodies.
 */
function singleNodeEncoding(value: Json, nodes: Map<string, string>): { inline: string } | { ref: string } {
  const node = (body: string) => {
    const hash = hashNode(body);
    nodes.set(hash, body);
    return { ref: hash };
  };
  if (typeof value === 'string') return value.length <= 128 ? { inline: JSON.stringify(value) } : node(`{"s":${JSON.stringify(value)}}`);
  if (value === null || typeof value !== 'object') return { inline: JSON.stringify(value) };
  const inline: string[] = [];
  const refs: string[] = [];
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      const encoded = singleNodeEncoding(item, nodes);
      inline.push('inline' in encoded ? encoded.inline : 'null');
      if ('ref' in encoded) refs.push(`"${index}":"${encoded.ref}"`);
    });
  } else {
    for (const key of Object.keys(value).sort()) {
      const encoded = singleNodeEncoding(value[key], nodes);
      if ('inline' in encoded) inline.push(`${JSON.stringify(key)}:${encoded.inline}`);
      else refs.push(`${JSON.stringify(key)}:"${encoded.ref}"`);
    }
  }
  const [field, members] = Array.isArray(value) ? ['a', `[${inline.join(',')}]`] : ['o', `{${inline.join(',')}}`];
  const body = refs.length ? `{"${field}":${members},"r":{${refs.join(',')}}}` : `{"${field}":${members}}`;
  return refs.length === 0 && body.length <= 128 ? { inline: members } : node(body);
}

const prompt = Array.from({ length: 700 }, (_, i) => `Step ${i}: when the caller asks about order ${i * 37}, look it up and read back its status.`).join('\n');
const items = Array.from({ length: 3_000 }, (_, i) => ({ id: `item_${i}`, n: i }));

interface AgentRead {
  version_id: string;
  branch_id: string;
  main_branch_id: string;
  conversation_config: { agent: { prompt: { prompt: string } }; x_items: { id: string; n: number }[] };
}

const read = async (agentId: string, query = '') => okJson<AgentRead>(await injectAs(testApp, 'GET', `/v1/convai/agents/${agentId}${query}`, testApp.keys.admin));
const send = (method: 'POST' | 'PATCH', url: string, body: unknown) => injectAs(testApp, method, url, testApp.keys.admin, body);

describe('versions stored in the node format of earlier releases', () => {
  it('are read, diffed, branched and merged, and a PATCH of the same config makes no version', async () => {
    const { agentId, versionId } = await createAgent(testApp, { name: 'Old format', conversationConfig: { agent: { prompt: { prompt } }, x_items: items } });
    const original = await read(agentId);
    expect(original.conversation_config.agent.prompt.prompt).toBe(prompt);

    // Store the head's document again in the old format, under the head version.
    const context = testApp.app.context;
    const head = await context.db.selectFrom('versions').select('document_hash').where('id', '=', versionId).executeTakeFirstOrThrow();
    const document = (await context.documents.load(context.db, head.document_hash)) as JsonObject;
    const nodes = new Map<string, string>();
    const root = singleNodeEncoding(document, nodes);
    if (!('ref' in root)) throw new Error('a stored document is a node');
    expect(root.ref).not.toBe(head.document_hash);
    const bodies = [...nodes.values()];
    // The prompt as one node, the array as one node of over 32 KB: what chunks replaced.
    expect(bodies).toContain(`{"s":${JSON.stringify(prompt)}}`);
    expect(bodies.some((body) => body.startsWith('{"a":') && body.length > 32 * 1024)).toBe(true);
    for (const [hash, body] of nodes) {
      await context.db.insertInto('blobs').values({ hash, body }).onConflict((conflict) => conflict.column('hash').doNothing()).execute();
    }
    await context.db.updateTable('versions').set({ document_hash: root.ref }).where('id', '=', versionId).execute();
    await restart();

    // Read cold, from the old nodes.
    expect(await read(agentId)).toEqual(original);
    expect(await read(agentId, `?version_id=${versionId}`)).toEqual(original);

    // The same config again: no version, although today's encoding of it has another root hash.
    const same = okJson<AgentRead>(await send('PATCH', `/v1/convai/agents/${agentId}`, { conversation_config: original.conversation_config }));
    expect(same.version_id).toBe(versionId);
    await restart();
    const unchanged = okJson<AgentRead>(await send('PATCH', `/v1/convai/agents/${agentId}`, { conversation_config: { agent: { prompt: { prompt } } } }));
    expect(unchanged.version_id).toBe(versionId);
    expect((await read(agentId)).version_id).toBe(versionId);

    // A branch that changes an item and changes it back: merging it into main changes nothing a read
    // shows, though the merge result's root hash (today's encoding) is not main's (the old one).
    const revert = okJson<{ created_branch_id: string }>(
      await send('POST', `/v1/convai/agents/${agentId}/branches`, { parent_version_id: versionId, name: 'Revert', description: '' }),
    );
    const onRevert = `/v1/convai/agents/${agentId}?branch_id=${revert.created_branch_id}`;
    okJson(await send('PATCH', onRevert, { conversation_config: { x_items: items.map((item) => (item.n === 7 ? { ...item, n: 8 } : item)) } }));
    okJson(await send('PATCH', onRevert, { conversation_config: { x_items: items } }));
    await restart();
    const noop = await send('POST', `/v1/convai/agents/${agentId}/branches/${revert.created_branch_id}/merge?target_branch_id=${original.main_branch_id}`, {
      archive_source_branch: false,
    });
    expect(noop.statusCode, noop.body).toBe(409);
    expect(noop.json()).toMatchObject({ detail: { code: 'no_new_changes_to_merge' } });
    expect((await read(agentId)).version_id).toBe(versionId);

    // A one-line edit makes a version, and /diff from the old one names exactly that field.
    const editedPrompt = prompt.replace('Step 350:', 'Step 350 (edited):');
    const edited = okJson<AgentRead>(await send('PATCH', `/v1/convai/agents/${agentId}`, { conversation_config: { agent: { prompt: { prompt: editedPrompt } } } }));
    expect(edited.version_id).not.toBe(versionId);
    await restart();
    const diff = okJson<{ changes: { section: string; path: string }[] }>(
      await injectAs(testApp, 'GET', `/v1/convai/agents/${agentId}/diff?from_version_id=${versionId}&to_version_id=${edited.version_id}`, testApp.keys.admin),
    );
    expect(diff.changes.map(({ section, path }) => `${section}:${path}`)).toEqual(['conversation_config:agent.prompt.prompt']);

    // A branch from the old version changes one item; merging it into main keeps both changes.
    const branch = okJson<{ created_branch_id: string }>(
      await send('POST', `/v1/convai/agents/${agentId}/branches`, { parent_version_id: versionId, name: 'Items', description: '' }),
    );
    await restart();
    const changedItems = items.map((item) => (item.n === 1_234 ? { ...item, n: -1 } : item));
    okJson(await send('PATCH', `/v1/convai/agents/${agentId}?branch_id=${branch.created_branch_id}`, { conversation_config: { x_items: changedItems } }));
    await restart();
    okJson(
      await send('POST', `/v1/convai/agents/${agentId}/branches/${branch.created_branch_id}/merge?target_branch_id=${original.main_branch_id}`, {
        archive_source_branch: false,
      }),
    );
    await restart();
    const merged = await read(agentId);
    expect(merged.version_id).not.toBe(edited.version_id);
    expect(merged.conversation_config.agent.prompt.prompt).toBe(editedPrompt);
    expect(merged.conversation_config.x_items).toEqual(changedItems);
  }, 120_000);
});

/** Counts the rows and the characters of bound text of every INSERT it sees. */
function insertCounter(): { plugin: KyselyPlugin; inserts: { rows: number; characters: number }[] } {
  const inserts: { rows: number; characters: number }[] = [];
  const plugin: KyselyPlugin = {
    transformQuery({ node }): RootOperationNode {
      if (InsertQueryNode.is(node) && node.values && ValuesNode.is(node.values)) {
        const rows = node.values.values;
        let characters = 0;
        for (const row of rows) if (PrimitiveValueListNode.is(row)) for (const value of row.values) if (typeof value === 'string') characters += value.length;
        inserts.push({ rows: rows.length, characters });
      }
      return node;
    },
    transformResult: async ({ result }) => result,
  };
  return { plugin, inserts };
}

describe('the document store', () => {
  it('writes a large document in INSERTs of at most 1 MB, each row at most a node', async () => {
    // 600 distinct strings of 4,000 units: one 4 KB node each, 2.4 MB in all, under 500 rows an INSERT.
    const document = { x_texts: Array.from({ length: 600 }, (_, i) => `${i}: ${prompt}`.slice(0, 4_000)) };
    const documents = new DocumentStore();
    const prepared = await documents.prepare(document);
    const { plugin, inserts } = insertCounter();
    await documents.write(testApp.app.context.db.withPlugin(plugin), prepared);
    expect(inserts.reduce((sum, insert) => sum + insert.rows, 0)).toBe(prepared.nodes.size);
    expect(inserts.length).toBeGreaterThanOrEqual(3);
    for (const insert of inserts) expect(insert.characters).toBeLessThanOrEqual(1024 * 1024 + MAX_NODE_BYTES);
    const stored = await testApp.app.context.db.selectFrom('blobs').select(['hash', 'body']).where('hash', 'in', [...prepared.nodes.keys()].slice(0, 500)).execute();
    for (const row of stored) expect(row.body).toBe(prepared.nodes.get(row.hash));
    expect(await new DocumentStore().load(testApp.app.context.db, prepared.rootHash)).toEqual(document);
  });
});
