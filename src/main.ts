import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { type App, buildApp } from './app.js';
import { type Config, loadConfig } from './config.js';
import { openStore } from './db/connect.js';

/** How long in-flight requests may take to finish after SIGTERM before their connections are closed. */
const SHUTDOWN_DEADLINE_MS = 10_000;

/** Starts the server and returns it once it listens; SIGTERM/SIGINT drain and close it. */
export async function serve(config: Config = loadConfig()): Promise<App> {
  const store = await openStore(config);
  const app = await buildApp({ config, store });
  const created = await app.workspaces.bootstrap(config.bootstrapApiKey);
  if (created && !config.bootstrapApiKey) {
    const keyFile = path.join(config.dataDir, 'admin-api-key');
    writeFileSync(keyFile, `${created.key}\n`, { mode: 0o600 });
    // Shown once, on the console only (never through the logger): the store keeps only its hash.
    process.stdout.write(
      `\nCreated workspace "default" with user "admin".\nAdmin API key (shown once, also written to ${keyFile}):\n\n  ${created.key}\n\n`,
    );
  } else if (created) {
    process.stdout.write('Created workspace "default" with user "admin", keyed by BRANCHWISE_BOOTSTRAP_API_KEY.\n');
  } else if (config.bootstrapApiKey && !(await app.workspaces.authenticate(config.bootstrapApiKey))) {
    // The store had data already, so the variable keyed nothing, and it is no key of this store:
    // whoever set it would otherwise meet a bare 401 (issue 16).
    app.server.log.warn(
      'BRANCHWISE_BOOTSTRAP_API_KEY is set but was not used: it keys only the first start on an empty store, and this ' +
        'store already has data (and no such key). Use the key printed at the first start (DATA_DIR/admin-api-key), or ' +
        'create one: node bin/branchwise.mjs keys create --user NAME --role admin',
    );
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.server.log.info({ signal }, 'shutting down: draining in-flight requests');
    // close() closes the connections idle at this moment; a keep-alive connection whose request
    // finishes during the drain would otherwise stay open until its keep-alive timeout.
    const http = app.server.server;
    const idle = setInterval(() => http.closeIdleConnections(), 100);
    const deadline = setTimeout(() => http.closeAllConnections(), SHUTDOWN_DEADLINE_MS);
    try {
      await app.server.close();
      await store.close();
    } finally {
      clearInterval(idle);
      clearTimeout(deadline);
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  await app.server.listen({ host: config.host, port: config.port });
  // The address it took (PORT=0 asks for any free port), on the console whatever the log level.
  const address = app.server.server.address();
  if (address && typeof address === 'object') {
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    process.stdout.write(`Listening on http://${host}:${address.port}/ (the dashboard; the API under /v1)\n`);
  }
  // Rate limiting is off unless configured (the official SDK retries 429s): say which, at start.
  app.server.log.info({ rateLimit: config.rateLimit ?? 'off', httpTimeouts: config.httpTimeouts }, 'request limits');
  return app;
}
