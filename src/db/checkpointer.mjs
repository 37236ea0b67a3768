// SQLite's WAL checkpoints, off the event loop (src/db/connect.ts): by default the connection that
// commits copies the WAL into the database whenever the WAL passes 1,000 pages, inside its COMMIT,
// and a large write then held the event loop 50-100 ms longer. The server's connection turns that
// off (wal_autocheckpoint = 0) and this thread, with a connection of its own, checkpoints instead:
// PASSIVE, so it never waits for or blocks a reader or a writer.
import { statSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

import SqliteDatabase from 'better-sqlite3';

const { file, walBytes, intervalMs } = workerData;
const db = new SqliteDatabase(file);
db.pragma('busy_timeout = 5000');

function checkpointIfLarge() {
  let size = 0;
  try {
    size = statSync(`${file}-wal`).size;
  } catch {
    return;
  }
  if (size >= walBytes) db.pragma('wal_checkpoint(PASSIVE)');
}

const timer = setInterval(checkpointIfLarge, intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'close') return;
  clearInterval(timer);
  // The last checkpoint before the server's own connection closes (which checkpoints what is left).
  db.close();
  parentPort.close();
});
