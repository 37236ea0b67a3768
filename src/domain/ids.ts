import { randomBytes } from 'node:crypto';

// Lowercase base-32 without i, l, o, u, as upstream's ids look (contract §1.2).
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const TIME_CHARS = 10; // 50 bits of milliseconds: ordered until the year 37,000
const RANDOM_CHARS = 18; // 90 bits

export type IdPrefix = 'agent_' | 'agtbrch_' | 'agtvrsn_' | 'agtmprop_' | 'agtdpl_' | 'agtmpcmt_' | 'agtprc_' | 'agtprcv_' | 'user_' | 'ws_' | 'key_' | 'auditevt_' | 'owh_' | 'agtgrol_';

let lastTime = 0;
let lastRandom: number[] = [];

/**
 * A new id: prefix + 28 characters, time-ordered. Ids made in the same millisecond by this
 * process are still strictly increasing (the random part is incremented, as ULID does).
 */
export function newId(prefix: IdPrefix, now = Date.now()): string {
  let random: number[];
  now = Math.floor(now);
  if (now <= lastTime && lastRandom.length > 0) {
    now = lastTime;
    random = increment(lastRandom);
  } else {
    random = [...randomBytes(RANDOM_CHARS)].map((byte) => byte & 31);
  }
  lastTime = now;
  lastRandom = random;

  let time = '';
  let rest = now;
  for (let i = 0; i < TIME_CHARS; i++) {
    time = ALPHABET[rest % 32] + time;
    rest = Math.floor(rest / 32);
  }
  return prefix + time + random.map((digit) => ALPHABET[digit]).join('');
}

function increment(digits: number[]): number[] {
  const next = [...digits];
  for (let i = next.length - 1; i >= 0; i--) {
    if (next[i] < 31) {
      next[i]++;
      return next;
    }
    next[i] = 0;
  }
  return next;
}
