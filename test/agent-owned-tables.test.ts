import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { TABLES } from '../src/db/tables.js';
import { AGENT_OWNED_TABLES, KEPT_AFTER_AGENT_DELETION } from '../src/features/agents/agent-owned-tables.js';
import { deliver, postCallBody } from './support/experiments.js';
import { injectAs, okJson, startTestApp, type TestApp } from './support/test-app.js';

// Deleting an agent removes what it owns, slice by slice (`AGENT_OWNED_TABLES`): a table with an
// `agent_id` column that is not in that list (or kept on purpose) fails here, not in production.

let testApp: TestApp;

beforeAll(async () => {
  testApp = await startTestApp();
});

afterAll(async () => {
  await testApp.close();
});

const owned = AGENT_OWNED_TABLES.flatMap((entry) => entry.tables);

describe('agent-owned tables', () => {
  it('lists every table with an agent_id column, as deleted with the agent or kept on purpose', async () => {
    const tables = (await testApp.store.db.introspection.getTables()).filter((table) => !table.name.startsWith('kysely_'));
    const withAgentId = tables.filter((table) => table.columns.some((column) => column.name === 'agent_id')).map((table) => table.name);
    expect(withAgentId.length).toBeGreaterThan(0);
    for (const name of withAgentId) {
      expect([...owned, ...KEPT_AFTER_AGENT_DELETION], `table ${name} has an agent_id column`).toContain(name);
    }
    // Each table once, and every one a real table.
    expect(new Set([...owned, ...KEPT_AFTER_AGENT_DELETION]).size).toBe(owned.length + KEPT_AFTER_AGENT_DELETION.length);
    for (const name of [...owned, ...KEPT_AFTER_AGENT_DELETION]) expect(TABLES.map((table) => table.name)).toContain(name);
  });

  it('deleting an agent leaves no row of it in any table it owns, and no one of another agent goes', async () => {
    const { admin } = testApp.keys;
    const send = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => injectAs(testApp, method, url, admin, payload);
    const createAgent = async (name: string) => {
      const { agent_id: agentId } = okJson<{ agent_id: string }>(
        await send('POST', '/v1/convai/agents/create', { name, tags: ['owned'], conversation_config: { agent: { first_message: 'Hello' } } }),
      );
      const agent = okJson<{ main_branch_id: string; version_id: string }>(await send('GET', `/v1/convai/agents/${agentId}`));
      const base = `/v1/convai/agents/${agentId}`;
      const { created_branch_id: branchId } = okJson<{ created_branch_id: string }>(
        await send('POST', `${base}/branches`, {
          parent_version_id: agent.version_id,
          name: 'Side',
          description: '',
          conversation_config: { agent: { first_message: 'Side' } },
        }),
      );
      // A published procedure (its version) and a drafted one on the side branch.
      for (const procedure of ['Published', 'Drafted']) {
        okJson(await send('POST', `${base}/branches/${branchId}/procedures`, { name: procedure, content: `${procedure} steps` }));
        if (procedure === 'Published') okJson(await send('PATCH', `${base}?branch_id=${branchId}`, {}));
      }
      const draft = { conversation_config: { agent: { first_message: 'draft' } }, platform_settings: {}, workflow: {}, name };
      okJson(await send('POST', `${base}/drafts?branch_id=${agent.main_branch_id}`, draft));
      const { created_merge_proposal_id: proposalId } = okJson<{ created_merge_proposal_id: string }>(
        await send('POST', `${base}/merge-proposals`, { source_branch_id: branchId, target_branch_id: agent.main_branch_id, title: 'Side' }),
      );
      okJson(await send('POST', `${base}/merge-proposals/${proposalId}/comments`, { body: 'A comment' }));
      okJson(await testApp.app.server.inject({
        method: 'POST',
        url: `${base}/merge-proposals/${proposalId}/reviews`,
        headers: { 'xi-api-key': testApp.keys.editor, 'content-type': 'application/json' },
        payload: JSON.stringify({ state: 'approved' }),
      }));
      okJson(
        await send('POST', `${base}/deployments`, {
          deployment_request: {
            requests: [
              { branch_id: agent.main_branch_id, deployment_strategy: { type: 'percentage', traffic_percentage: 90 } },
              { branch_id: branchId, deployment_strategy: { type: 'percentage', traffic_percentage: 10 } },
            ],
          },
        }),
      );
      // A guarded rollout, rolled back (its events and its deployments).
      const { guarded_rollout_id: rolloutId } = okJson<{ guarded_rollout_id: string }>(
        await send('POST', `${base}/guarded-rollouts`, {
          branch_id: branchId,
          steps: [{ traffic_percentage: 20, min_duration_secs: 60, min_outcomes_per_branch: 10 }],
          guard_metrics: [{ metric_key: 'call_successful', max_regression: 0.05 }],
        }),
      );
      okJson(await send('POST', `${base}/guarded-rollouts/${rolloutId}/rollback`));
      // Experiments: a metric, an exposure with a value (and so cells), a webhook delivery.
      okJson(await send('POST', `${base}/metrics`, { metric_key: 'csat', kind: 'mean', higher_is_better: true, source: { type: 'event' } }));
      okJson(await send('POST', `${base}/exposures`, { exposures: [{ conversation_id: 'c1', branch_id: branchId }] }));
      okJson(await send('POST', `${base}/outcomes`, { events: [{ conversation_id: 'c1', metric_key: 'csat', value: 4 }] }));
      const webhook = okJson<{ webhook_id: string; secret: string }>(await send('POST', '/v1/convai/outcome-webhooks', {}));
      expect(okJson(await deliver(testApp, webhook.webhook_id, webhook.secret, postCallBody(agentId, 'c2')))).toEqual({ status: 'recorded' });
      return { agentId, proposalId };
    };
    const deleted = await createAgent('Deleted');
    const kept = await createAgent('Kept');
    const rowsOf = async ({ agentId, proposalId }: { agentId: string; proposalId: string }) => {
      const counts: Record<string, number> = {};
      for (const table of owned) {
        const [column, id] = table === 'agents' ? ['id', agentId] : table.startsWith('merge_proposal_') ? ['proposal_id', proposalId] : ['agent_id', agentId];
        const { count } = await testApp.store.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('count'))
          .where(column as never, '=', id as never)
          .executeTakeFirstOrThrow();
        counts[table] = Number(count);
      }
      return counts;
    };
    // Every owned table holds rows of both agents before the delete: the check below can fail.
    for (const agent of [deleted, kept]) {
      for (const [table, count] of Object.entries(await rowsOf(agent))) expect(count, `${table} before the delete`).toBeGreaterThan(0);
    }
    const keptBefore = await rowsOf(kept);

    expect((await send('DELETE', `/v1/convai/agents/${deleted.agentId}`)).statusCode).toBe(204);

    for (const [table, count] of Object.entries(await rowsOf(deleted))) expect(count, `${table} after the delete`).toBe(0);
    expect(await rowsOf(kept)).toEqual(keptBefore);
  });
});
