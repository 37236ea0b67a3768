/** Debian's chromium, which the dashboard's browser tests drive (`.ci/run` installs it). */
export const CHROMIUM = '/usr/bin/chromium';

/** How the browser tests launch it: headless, and quiet (no update checks, sync or other background traffic). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
