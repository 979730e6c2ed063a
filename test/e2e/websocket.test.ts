/**
 * E2E: WebSocket upgrades go through route match and policies, are tunnelled to the upstream,
 * and a denied upgrade gets the problem envelope and no tunnel.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { assertProblem, freeClosedPort, startGateway, UUID, type Gateway, type Reply } from '../helpers/harness.ts';
import { open, startWsUpstream, type WsUpstream } from '../helpers/ws.ts';
import { sha256 } from '../../src/credentials/api-keys.ts';

const KEY = 'pp_test_ws_key_1234567890';

/** Attempts an upgrade that the gateway is expected to refuse; resolves with the HTTP answer. */
async function refused(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  const ws = new WebSocket(url, { headers, handshakeTimeout: 5000 });
  ws.on('error', () => undefined);
  const [, res] = (await Promise.race([
    once(ws, 'unexpected-response'),
    once(ws, 'open').then(() => {
      throw new Error('the upgrade was accepted');
    }),
  ])) as [unknown, IncomingMessage];
  const sock = res.socket;
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks);
  const text = body.toString('utf8');
  // After an unexpected response ws leaves the socket to us: close it and wait for that.
  if (!sock.destroyed) {
    const closed = once(sock, 'close');
    sock.destroy();
    await closed;
  }
  return { status: res.statusCode ?? 0, headers: res.headers, body, text, json: <T>() => JSON.parse(text) as T };
}

async function roundTrip(ws: WebSocket, msg: string): Promise<string> {
  const got = once(ws, 'message');
  ws.send(msg);
  const [data] = (await got) as [Buffer];
  return String(data);
}

async function closeWs(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  const closed = once(ws, 'close');
  ws.close(1000, 'done');
  await closed;
}

void describe('websocket', () => {
  let up: WsUpstream;
  let gw: Gateway;
  let deadPort: number;
  before(async () => {
    up = await startWsUpstream();
    deadPort = await freeClosedPort();
    gw = await startGateway({
      version: 1,
      errors: { mode: 'detailed' },
      upstreams: {
        ws: { targets: [{ url: `${up.url}/base` }] },
        dead: { targets: [{ url: `http://127.0.0.1:${deadPort}` }] },
      },
      policies: { 'ws-key': { type: 'api-key', config: { in: [{ from: 'header', name: 'x-api-key' }] } } },
      consumers: [{ id: 'ws-user', credentials: { api_keys: [{ id: 'k_ws', hash: `sha256:${sha256(KEY).toString('hex')}` }] } }],
      routes: [
        { id: 'ws-open', paths: ['/ws/open'], upstream: 'ws' },
        { id: 'ws-keyed', paths: ['/ws/keyed'], upstream: 'ws', policies: ['ws-key'] },
        { id: 'ws-dead', paths: ['/ws/dead'], upstream: 'dead' },
      ],
    }, { shutdownGraceMs: 1000 });
  });
  after(async () => {
    try {
      await gw.close();
    } finally {
      await up.close();
    }
  });

  const wsUrl = (p: string): string => `${gw.url.replace('http:', 'ws:')}${p}`;

  void test('an upgrade passes through: messages both ways, same request id on both sides', async () => {
    const before = up.handshakes.length;
    const { ws, res } = await open(`${wsUrl('/ws/open')}?room=1`);
    try {
      assert.equal(res.statusCode, 101);
      const id = String(res.headers['x-request-id']);
      assert.match(id, UUID);
      assert.equal(await roundTrip(ws, 'hello'), 'echo:hello');
      assert.equal(await roundTrip(ws, 'again'), 'echo:again');
      assert.equal(up.handshakes.length, before + 1);
      const hs = up.handshakes.at(-1);
      assert.equal(hs?.path, '/base/ws/open?room=1');
      assert.equal(hs?.headers['x-request-id'], id);
      assert.equal(hs?.headers['x-forwarded-for'], '127.0.0.1');
    } finally {
      await closeWs(ws);
    }
  });

  void test('the call log records the tunnel with status 101', async () => {
    const { ws, res } = await open(wsUrl('/ws/open'));
    const id = String(res.headers['x-request-id']);
    assert.equal(await roundTrip(ws, 'x'), 'echo:x');
    await closeWs(ws);
    const e = await gw.logEntry(id);
    assert.equal(e.status, 101);
    assert.equal(e.code, null);
    assert.equal(e.route, 'ws-open');
    assert.equal(e.upstreamTarget, `${up.url}/base`);
    assert.equal(e.attempts, 1);
    assert.equal(e.method, 'GET');
  });

  void test('an upgrade without a key on an api-key route: 401 problem, no tunnel', async () => {
    const before = up.handshakes.length;
    const r = await refused(wsUrl('/ws/keyed'));
    const p = assertProblem(r, { status: 401, code: 'AUTH_KEY_MISSING', layer: 'gateway', policy: 'ws-key' });
    assert.ok(r.headers['www-authenticate'] !== undefined);
    assert.equal(up.handshakes.length, before, 'the upstream saw no handshake');
    const e = await gw.logEntry(p.request_id);
    assert.equal(e.status, 401);
    assert.equal(e.code, 'AUTH_KEY_MISSING');
    assert.equal(e.policy, 'ws-key');
    assert.equal(e.upstreamTarget, null);
  });

  void test('an upgrade with a valid key is tunnelled and attributed to the consumer', async () => {
    const { ws, res } = await open(wsUrl('/ws/keyed'), { 'x-api-key': KEY });
    const id = String(res.headers['x-request-id']);
    assert.equal(await roundTrip(ws, 'k'), 'echo:k');
    await closeWs(ws);
    const e = await gw.logEntry(id);
    assert.equal(e.status, 101);
    assert.equal(e.consumer, 'ws-user');
    assert.equal(e.credentialId, 'k_ws');
  });

  void test('an upgrade to an unknown path: 404 problem', async () => {
    const r = await refused(wsUrl('/ws/nowhere'));
    const p = assertProblem(r, { status: 404, code: 'ROUTE_NOT_FOUND', layer: 'client', policy: 'router' });
    const e = await gw.logEntry(p.request_id);
    assert.equal(e.status, 404);
    assert.equal(e.route, null);
  });

  void test('an upgrade to a refusing upstream: 502 UPSTREAM_CONNECT_REFUSED problem', async () => {
    const r = await refused(wsUrl('/ws/dead'));
    const p = assertProblem(r, { status: 502, code: 'UPSTREAM_CONNECT_REFUSED', layer: 'upstream', policy: 'upstream:dead' });
    assert.equal(p.evidence?.target, `http://127.0.0.1:${deadPort}`);
    const e = await gw.logEntry(p.request_id);
    assert.equal(e.status, 502);
    assert.equal(e.code, 'UPSTREAM_CONNECT_REFUSED');
  });

  void test('Node\u2019s global WebSocket client works through the gateway too', async () => {
    const ws = new globalThis.WebSocket(wsUrl('/ws/open'));
    try {
      await new Promise<void>((resolve, reject) => {
        ws.addEventListener('open', () => resolve());
        ws.addEventListener('error', () => reject(new Error('websocket error')));
      });
      const reply = new Promise<string>((resolve) => ws.addEventListener('message', (ev) => resolve(String(ev.data))));
      ws.send('global');
      assert.equal(await reply, 'echo:global');
    } finally {
      const closed = new Promise<void>((resolve) => ws.addEventListener('close', () => resolve()));
      ws.close();
      await closed;
    }
  });
});

void describe('websocket tunnels and shutdown', () => {
  async function setup(t: { after(fn: () => Promise<void>): void }, graceMs: number) {
    const up = await startWsUpstream();
    const gw = await startGateway(
      { version: 1, upstreams: { ws: { targets: [{ url: up.url }] } }, routes: [{ id: 'ws', paths: ['/ws'], upstream: 'ws' }] },
      { shutdownGraceMs: graceMs },
    );
    t.after(async () => {
      try {
        await gw.close();
      } finally {
        await up.close();
      }
    });
    const { ws, res } = await open(`${gw.url.replace('http:', 'ws:')}/ws`);
    assert.equal(await roundTrip(ws, 'before close'), 'echo:before close');
    return { gw, up, ws, id: String(res.headers['x-request-id']) };
  }

  void test('close() ends a tunnel still open after the grace period and logs it as 101', async (t) => {
    const { gw, ws, id } = await setup(t, 300);
    const wsClosed = once(ws, 'close');
    const t0 = performance.now();
    await gw.closeApp();
    const elapsed = performance.now() - t0;
    await wsClosed;
    assert.ok(elapsed >= 250 && elapsed < 3000, `close() took ${Math.round(elapsed)} ms with grace 300`);
    // Let late 'close' handlers run (they would throw here if they logged after the writer closed).
    await new Promise<void>((resolve) => setTimeout(resolve, 50));
    const rows = gw.queryLog({ requestId: id });
    assert.equal(rows.length, 1, 'the tunnel is in the call log');
    assert.equal(rows[0]?.status, 101);
  });

  void test('close() returns once a tunnel ends within the grace period, and leaves nothing keeping the process alive', async () => {
    // In a child process, so that what close() leaves behind shows as a late process exit.
    const grace = 3000;
    const child = spawn(process.execPath, [fileURLToPath(new URL('../helpers/tunnel-shutdown-child.ts', import.meta.url)), String(grace)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    let reportedAt = 0;
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      if (reportedAt === 0 && out.includes('\n')) reportedAt = performance.now();
    });
    const killer = setTimeout(() => child.kill(), 15_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(killer);
    const lingerMs = performance.now() - reportedAt;
    assert.equal(code, 0, out);
    const report = JSON.parse(out) as { closeMs: number; status: number | null };
    assert.equal(report.status, 101, 'the tunnel is in the call log');
    assert.ok(report.closeMs < 1500, `close() took ${Math.round(report.closeMs)} ms though the tunnel ended at once`);
    assert.ok(lingerMs < 1500, `the process stayed alive ${Math.round(lingerMs)} ms after everything was closed (grace ${grace} ms)`);
  });
});
