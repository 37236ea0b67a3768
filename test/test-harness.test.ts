import { once } from 'node:events';
import net from 'node:net';

import { expect, it } from 'vitest';

import { closeApp, listen, startTestApp } from './support/test-app.js';

// The harness itself: closing a test app must not wait without end for a client that stopped
// (CI once spent a hook's whole minute on a test that left a 200 KB asset unread).

it('closeApp cuts a connection whose request never finishes after its grace, instead of waiting for it without end', async () => {
  const testApp = await startTestApp();
  const port = Number(new URL(await listen(testApp)).port);
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.on('error', () => undefined);
  // A body announced and never sent in full: the request stays in flight.
  socket.write(
    `POST /v1/convai/agents/create HTTP/1.1\r\nHost: localhost\r\nxi-api-key: ${testApp.keys.editor}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"na`,
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  const socketClosed = once(socket, 'close');
  const started = performance.now();
  await closeApp(testApp.app, 300);
  // The close waited its grace for the request, then cut it (a close that did not wait proves nothing).
  expect(performance.now() - started).toBeGreaterThanOrEqual(250);
  await socketClosed;
  await testApp.store.close();
  await testApp.database.drop();
});
