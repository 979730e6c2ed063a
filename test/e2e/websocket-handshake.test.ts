/**
 * E2E: WebSocket handshakes that do not end in a tunnel, over real sockets. A handshake to a route
 * without an upstream (AI) is refused in the envelope and the process goes on serving; an
 * upstream's own refusal (403) reaches the client unchanged and does not count against the
 * target; a client that leaves mid-handshake takes the upstream handshake with it and is logged;
 * the `origin` and `csrf` policies check cross-site handshakes although they are GETs.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { CATALOG } from '../../src/errors/catalog.ts';
import { assertProblem, closeServer, send, startGateway, UUID, type Gateway, type Reply } from '../helpers/harness.ts';
import { open, startWsUpstream, type WsUpstream } from '../helpers/ws.ts';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

interface Handshake extends Reply {
  /** The tunnel, when the answer was 101. */
  readonly socket: Duplex | undefined;
}

/** A WebSocket opening handshake (RFC 6455 §4.1) with node:http; resolves with the answer, 101 or not. */
function handshake(url: string, headers: Record<string, string> = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': KEY, ...headers },
    });
    req.once('upgrade', (res, socket) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.alloc(0), text: '', json: () => ({}) as never, socket });
    });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json: <T>() => JSON.parse(text) as T, socket: undefined });
      });
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}

/** A node:http upstream whose 'upgrade' handler the test writes; plain requests get 200 "plain ok". */
async function startRawUpstream(onUpgrade: (path: string, socket: Socket) => void): Promise<{ url: string; server: Server; plain: number; close(): Promise<void> }> {
  const state = { plain: 0 };
  const server = createServer((_req, res) => {
    state.plain++;
    res.end('plain ok');
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, socket: Socket) => {
    socket.on('error', () => undefined);
    onUpgrade(req.url ?? '', socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    get plain() {
      return state.plain;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await closeServer(server);
    },
  };
}

function headerList(h: IncomingHttpHeaders, name: string): string {
  return String(h[name] ?? '');
}

void describe('websocket handshake to a route without an upstream', () => {
  let gw: Gateway;
  let up: WsUpstream;
  before(async () => {
    up = await startWsUpstream();
    gw = await startGateway({
      version: 1,
      errors: { mode: 'detailed' },
      ai: {
        providers: { local: { type: 'openai-compatible', base_url: 'http://127.0.0.1:9/v1', allow_private_network: true } },
        models: { m: { targets: [{ provider: 'local', model: 'm' }] } },
      },
      upstreams: { ws: { targets: [{ url: up.url }] } },
      routes: [
        { id: 'llm', paths: ['/v1/*'], ai: { protocol: 'openai' } },
        { id: 'ws', paths: ['/ws'], upstream: 'ws' },
      ],
    });
  });
  after(async () => {
    try {
      await gw.close();
    } finally {
      await up.close();
    }
  });

  void test('an AI route answers 400 UPGRADE_NOT_SUPPORTED in its own envelope, and the process goes on serving', async () => {
    const r = await handshake(`${gw.url}/v1/chat/completions`);
    assert.equal(r.status, 400);
    assert.equal(r.socket, undefined);
    assert.equal(r.headers['x-pinpoint-code'], 'UPGRADE_NOT_SUPPORTED');
    assert.equal(r.headers['x-pinpoint-layer'], 'client');
    assert.equal(r.headers['x-pinpoint-policy'], 'gateway');
    assert.equal(r.headers.connection, 'close', 'no tunnel follows: the connection ends with the answer');
    const id = String(r.headers['x-request-id']);
    assert.match(id, UUID);
    // The route's envelope is the provider-native one (OpenAI's error object), as for any denial there.
    const body = r.json<{ error: { code: string } }>();
    assert.equal(body.error.code, 'UPGRADE_NOT_SUPPORTED');
    const e = await gw.logEntry(id);
    assert.equal(e.status, 400);
    assert.equal(e.code, 'UPGRADE_NOT_SUPPORTED');
    assert.equal(e.route, 'llm');
    assert.equal(e.upstreamTarget, null);
    const t = e.trace.find((x) => x.code === 'UPGRADE_NOT_SUPPORTED');
    assert.deepEqual(t?.evidence, { upgrade: 'websocket', route: 'llm', kind: 'ai' });

    // Still serving: the AI route's own API and a tunnel on another route.
    const models = await send(`${gw.url}/v1/models`);
    assert.equal(models.status, 200);
    const { ws, res } = await open(`${gw.url.replace('http:', 'ws:')}/ws`);
    assert.equal(res.statusCode, 101);
    const closed = once(ws, 'close');
    ws.close();
    await closed;
  });
});

void describe('websocket handshake refused by the upstream', () => {
  let gw: Gateway;
  let up: Awaited<ReturnType<typeof startRawUpstream>>;
  const MAX_FAILS = 2;
  before(async () => {
    up = await startRawUpstream((path, socket) => {
      const status = path.startsWith('/ws/401') ? '401 Unauthorized' : '403 Forbidden';
      socket.end(`HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\nx-upstream: yes\r\ncontent-length: 9\r\nconnection: close\r\n\r\nforbidden`);
    });
    gw = await startGateway({
      version: 1,
      errors: { mode: 'detailed' },
      upstreams: { u: { targets: [{ url: up.url }], health: { max_fails: MAX_FAILS, fail_timeout_ms: 30_000 } } },
      routes: [{ id: 'r', paths: ['/*'], upstream: 'u' }],
    });
  });
  after(async () => {
    try {
      await gw.close();
    } finally {
      await up.close();
    }
  });

  void test('a 403 reaches the client unchanged, marked as the upstream\u2019s, and the target stays in service', async () => {
    for (let i = 0; i < MAX_FAILS + 2; i++) {
      const r = await handshake(`${gw.url}/ws/deny`);
      assert.equal(r.status, 403);
      assert.equal(r.socket, undefined);
      assert.equal(r.text, 'forbidden');
      assert.equal(r.headers['x-upstream'], 'yes');
      assert.equal(r.headers['content-type'], 'text/plain');
      assert.equal(r.headers['x-pinpoint-layer'], 'upstream');
      assert.equal(r.headers['x-pinpoint-code'], undefined, 'the upstream\u2019s answer, not a gateway denial');
      assert.equal(r.headers.connection, 'close');
      const id = headerList(r.headers, 'x-request-id');
      assert.match(id, UUID);
      const e = await gw.logEntry(id);
      assert.equal(e.status, 403);
      assert.equal(e.layer, 'upstream');
      assert.equal(e.code, null);
      assert.equal(e.upstreamTarget, up.url);
      assert.equal(e.attempts, 1);
    }
    const r401 = await handshake(`${gw.url}/ws/401`);
    assert.equal(r401.status, 401);
    // More refusals than max_fails, yet the target was never rested: plain traffic still reaches it.
    const before = up.plain;
    const plain = await send(`${gw.url}/plain`);
    assert.equal(plain.status, 200);
    assert.equal(plain.text, 'plain ok');
    assert.equal(up.plain, before + 1);
  });
});

void describe('websocket client leaving mid-handshake', () => {
  let gw: Gateway;
  let up: Awaited<ReturnType<typeof startRawUpstream>>;
  const pending: { socket: Socket; closed: Promise<number> }[] = [];
  before(async () => {
    up = await startRawUpstream((_path, socket) => {
      // Reads (so it sees the gateway's FIN) and never answers: the handshake stays pending.
      socket.resume();
      socket.on('end', () => socket.end());
      pending.push({ socket, closed: once(socket, 'close').then(() => performance.now()) });
    });
    gw = await startGateway({
      version: 1,
      upstreams: { u: { targets: [{ url: up.url }], timeouts: { response_ms: 30_000 } } },
      routes: [{ id: 'slow', paths: ['/*'], upstream: 'u' }],
    });
  });
  after(async () => {
    try {
      await gw.close();
    } finally {
      await up.close();
    }
  });

  void test('the upstream socket is closed within a second and the exchange is logged as CLIENT_CLOSED_REQUEST', async () => {
    const t0 = Date.now();
    const client = connect(gw.port, '127.0.0.1');
    await once(client, 'connect');
    client.write(`GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`);
    for (let i = 0; pending.length === 0 && i < 500; i++) await sleep(10);
    assert.equal(pending.length, 1, 'the upstream received the handshake');
    const left = performance.now();
    client.destroy();
    const closedAt = await Promise.race([pending[0]!.closed, sleep(1000).then(() => undefined)]);
    assert.ok(closedAt !== undefined, 'the upstream socket was still open a second after the client left');
    assert.ok(closedAt - left < 1000);
    const rows = await gw.waitForLog({ route: 'slow', since: t0 }, 1);
    assert.equal(rows.length, 1);
    const e = rows[0]!;
    assert.equal(e.status, CATALOG.CLIENT_CLOSED_REQUEST.status);
    assert.equal(e.code, 'CLIENT_CLOSED_REQUEST');
    assert.equal(e.layer, 'client');
    assert.equal(e.upstreamTarget, up.url);
    assert.equal(e.method, 'GET');
  });
});

void describe('origin and csrf on websocket handshakes', () => {
  const APP = 'https://app.example.com';
  const COOKIE = 'session=s3ss10n';
  let gw: Gateway;
  let up: WsUpstream;
  before(async () => {
    up = await startWsUpstream();
    gw = await startGateway({
      version: 1,
      errors: { mode: 'detailed' },
      policies: {
        'same-site': { type: 'origin', config: { allowed_origins: [APP] } },
        'csrf-web': { type: 'csrf', config: {} },
      },
      upstreams: { ws: { targets: [{ url: up.url }] } },
      routes: [
        { id: 'ws-origin', paths: ['/origin'], upstream: 'ws', policies: ['same-site'] },
        { id: 'ws-csrf', paths: ['/csrf'], upstream: 'ws', policies: ['csrf-web'] },
      ],
    });
  });
  after(async () => {
    try {
      await gw.close();
    } finally {
      await up.close();
    }
  });

  const cases: readonly { name: string; path: string; origin: (gw: Gateway) => string; status: number; code?: string; layer?: string; policy?: string }[] = [
    { name: 'origin: cross-site handshake', path: '/origin', origin: () => 'https://evil.com', status: 403, code: 'ORIGIN_NOT_ALLOWED', layer: 'gateway', policy: 'same-site' },
    { name: 'origin: handshake from an allowed origin', path: '/origin', origin: () => APP, status: 101 },
    { name: 'csrf: cross-site handshake', path: '/csrf', origin: () => 'https://evil.com', status: 403, code: 'CSRF_HANDSHAKE_CROSS_SITE', layer: 'client', policy: 'csrf-web' },
    { name: 'csrf: handshake from a page on the gateway\u2019s host', path: '/csrf', origin: (g) => g.url, status: 101 },
  ];
  for (const c of cases) {
    void test(`${c.name}: ${c.status}${c.code !== undefined ? ` ${c.code}` : ''}`, async () => {
      const seen = up.handshakes.length;
      const r = await handshake(`${gw.url}${c.path}`, { origin: c.origin(gw), cookie: COOKIE });
      if (c.code === undefined) {
        assert.equal(r.status, 101);
        assert.equal(up.handshakes.length, seen + 1);
        r.socket?.destroy();
        return;
      }
      const p = assertProblem(r, { status: c.status, code: c.code, layer: c.layer ?? '', policy: c.policy ?? '' });
      assert.equal(up.handshakes.length, seen, 'the upstream saw no handshake');
      const e = await gw.logEntry(p.request_id);
      assert.equal(e.status, c.status);
      assert.equal(e.code, c.code);
      assert.equal(e.policy, c.policy);
      const t = e.trace.find((x) => x.policy === c.policy);
      assert.equal(t?.outcome, 'deny');
      assert.equal(t?.code, c.code);
    });
  }

  void test('a plain cross-site GET is still not checked (no Upgrade)', async () => {
    for (const path of ['/origin', '/csrf']) {
      const r = await send(`${gw.url}${path}`, { headers: { origin: 'https://evil.com', cookie: COOKIE } });
      assert.equal(r.status, 200, path);
    }
  });
});
