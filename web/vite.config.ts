import { fileURLToPath } from 'node:url';

import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

// The dashboard: built into web/dist (served by the API server, src/http/dashboard.ts), or served
// by Vite's dev server with hot reload, `/v1` proxied to a running API (BRANCHWISE_API).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [preact()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    // Everything is a file under /assets/: the CSP allows no inline script, style or data: URL.
    assetsInlineLimit: 0,
  },
  server: {
    proxy: { '/v1': { target: process.env.BRANCHWISE_API ?? 'http://127.0.0.1:8080', changeOrigin: true } },
  },
});
