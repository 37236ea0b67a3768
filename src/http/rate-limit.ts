import type { IncomingMessage } from 'node:http';

import type { RateLimit } from '../config.js';
import { ApiError } from '../errors.js';

/**
 * Upstream's 429 (contract §1.4: `rate_limit_error`, `rate_limit_exceeded`). The error handler adds
 * `Retry-After`, which the official SDK waits for before it retries.
 */
export class RateLimitedError extends ApiError {
  constructor(readonly retryAfterSeconds: number) {
    super(
      429,
      'rate_limit_error',
      'rate_limit_exceeded',
      `Too many requests with this API key; retry after ${retryAfterSeconds} second${retryAfterSeconds === 1 ? '' : 's'}.`,
    );
  }
}

/** Buckets kept before full (idle) ones are dropped; only valid keys get one, so this is rarely reached. */
const MAX_BUCKETS = 10_000;
/** Float error in refills must not turn a due request away. */
const EPSILON = 1e-9;

interface Bucket {
  tokens: number;
  atMs: number;
}

/** The verdict a request already got, so the fast path and the full route spend one token, not two. */
const VERDICT = Symbol('branchwise.rateLimitVerdict');
type Judged = IncomingMessage & { [VERDICT]?: number };

/**
 * A token bucket per API key, in this process. Both the raw `node:http` fast path and the Fastify
 * routes call `check`, which is why this is a small module and not `@fastify/rate-limit`: that
 * plugin runs as a Fastify hook and never sees the requests the fast path answers. With N processes
 * behind a load balancer the effective limit is N times this one (no shared store).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** Requests turned away (for metrics). */
  rejected = 0;

  constructor(
    readonly limit: RateLimit,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Spends one request of the caller's key (authenticated already: an invalid key is refused before
   * it is limited), named by its `credentialId` (the key's hash). Returns 0 when the request may go
   * on, otherwise the whole seconds to wait. A request judged once (on the fast path, then handed to
   * the route) is not charged twice.
   */
  check(request: IncomingMessage, credentialId: string): number {
    const judged = request as Judged;
    const earlier = judged[VERDICT];
    if (earlier !== undefined) return earlier;
    const verdict = this.take(credentialId);
    judged[VERDICT] = verdict;
    return verdict;
  }

  /** One token from the bucket of `keyId` (the key's hash: never the key itself). */
  take(keyId: string): number {
    const { perSecond, burst } = this.limit;
    const at = this.now();
    let bucket = this.buckets.get(keyId);
    if (bucket === undefined) {
      if (this.buckets.size >= MAX_BUCKETS) this.dropFull(at);
      bucket = { tokens: burst, atMs: at };
      this.buckets.set(keyId, bucket);
    } else if (at > bucket.atMs) {
      bucket.tokens = Math.min(burst, bucket.tokens + ((at - bucket.atMs) / 1000) * perSecond);
      bucket.atMs = at;
    }
    if (bucket.tokens >= 1 - EPSILON) {
      bucket.tokens -= 1;
      return 0;
    }
    this.rejected++;
    return Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond));
  }

  /** A full bucket is the same as no bucket. */
  private dropFull(at: number): void {
    const { perSecond, burst } = this.limit;
    for (const [keyId, bucket] of this.buckets) {
      if (bucket.tokens + ((at - bucket.atMs) / 1000) * perSecond >= burst) this.buckets.delete(keyId);
    }
    // Every key busy at once: start over rather than grow without bound.
    if (this.buckets.size >= MAX_BUCKETS) this.buckets.clear();
  }
}
