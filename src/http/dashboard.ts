import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

// The dashboard (web/, issue 19): its built files served from the API's own origin, so the browser
// calls the public API with no CORS and no second process. Nothing here needs an API key: the page
// is public, the data it shows comes from the API with the user's key.

/** `npm run build:web` writes here (also run by `npm ci`, through the `prepare` script). */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL('../../web/dist', import.meta.url));

/**
 * The page's paths: each answers with index.html and the client-side router shows the screen. None
 * can collide with the API (`/v1/...`, `/docs`, `/openapi.json`, `/healthz`, `/readyz`, `/metrics`).
 * A new top-level screen adds its path here and in web/src/routes.tsx.
 */
export const DASHBOARD_PATHS = ['/', '/sign-in', '/agents', '/agents/*', '/audit', '/audit/*'] as const;

/** What every dashboard response carries: no inline script or style, no framing, nothing sent elsewhere. */
export const DASHBOARD_HEADERS = {
  'content-security-policy': "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * Serves the built dashboard in `distDir`: index.html (not cached) at every path of DASHBOARD_PATHS,
 * the hashed assets under `/assets/` (cached for a year). Without a build the server still starts,
 * and the page says how to build it.
 */
export async function registerDashboard(server: FastifyInstance, distDir: string = DEFAULT_DASHBOARD_DIR): Promise<void> {
  // Encapsulated (no fastify-plugin): the headers hook applies to these routes only.
  await server.register(async (scope) => {
    scope.addHook('onSend', async (_request, reply) => {
      void reply.headers(DASHBOARD_HEADERS);
    });

    const indexFile = path.join(distDir, 'index.html');
    const serveIndex = async (reply: FastifyReply) => {
      // Read on each request: a rebuild while the server runs is served at once (the file is small).
      const html = await readFile(indexFile).catch(() => undefined);
      if (html === undefined) {
        return reply
          .code(503)
          .header('cache-control', 'no-store')
          .type('text/plain; charset=utf-8')
          .send('The dashboard is not built. Run `npm run build:web` (npm ci runs it too), then reload.\n');
      }
      return reply.header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(html);
    };
    for (const url of DASHBOARD_PATHS) {
      scope.get(url, { schema: { hide: true } }, (_request, reply) => serveIndex(reply));
    }

    const assetsDir = path.join(distDir, 'assets');
    if (existsSync(assetsDir)) {
      await scope.register(fastifyStatic, {
        root: assetsDir,
        prefix: '/assets/',
        decorateReply: false,
        index: false,
        list: false,
        // Asset names carry their content hash: a new build is a new name.
        cacheControl: false,
        setHeaders: (reply) => reply.header('cache-control', IMMUTABLE),
      });
    }
  });
}
