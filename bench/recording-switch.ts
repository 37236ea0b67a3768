// Bench only (experiments.bench.ts): the server as `npm start` runs it (src/main.ts `serve`), plus a
// port of its own (`CONTROL_PORT`, loopback) that switches the routed read's exposure recording on
// (`POST /on`) and off (`POST /off`, answered once what was buffered is written), so that one
// process is measured both ways: two processes started alike differ by up to 15% for as long as
// they run (bench/README.md), three times the effect measured.
import { createServer } from 'node:http';

import { experimentRuntimeOf } from '../src/features/experiments/experiments.runtime.js';
import { serve } from '../src/main.js';

const app = await serve();
const { routing } = app.context;
const record = routing.onRouted;
if (!record) throw new Error('start it with RECORD_EXPOSURES=true: there is nothing to switch');
const { recorder } = experimentRuntimeOf(app.context);

const control = createServer((request, response) => {
  const answer = (status: number) => response.writeHead(status).end();
  if (request.method !== 'POST') return answer(405);
  if (request.url === '/on') {
    routing.onRouted = record;
    return answer(204);
  }
  if (request.url === '/off') {
    routing.onRouted = undefined;
    recorder.flush().then(() => answer(204), () => answer(500));
    return;
  }
  answer(404);
});
control.listen(Number(process.env.CONTROL_PORT), '127.0.0.1');
