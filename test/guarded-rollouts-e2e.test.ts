import type { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { apiCall, deliverOverHttp, inBatches, postCallBody } from './support/experiments.js';
import { patient } from './support/patience.js';
import { waitFor } from './support/server-process.js';
import { listen, sdk, startTestApp, type TestApp } from './support/test-app.js';

// Issue 20's proof, end to end through a listening server: a guarded rollout of a worse branch is
// rolled back by itself. Conversations are routed with the official SDK (recording exposures),
// upstream-format post-call webhooks signed as ElevenLabs signs them report the candidate failing
// more, the real results service computes the difference, and the evaluator (on its timer, as
// the lease holder) rolls back; the deployment history shows it and why.

let testApp: TestApp;
let baseUrl: string;
let editor: ElevenLabsClient;

beforeAll(async () => {
  testApp = await startTestApp({ config: { recordExposures: true, experimentEvaluationIntervalMs: 100 } });
  baseUrl = await listen(testApp);
  editor = sdk(baseUrl, testApp.keys.editor);
});
afterAll(() => testApp.close());

const api = <T>(method: string, path: string, key: string, body?: unknown) => apiCall<T>(baseUrl, method, path, key, body);

interface Rollout {
  status: string;
  current_step: number;
  events: {
    type: string;
    actor_kind: string;
    deployment_id?: string;
    reason: string;
    numbers: {
      sample_ratio_mismatch: { mismatch: boolean; e_value: number };
      guard_metrics: { metric_key: string; n: Record<string, number>; difference: number | null; interval: { lower: number; upper: number } | null; decision: string; regressed: boolean }[];
    } | null;
  }[];
}

describe('a guarded rollout of a worse branch, end to end', () => {
  it('is rolled back by itself to the split from before, and the deployment history shows it', async () => {
    const { agentId } = await editor.conversationalAi.agents.create({ name: 'Guarded', conversationConfig: { agent: { firstMessage: 'main' } } });
    const main = await editor.conversationalAi.agents.get(agentId);
    const mainId = main.mainBranchId!;
    const { createdBranchId: candidate } = await editor.conversationalAi.agents.branches.create(agentId, {
      parentVersionId: main.versionId!,
      name: 'worse',
      description: '',
      conversationConfig: { agent: { firstMessage: 'candidate' } },
    });
    const [before] = (await editor.conversationalAi.agents.deployments.list(agentId)).results;

    // Half the traffic at once; the step would need far more time and values to advance.
    const started = await api<{ guarded_rollout_id: string; deployment_id: string }>('POST', `/v1/convai/agents/${agentId}/guarded-rollouts`, testApp.keys.editor, {
      branch_id: candidate,
      steps: [
        { traffic_percentage: 50, min_duration_secs: 86_400, min_outcomes_per_branch: 100_000 },
        { traffic_percentage: 100, min_duration_secs: 86_400, min_outcomes_per_branch: 100_000 },
      ],
      guard_metrics: [{ metric_key: 'call_successful', max_regression: 0.05 }],
      alpha: 0.05,
    });
    const id = started.guarded_rollout_id;

    // Route 800 conversations (each records its exposure), then one signed post-call webhook per
    // conversation: main succeeds 75% of the time, the candidate 35% (a seeded sequence).
    const conversations = Array.from({ length: 800 }, (_, i) => `conv_guarded_${i}`);
    const servedBy = new Map<string, string>();
    await inBatches(conversations, 50, async (conversationId) => {
      const agent = await editor.conversationalAi.agents.get(agentId, {}, { queryParams: { conversation_id: conversationId } });
      servedBy.set(conversationId, agent.branchId!);
    });
    expect(new Set(servedBy.values())).toEqual(new Set([mainId, candidate]));
    const webhook = await api<{ webhook_id: string; url: string; secret: string }>('POST', '/v1/convai/outcome-webhooks', testApp.keys.admin, { name: 'guarded' });
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    await inBatches(conversations, 25, async (conversationId) => {
      const success = random() < (servedBy.get(conversationId) === candidate ? 0.35 : 0.75);
      const body = JSON.stringify(postCallBody(agentId, conversationId, { successful: success ? 'success' : 'failure' }));
      const response = await deliverOverHttp(webhook.url, webhook.secret, body);
      expect(response.status).toBe(200);
    });

    // No one acts: the evaluator's timer (every 100 ms here) finds the regression.
    let rollout: Rollout | undefined;
    await waitFor(
      async () => (rollout = await api<Rollout>('GET', `/v1/convai/agents/${agentId}/guarded-rollouts/${id}`, testApp.keys.viewer)).status !== 'running',
      'the evaluator to roll the rollout back',
      patient(30_000),
    );
    expect(rollout!.status).toBe('rolled_back');
    const last = rollout!.events.at(-1)!;
    expect(last).toMatchObject({ type: 'rolled_back', actor_kind: 'system' });
    expect(last.reason).toContain('call_successful regressed beyond 0.05');
    const guard = last.numbers!.guard_metrics[0];
    expect(guard).toMatchObject({ metric_key: 'call_successful', decision: 'worse', regressed: true });
    expect(guard.interval!.upper).toBeLessThan(-0.05);
    expect(guard.n[candidate]).toBeGreaterThan(0);
    expect(guard.n[mainId]).toBeGreaterThan(0);
    expect(last.numbers!.sample_ratio_mismatch.mismatch).toBe(false);

    // The history, through the official SDK: the rollback is the active deployment, with main at
    // 100% again, after the rollout's step; both carry the rollout's id and why.
    const history = (await editor.conversationalAi.agents.deployments.list(agentId)).results;
    expect(history.map((item) => item.id)).toEqual([last.deployment_id, started.deployment_id, before.id]);
    // The SDK keeps the extension fields as they are (it passes unknown keys through).
    const [rollback, step] = history as unknown as (Record<string, unknown> & { reason: string })[];
    expect(rollback).toMatchObject({ isActive: true, trafficPercentageBranchIdMap: { [mainId]: 100 }, source: 'manual', guarded_rollout_id: id });
    expect(rollback.reason).toContain('rolled back: call_successful regressed');
    expect(step).toMatchObject({ isActive: false, trafficPercentageBranchIdMap: { [mainId]: 50, [candidate]: 50 }, guarded_rollout_id: id });

    // Routing follows: every conversation is main's again.
    for (const conversationId of conversations.slice(0, 40)) {
      const agent = await editor.conversationalAi.agents.get(agentId, {}, { queryParams: { conversation_id: conversationId } });
      expect(agent.branchId).toBe(mainId);
    }
  });
});
