/**
 * Reload under load: in-flight requests finish on the config they started with; requests after the
 * reload see the new one; a bad file changes nothing. In-process App over real sockets.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { App } from '../../src/server/app.ts';

async function upstream(name: string, delayMs: number): Promise<{ server: Server; port: number; seen: () => number }> {
  let seen = 0;
  const server = createServer((req, res) => {
    seen++;
    req.resume();
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(name);
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as AddressInfo).port, seen: () => seen };
}

const config = (port: number) => `version: 1
listen: { host: 127.0.0.1, port: 0 }
admin: { enabled: false }
call_log: { enabled: false }
upstreams:
  up: { targets: [{ url: "http://127.0.0.1:${port}" }] }
routes:
  - { id: all, paths: ["/*"], upstream: up }
`;

void test('a reload does not fail in-flight requests and applies to the next ones', async () => {
  const a = await upstream('old', 300);
  const b = await upstream('new', 0);
  const dir = mkdtempSync(path.join(tmpdir(), 'pinpoint-reload-'));
  const file = path.join(dir, 'pinpoint.yaml');
  writeFileSync(file, config(a.port));
  const app = await App.start({ configFile: file, logger: pino({ level: 'silent' }), watch: false });
  try {
    const url = `http://127.0.0.1:${app.port}/x`;
    const inflight = Array.from({ length: 20 }, () => fetch(url).then(async (r) => [r.status, await r.text()] as const));
    // Wait until all 20 are in flight at the old upstream (not merely sent by the client).
    while (a.seen() < 20) await new Promise((r) => setTimeout(r, 5));

    writeFileSync(file, 'version: 1\nroutes: not-a-list\n');
    assert.equal(app.reload().applied, false);

    writeFileSync(file, config(b.port));
    assert.equal(app.reload().applied, true);

    const after = await fetch(url).then(async (r) => [r.status, await r.text()] as const);
    assert.deepEqual(after, [200, 'new']);
    const results = await Promise.all(inflight);
    assert.deepEqual(new Set(results.map((r) => `${r[0]} ${r[1]}`)), new Set(['200 old']));
  } finally {
    await app.close();
    a.server.close();
    b.server.close();
  }
});
