import type { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ExperimentResults as Results } from '../../src/features/experiments/results.service.js';
import { apiCall, deliverOverHttp, inBatches, postCallBody } from '../support/experiments.js';
import { patient } from '../support/patience.js';
import { listen, sdk, startTestApp, type TestApp } from '../support/test-app.js';

// Issue 20, end to end through a listening server: conversations routed 50/50 with the official
// SDK, upstream-format post-call webhooks signed as ElevenLabs signs them, one branch succeeding
// more, and the results read back.

let testApp: TestApp;
let baseUrl: string;
let editor: ElevenLabsClient;

beforeAll(async () => {
  testApp = await startTestApp({ config: { recordExposures: true } });
  baseUrl = await listen(testApp);
  editor = sdk(baseUrl, testApp.keys.editor);
});
afterAll(() => testApp.close());


const api = <T>(method: string, path: string, key: string, body?: unknown) => apiCall<T>(baseUrl, method, path, key, body);

describe('an experiment, end to end', () => {
  it('2,000 conversations routed 50/50, signed webhooks where the candidate succeeds more: results call it better, without SRM', async () => {
    const { agentId } = await editor.conversationalAi.agents.create({ name: 'Experiment', conversationConfig: { agent: { firstMessage: 'main' } } });
    const main = await editor.conversationalAi.agents.get(agentId);
    const { createdBranchId: candidate } = await editor.conversationalAi.agents.branches.create(agentId, {
      parentVersionId: main.versionId!,
      name: 'candidate',
      description: '',
      conversationConfig: { agent: { firstMessage: 'candidate' } },
    });
    const request = (branchId: string) => ({ branchId, deploymentStrategy: { type: 'percentage' as const, trafficPercentage: 50 } });
    await editor.conversationalAi.agents.deployments.create(agentId, { deploymentRequest: { requests: [request(main.mainBranchId!), request(candidate)] } });

    // Route: what a voice runtime does once per incoming conversation (README, "Serving conversations").
    const conversations = Array.from({ length: 2_000 }, (_, i) => `conv_e2e_${i}`);
    const servedBy = new Map<string, string>();
    await inBatches(conversations, 50, async (conversationId) => {
      const agent = await editor.conversationalAi.agents.get(agentId, {}, { queryParams: { conversation_id: conversationId } });
      servedBy.set(conversationId, agent.branchId!);
    });
    const perBranch = [...servedBy.values()].reduce((counts, branch) => counts.set(branch, (counts.get(branch) ?? 0) + 1), new Map<string, number>());
    expect(perBranch.size).toBe(2);

    // The workspace's webhook (admin), then one signed post-call delivery per conversation:
    // the candidate succeeds 70% of the time, main 50% (a seeded sequence, so the run is the same every time).
    const webhook = await api<{ webhook_id: string; url: string; secret: string }>('POST', '/v1/convai/outcome-webhooks', testApp.keys.admin, { name: 'e2e' });
    expect(webhook.url).toBe(`${baseUrl}/v1/convai/outcome-webhooks/${webhook.webhook_id}`);
    let seed = 20;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    // Durations are the same on both branches by construction (each branch cycles through 60..119 s
    // in the order its conversations arrive), so no draw of the routing can make them differ.
    const arrivals = new Map<string, number>();
    const outcomes = conversations.map((conversationId) => {
      const branchId = servedBy.get(conversationId)!;
      const arrival = arrivals.get(branchId) ?? 0;
      arrivals.set(branchId, arrival + 1);
      return { conversationId, success: random() < (branchId === candidate ? 0.7 : 0.5), durationSecs: 60 + (arrival % 60) };
    });
    const statuses = await inBatches(outcomes, 25, async ({ conversationId, success, durationSecs }) => {
      const body = JSON.stringify(postCallBody(agentId, conversationId, { successful: success ? 'success' : 'failure', durationSecs }));
      const response = await deliverOverHttp(webhook.url, webhook.secret, body);
      return ((await response.json()) as { status: string }).status;
    });
    expect(new Set(statuses)).toEqual(new Set(['recorded']));

    // Exposures are written within a flush interval of their reads.
    const deadline = Date.now() + patient(5_000);
    let results: Results;
    for (;;) {
      results = await api<Results>('GET', `/v1/convai/agents/${agentId}/experiment-results`, testApp.keys.viewer);
      const exposures = results.branches.reduce((total, branch) => total + branch.exposures, 0);
      if (exposures === 2_000 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(results.baseline_branch_id).toBe(main.mainBranchId);
    expect(results.branches.map((branch) => [branch.branch_id, branch.exposures, branch.expected_share, branch.outcome_coverage])).toEqual([
      [main.mainBranchId, perBranch.get(main.mainBranchId!), 0.5, 1],
      [candidate, perBranch.get(candidate), 0.5, 1],
    ]);
    expect(results.sample_ratio_mismatch.mismatch).toBe(false);
    expect(results.sample_ratio_mismatch.observed).toEqual(Object.fromEntries(perBranch));

    const successful = results.metrics.find((metric) => metric.metric_key === 'call_successful')!;
    const rate = (branchId: string) => {
      const routed = outcomes.filter((outcome) => servedBy.get(outcome.conversationId) === branchId);
      return routed.filter((outcome) => outcome.success).length / routed.length;
    };
    for (const arm of successful.branches) {
      expect(arm.n).toBe(perBranch.get(arm.branch_id));
      // At a constant 50/50 split the weighted rate is the plain one.
      expect(arm.estimate).toBeCloseTo(rate(arm.branch_id), 9);
      expect(arm.interval!.lower).toBeLessThan(arm.estimate!);
      expect(arm.interval!.upper).toBeGreaterThan(arm.estimate!);
    }
    const [comparison] = successful.comparisons;
    expect(comparison.branch_id).toBe(candidate);
    expect(comparison.difference).toBeCloseTo(rate(candidate) - rate(main.mainBranchId!), 9);
    expect(comparison.interval!.lower).toBeGreaterThan(0);
    expect(comparison.decision).toBe('better');
    // Duration did not differ between the branches: no call either way.
    const duration = results.metrics.find((metric) => metric.metric_key === 'call_duration_secs')!;
    expect(duration.comparisons[0].decision).toBe('inconclusive');

    // The candidate as baseline: main is the worse one.
    const turned = await api<Results>('GET', `/v1/convai/agents/${agentId}/experiment-results?baseline_branch_id=${candidate}&alpha=0.01`, testApp.keys.viewer);
    expect(turned.metrics.find((metric) => metric.metric_key === 'call_successful')!.comparisons[0].decision).toBe('worse');
  }, 120_000); // 2,000 routed reads and 2,000 signed deliveries: 15–20 s alone, over 30 s once in a loaded full run
});
