/**
 * Shutdown while clients abort in-flight requests: every exchange is still recorded (as 499),
 * and nothing reaches the call log after it closed (that used to throw out of an event handler).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { SqliteCallLogStore } from '../../src/calllog/sqlite.ts';
import { App } from '../../src/server/app.ts';

void test('clients aborting during shutdown are logged as 499 and nothing is lost', async () => {
  let seen = 0;
  const up = createServer((req, res) => {
    seen++;
    req.resume();
    setTimeout(() => res.end('late'), 2000).unref();
  });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
  const dir = mkdtempSync(path.join(tmpdir(), 'pinpoint-shutdown-'));
  const file = path.join(dir, 'pinpoint.yaml');
  writeFileSync(
    file,
    `version: 1
listen: { host: 127.0.0.1, port: 0 }
admin: { enabled: false }
call_log: { path: calls.db, flush_interval_ms: 1000 }
upstreams:
  up: { targets: [{ url: "http://127.0.0.1:${(up.address() as AddressInfo).port}" }] }
routes:
  - { id: all, paths: ["/*"], upstream: up }
`,
  );
  const errors: unknown[] = [];
  const onError = (err: unknown): void => void errors.push(err);
  process.on('uncaughtException', onError);
  const app = await App.start({ configFile: file, logger: pino({ level: 'silent' }), watch: false, shutdownGraceMs: 200 });
  try {
    const reqs = Array.from({ length: 10 }, () => {
      const r = request({ host: '127.0.0.1', port: app.port, path: '/slow', method: 'GET' });
      r.on('error', () => undefined);
      r.end();
      return r;
    });
    while (seen < 10) await new Promise((r) => setTimeout(r, 5));
    // The clients give up while the gateway is already draining: their responses' 'close' events
    // come after the sockets', i.e. right when the server reports that it closed.
    const closing = app.close();
    await new Promise((r) => setTimeout(r, 20));
    for (const r of reqs) r.destroy();
    await closing;
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(errors, []);
    const store = new SqliteCallLogStore(path.join(dir, 'calls.db'));
    const rows = store.query({ limit: 100 });
    store.close();
    assert.equal(rows.length, 10);
    assert.deepEqual(new Set(rows.map((r) => r.status)), new Set([499]));
    assert.deepEqual(new Set(rows.map((r) => r.code)), new Set(['CLIENT_CLOSED_REQUEST']));
  } finally {
    process.off('uncaughtException', onError);
    up.closeAllConnections();
    up.close();
  }
});
