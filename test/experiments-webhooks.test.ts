import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { checkSignature, newWebhookSecret, signPayload, SIGNATURE_TOLERANCE_SECS } from '../src/features/experiments/webhook-signature.js';
import { snapshotDatabase } from './support/db-snapshot.js';
import { deliver, postCallBody } from './support/experiments.js';
import { createAgent } from './support/fixtures.js';
import { expectApiError, expectClean } from './support/route-requests.js';
import { injectAs, okJson, startTestApp, type TestApp } from './support/test-app.js';

// Issue 20: upstream's post-call webhook, signed, as the source of outcomes.

describe('the signature (ElevenLabs-Signature: t=…,v0=HMAC-SHA256(secret, "t.body"))', () => {
  const secret = newWebhookSecret();
  const body = Buffer.from(JSON.stringify(postCallBody('agent_x', 'conv_1')));
  const now = 1_767_225_600;

  it('a good signature passes, within 30 minutes either way', () => {
    expect(checkSignature(signPayload(secret, now, body), secret, body, now)).toBeUndefined();
    expect(checkSignature(signPayload(secret, now - SIGNATURE_TOLERANCE_SECS, body), secret, body, now)).toBeUndefined();
    expect(checkSignature(signPayload(secret, now + SIGNATURE_TOLERANCE_SECS, body), secret, body, now)).toBeUndefined();
  });

  it('another secret: mismatch', () => {
    expect(checkSignature(signPayload(newWebhookSecret(), now, body), secret, body, now)).toBe('mismatch');
  });

  it('stale by 31 minutes, or 31 minutes in the future: stale', () => {
    expect(checkSignature(signPayload(secret, now - 31 * 60, body), secret, body, now)).toBe('stale');
    expect(checkSignature(signPayload(secret, now + 31 * 60, body), secret, body, now)).toBe('stale');
  });

  it('missing or malformed header', () => {
    expect(checkSignature(undefined, secret, body, now)).toBe('missing');
    expect(checkSignature('', secret, body, now)).toBe('missing');
    const good = signPayload(secret, now, body);
    const mac = good.split('v0=')[1];
    for (const header of [`t=${now}`, `v0=${mac}`, `t=abc,v0=${mac}`, `t=${now},v0=xyz`, `t=${now},v0=${mac.slice(2)}`, 'garbage', `t=${now},t=${now},v0=${mac}`, `t=${now};v0=${mac}`]) {
      expect(checkSignature(header, secret, body, now), header).toBe('malformed');
    }
  });

  it('the body changed by one byte (anywhere), or the timestamp changed: mismatch', () => {
    const header = signPayload(secret, now, body);
    fc.assert(
      fc.property(fc.nat({ max: body.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, flip) => {
        const changed = Buffer.from(body);
        changed[at] ^= flip;
        expect(checkSignature(header, secret, changed, now)).toBe('mismatch');
      }),
      { numRuns: 200 },
    );
    const mac = header.split('v0=')[1];
    expect(checkSignature(`t=${now + 1},v0=${mac}`, secret, body, now)).toBe('mismatch');
  });

  it('any of several v0 values may match (secret rotation); the header order does not matter', () => {
    const mac = signPayload(secret, now, body).split('v0=')[1];
    expect(checkSignature(`v0=${'0'.repeat(64)},t=${now},v0=${mac}`, secret, body, now)).toBeUndefined();
  });
});

describe('the webhook endpoint', () => {
  let testApp: TestApp;
  beforeAll(async () => {
    testApp = await startTestApp();
  });
  afterAll(() => testApp.close());

  const createWebhook = async (key = testApp.keys.admin) =>
    okJson<{ webhook_id: string; secret: string; url: string; name: string; created_at_unix_secs: number }>(await injectAs(testApp, 'POST', '/v1/convai/outcome-webhooks', key, { name: 'Calls' }));

  const valuesOf = (agentId: string) =>
    testApp.store.db.selectFrom('outcome_values').select(['unit_id', 'metric_key', 'value']).where('agent_id', '=', agentId).orderBy('unit_id').orderBy('metric_key').execute();

  it('is created with a secret shown once, listed without it, and its URL is absolute', async () => {
    const created = await createWebhook();
    expect(created.webhook_id).toMatch(/^owh_[0-9a-z]{28}$/);
    expect(created.secret).toMatch(/^whsec_[0-9a-f]{64}$/);
    // From the request's Host (inject sends `localhost:80`) when PUBLIC_URL is not set.
    expect(created.url).toBe(`http://localhost:80/v1/convai/outcome-webhooks/${created.webhook_id}`);
    const listed = okJson<{ webhooks: Record<string, unknown>[] }>(await injectAs(testApp, 'GET', '/v1/convai/outcome-webhooks', testApp.keys.admin));
    const mine = listed.webhooks.find((webhook) => webhook.webhook_id === created.webhook_id);
    expect(mine).toEqual({ webhook_id: created.webhook_id, name: 'Calls', url: created.url, created_at_unix_secs: created.created_at_unix_secs, last_received_at_unix_secs: null });
    expect(JSON.stringify(listed)).not.toContain(created.secret);
    // Another workspace sees none of ours, and cannot delete it.
    const theirs = okJson<{ webhooks: { webhook_id: string }[] }>(await injectAs(testApp, 'GET', '/v1/convai/outcome-webhooks', testApp.foreignKey));
    expect(theirs.webhooks.map((webhook) => webhook.webhook_id)).not.toContain(created.webhook_id);
    expectApiError(await injectAs(testApp, 'DELETE', `/v1/convai/outcome-webhooks/${created.webhook_id}`, testApp.foreignKey), 404, 'not_found');
    // Audited, without the secret.
    const audit = await testApp.store.db.selectFrom('audit_events').selectAll().where('resource_id', '=', created.webhook_id).execute();
    expect(audit.map((event) => event.action)).toEqual(['outcome_webhook.create']);
    expect(JSON.stringify(audit)).not.toContain(created.secret);
  });

  it('PUBLIC_URL, when set, is the base of the webhook URL', async () => {
    const other = await startTestApp({ config: { publicUrl: 'https://calls.example.test/branchwise' } });
    try {
      const created = okJson<{ webhook_id: string; url: string }>(await injectAs(other, 'POST', '/v1/convai/outcome-webhooks', other.keys.admin, {}));
      expect(created.url).toBe(`https://calls.example.test/branchwise/v1/convai/outcome-webhooks/${created.webhook_id}`);
    } finally {
      await other.close();
    }
  });

  it('a signed delivery records the built-in metrics and those defined from it, once per conversation', async () => {
    const { agentId } = await createAgent(testApp);
    const webhook = await createWebhook();
    okJson(await injectAs(testApp, 'POST', `/v1/convai/agents/${agentId}/metrics`, testApp.keys.admin, { metric_key: 'resolved', kind: 'binary', higher_is_better: true, source: { type: 'evaluation_criterion', id: 'resolved' } }));
    okJson(await injectAs(testApp, 'POST', `/v1/convai/agents/${agentId}/metrics`, testApp.keys.admin, { metric_key: 'cost', kind: 'mean', higher_is_better: false, source: { type: 'metadata', id: 'cost' } }));
    const body = postCallBody(agentId, 'conv_a', { successful: 'failure', durationSecs: 95, criteria: { resolved: 'success', polite: 'unknown' }, data: { nps: '9' } });
    expect(okJson(await deliver(testApp, webhook.webhook_id, webhook.secret, body))).toEqual({ status: 'recorded' });
    expect(okJson(await deliver(testApp, webhook.webhook_id, webhook.secret, body))).toEqual({ status: 'duplicate' });
    expect(await valuesOf(agentId)).toEqual([
      { unit_id: 'conv_a', metric_key: 'call_duration_secs', value: 95 },
      { unit_id: 'conv_a', metric_key: 'call_successful', value: 0 },
      { unit_id: 'conv_a', metric_key: 'cost', value: 120 },
      { unit_id: 'conv_a', metric_key: 'resolved', value: 1 },
    ]);
    // `unknown` is no value.
    okJson(await deliver(testApp, webhook.webhook_id, webhook.secret, postCallBody(agentId, 'conv_b', { successful: 'unknown', criteria: { resolved: 'unknown' } })));
    expect((await valuesOf(agentId)).filter((row) => row.unit_id === 'conv_b').map((row) => row.metric_key)).toEqual(['call_duration_secs', 'cost']);
    // A metric defined later is filled from the deliveries received.
    okJson(await injectAs(testApp, 'POST', `/v1/convai/agents/${agentId}/metrics`, testApp.keys.admin, { metric_key: 'nps', kind: 'mean', higher_is_better: true, source: { type: 'data_collection', id: 'nps' } }));
    expect((await valuesOf(agentId)).filter((row) => row.metric_key === 'nps')).toEqual([{ unit_id: 'conv_a', metric_key: 'nps', value: 9 }]);
    const listed = okJson<{ webhooks: { webhook_id: string; last_received_at_unix_secs: number | null }[] }>(await injectAs(testApp, 'GET', '/v1/convai/outcome-webhooks', testApp.keys.admin));
    expect(listed.webhooks.find((one) => one.webhook_id === webhook.webhook_id)?.last_received_at_unix_secs).toBeGreaterThan(0);
  });

  it('unsigned, stale, wrongly signed, unknown or deleted webhook: 401 and nothing stored', async () => {
    const { agentId } = await createAgent(testApp);
    const webhook = await createWebhook();
    const other = await createWebhook();
    const body = JSON.stringify(postCallBody(agentId, 'conv_refused'));
    const now = Math.floor(Date.now() / 1000);
    const before = await snapshotDatabase(testApp.store.db);
    const refusals = [
      await deliver(testApp, webhook.webhook_id, webhook.secret, body, { signature: null }),
      await deliver(testApp, webhook.webhook_id, webhook.secret, body, { signature: 't=1,v0=zz' }),
      await deliver(testApp, webhook.webhook_id, webhook.secret, body, { timestampSecs: now - 31 * 60 }),
      await deliver(testApp, webhook.webhook_id, webhook.secret, body, { timestampSecs: now + 31 * 60 }),
      await deliver(testApp, webhook.webhook_id, other.secret, body),
      await deliver(testApp, webhook.webhook_id, webhook.secret, body, { signature: signPayload(webhook.secret, now, `${body} `) }),
      await deliver(testApp, 'owh_0000000000000000000000000z', webhook.secret, body),
      // Malformed JSON, signed or not, is refused for its signature first.
      await deliver(testApp, webhook.webhook_id, other.secret, '{"type": '),
    ];
    for (const response of refusals) expectApiError(response, 401, 'authentication_error', 'invalid_signature');
    // Signed, the malformed body is a 422, as anywhere.
    expect((await deliver(testApp, webhook.webhook_id, webhook.secret, '{"type": ')).statusCode).toBe(422);
    expect(await snapshotDatabase(testApp.store.db)).toBe(before);
    // A deleted webhook refuses what it accepted before.
    okJson(await injectAs(testApp, 'DELETE', `/v1/convai/outcome-webhooks/${webhook.webhook_id}`, testApp.keys.admin));
    expectApiError(await deliver(testApp, webhook.webhook_id, webhook.secret, body), 401, 'authentication_error', 'invalid_signature');
    expect(await valuesOf(agentId)).toEqual([]);
  });

  it("another type, or an agent not of the webhook's workspace: 200 and nothing stored", async () => {
    const ours = await createAgent(testApp);
    const theirs = await createAgent(testApp, { key: testApp.foreignKey });
    const webhook = await createWebhook();
    const before = await snapshotDatabase(testApp.store.db);
    const audio = { ...postCallBody(ours.agentId, 'conv_audio'), type: 'post_call_audio' };
    expect(okJson(await deliver(testApp, webhook.webhook_id, webhook.secret, audio))).toEqual({ status: 'ignored' });
    expect(okJson(await deliver(testApp, webhook.webhook_id, webhook.secret, postCallBody(theirs.agentId, 'conv_x')))).toEqual({ status: 'ignored' });
    expect(okJson(await deliver(testApp, webhook.webhook_id, webhook.secret, postCallBody('agent_0000000000000000000000000z', 'conv_x')))).toEqual({ status: 'ignored' });
    expect(await snapshotDatabase(testApp.store.db)).toBe(before);
    const metrics = await testApp.app.metrics.render();
    expect(metrics).toMatch(/branchwise_outcome_webhook_deliveries_total\{result="unknown_agent"\} [1-9]/);
  });

  it('signed bodies of any shape: never a 5xx; a refusal stores nothing', async () => {
    const { agentId } = await createAgent(testApp);
    const webhook = await createWebhook();
    const data = fc.record({
      agent_id: fc.oneof(fc.constant(agentId), fc.string(), fc.integer()),
      conversation_id: fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.integer(), fc.constant(null)),
      analysis: fc.oneof(fc.jsonValue(), fc.record({ call_successful: fc.oneof(fc.constantFrom('success', 'failure', 'unknown'), fc.jsonValue()), evaluation_criteria_results: fc.jsonValue() })),
      metadata: fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.oneof(fc.double(), fc.integer(), fc.string()))),
    });
    const body = fc.oneof(fc.record({ type: fc.oneof(fc.constant('post_call_transcription'), fc.string()), data, event_timestamp: fc.oneof(fc.integer({ min: 0, max: 2 ** 31 }), fc.double()) }), fc.jsonValue());
    await fc.assert(
      fc.asyncProperty(body, async (payload) => {
        const before = await snapshotDatabase(testApp.store.db);
        const response = await deliver(testApp, webhook.webhook_id, webhook.secret, JSON.stringify(payload));
        expectClean(response);
        if (response.statusCode >= 400) expect(await snapshotDatabase(testApp.store.db)).toBe(before);
      }),
      { numRuns: 60 },
    );
  });
});
