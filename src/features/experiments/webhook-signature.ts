import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

// Upstream's post-call webhook signature: `ElevenLabs-Signature: t=<unix secs>,v0=<hex
// HMAC-SHA256(secret, "<t>.<raw body>")>`; the official SDK's verifier rejects a timestamp older
// than 30 minutes. We refuse one that far in the future too (a clock that far ahead is a replay
// waiting to happen).

export const SIGNATURE_HEADER = 'elevenlabs-signature';
export const SIGNATURE_TOLERANCE_SECS = 30 * 60;

export type SignatureProblem = 'missing' | 'malformed' | 'stale' | 'mismatch';

/** A new signing secret: `whsec_` and 32 random bytes in hex, as upstream's look. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('hex')}`;
}

export function signPayload(secret: string, timestampSecs: number, rawBody: Buffer | string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSecs}.`).update(rawBody).digest('hex');
  return `t=${timestampSecs},v0=${mac}`;
}

/**
 * Whether `header` signs `rawBody` with `secret` within the tolerance of `nowSecs`: undefined when
 * it does, else what is wrong. The MAC is compared in constant time; any `v0` may match (upstream
 * may send several while it rotates secrets).
 */
export function checkSignature(header: string | undefined, secret: string, rawBody: Buffer, nowSecs: number): SignatureProblem | undefined {
  if (header === undefined || header === '') return 'missing';
  let timestamp: number | undefined;
  const macs: Buffer[] = [];
  for (const part of header.split(',')) {
    const equals = part.indexOf('=');
    if (equals < 0) return 'malformed';
    const name = part.slice(0, equals).trim();
    const value = part.slice(equals + 1).trim();
    if (name === 't') {
      if (!/^\d{1,12}$/.test(value) || timestamp !== undefined) return 'malformed';
      timestamp = Number(value);
    } else if (name === 'v0') {
      if (!/^[0-9a-f]{64}$/i.test(value)) return 'malformed';
      macs.push(Buffer.from(value, 'hex'));
    }
  }
  if (timestamp === undefined || macs.length === 0) return 'malformed';
  if (Math.abs(nowSecs - timestamp) > SIGNATURE_TOLERANCE_SECS) return 'stale';
  const expected = createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest();
  let matched = false;
  // Every candidate is compared, so the time taken does not say which one matched.
  for (const mac of macs) matched = timingSafeEqual(mac, expected) || matched;
  return matched ? undefined : 'mismatch';
}
