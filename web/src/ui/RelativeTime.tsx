import { useEffect, useState } from 'preact/hooks';

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
];
const format = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** "3 minutes ago", from `seconds`, in Unix seconds as the API sends times; the exact time on hover. */
export function RelativeTime({ seconds }: { seconds: number }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(timer);
  }, []);
  const date = new Date(seconds * 1000);
  return (
    <time dateTime={date.toISOString()} title={date.toLocaleString()}>
      {describe(seconds - now / 1000)}
    </time>
  );
}

function describe(deltaSeconds: number): string {
  for (const [unit, size] of UNITS) {
    if (Math.abs(deltaSeconds) >= size) return format.format(Math.round(deltaSeconds / size), unit);
  }
  return 'just now';
}
