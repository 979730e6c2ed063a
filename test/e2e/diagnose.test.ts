/**
 * `diagnose` and `POST /admin/trace` must give the same code and policy as live enforcement: the
 * same request, once sent for real and once described, through one config.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { diagnose } from '../../src/diagnose/diagnose.ts';
import { startGateway, startUpstream, send, type Gateway, type Upstream } from '../helpers/harness.ts';

const READ = 'pp_diag_read_0001';
const WRITE = 'pp_diag_write_0002';
const ADMIN = 'admin-token-for-tests';
const h = (k: string): string => `sha256:${createHash('sha256').update(k).digest('hex')}`;

let up: Upstream;
let gw: Gateway;

before(async () => {
  up = await startUpstream();
  gw = await startGateway(
    {
      version: 1,
      errors: { mode: 'detailed' },
      admin: { token_hash: h(ADMIN) },
      upstreams: { u: { targets: [{ url: up.url }] } },
      policies: {
        key: { type: 'api-key', config: {} },
        write: { type: 'api-key', config: { required_scopes: ['orders:write'] } },
        size: { type: 'request-size', config: { max_bytes: 64 } },
        json: { type: 'content-type', config: { allow: ['application/json'] } },
        block: { type: 'ip-rules', config: { deny: ['192.0.2.0/24'] } },
        limit: { type: 'rate-limit', config: { limits: [{ id: 'per-min', by: ['consumer'], rate: { limit: 1, window: '1m' } }] } },
      },
      global: { policies: ['block'] },
      consumers: [
        { id: 'reader', credentials: { api_keys: [{ id: 'k_r', hash: h(READ), scopes: ['orders:read'] }] } },
        { id: 'writer', credentials: { api_keys: [{ id: 'k_w', hash: h(WRITE), scopes: ['orders:read', 'orders:write'] }] } },
      ],
      routes: [
        { id: 'list', paths: ['/orders'], methods: ['GET'], upstream: 'u', policies: ['key'] },
        { id: 'create', paths: ['/orders'], methods: ['POST'], upstream: 'u', policies: ['write', 'size', 'json'] },
        { id: 'limited', paths: ['/limited'], methods: ['GET'], upstream: 'u', policies: ['key', 'limit'] },
      ],
    },
    { admin: true },
  );
});

after(async () => {
  await gw.close();
  await up.close();
});

interface Case {
  readonly name: string;
  readonly method: string;
  readonly target: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

const CASES: readonly Case[] = [
  { name: 'no route', method: 'GET', target: '/order', headers: {} },
  { name: 'wrong method', method: 'DELETE', target: '/orders', headers: {} },
  { name: 'no key', method: 'GET', target: '/orders', headers: {} },
  { name: 'key in the query', method: 'GET', target: `/orders?api_key=${READ}`, headers: {} },
  { name: 'unknown key', method: 'GET', target: '/orders', headers: { 'x-api-key': 'nope' } },
  { name: 'read key on POST', method: 'POST', target: '/orders', headers: { 'x-api-key': READ, 'content-type': 'application/json' }, body: '{}' },
  { name: 'body too large', method: 'POST', target: '/orders', headers: { 'x-api-key': WRITE, 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(100) }) },
  { name: 'wrong content type', method: 'POST', target: '/orders', headers: { 'x-api-key': WRITE, 'content-type': 'text/plain' }, body: 'hi' },
  { name: 'allowed GET', method: 'GET', target: '/orders', headers: { 'x-api-key': READ } },
  { name: 'allowed POST', method: 'POST', target: '/orders', headers: { 'x-api-key': WRITE, 'content-type': 'application/json' }, body: '{}' },
];

void describe('diagnose agrees with live enforcement', () => {
  for (const c of CASES) {
    void test(c.name, async () => {
      const live = await send(`${gw.url}${c.target}`, { method: c.method, headers: c.headers, ...(c.body !== undefined ? { body: c.body } : {}) });
      const liveCode = (live.headers['x-pinpoint-code'] as string | undefined) ?? null;
      const livePolicy = (live.headers['x-pinpoint-policy'] as string | undefined) ?? null;
      const headers = { ...c.headers, host: `127.0.0.1:${gw.port}`, ...(c.body !== undefined ? { 'content-length': String(Buffer.byteLength(c.body)) } : {}) };
      const d = await diagnose(gw.app.config, { method: c.method, target: c.target, headers, ...(c.body !== undefined ? { body: Buffer.from(c.body) } : {}) });
      assert.equal(d.code, liveCode);
      assert.equal(d.policy, livePolicy);
      assert.equal(d.verdict, liveCode === null ? 'allowed' : 'denied');
      if (liveCode !== null) assert.equal(d.status, live.status);
    });
  }

  void test('a dry run consumes no rate-limit budget', async () => {
    const described = { method: 'GET', target: '/limited', headers: { 'x-api-key': READ, host: 'h' } };
    for (let i = 0; i < 3; i++) assert.equal((await diagnose(gw.app.config, described)).verdict, 'allowed');
    assert.equal((await send(`${gw.url}/limited`, { headers: { 'x-api-key': READ } })).status, 200);
    const second = await send(`${gw.url}/limited`, { headers: { 'x-api-key': READ } });
    assert.equal(second.headers['x-pinpoint-code'], 'RATE_LIMIT_EXCEEDED');
    assert.equal((await diagnose(gw.app.config, described)).code, 'RATE_LIMIT_EXCEEDED');
  });
});

void describe('POST /admin/trace', () => {
  const admin = () => `http://127.0.0.1:${gw.app.adminPort}/admin/trace`;

  void test('answers the diagnosis of a described request', async () => {
    const r = await send(admin(), {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ method: 'POST', url: '/orders', headers: { 'X-Api-Key': READ, 'content-type': 'application/json' }, body: '{}' }),
    });
    assert.equal(r.status, 200);
    const d = r.json<{ code: string; policy: string; consumer: string; trace: { policy: string }[] }>();
    assert.deepEqual([d.code, d.policy, d.consumer], ['AUTH_KEY_SCOPE_MISSING', 'write', 'reader']);
    assert.deepEqual(d.trace.map((t) => t.policy), ['router', 'block', 'size', 'write']);
  });

  void test('needs the admin token; rejects a malformed description', async () => {
    const anon = await send(admin(), { method: 'POST', body: '{"url":"/orders"}' });
    assert.equal(anon.status, 401);
    const bad = await send(admin(), { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` }, body: '{"method":"GET"}' });
    assert.equal(bad.status, 400);
  });
});

void describe('pinpoint diagnose (CLI)', () => {
  void test('exit 1 and the deciding code for a denied curl command; exit 0 when allowed', () => {
    const bin = path.resolve(import.meta.dirname, '../../bin/pinpoint.js');
    const denied = spawnSync(process.execPath, [bin, 'diagnose', '--config', gw.configFile, '--json', '--curl', `curl -X POST http://h/orders -H 'x-api-key: ${READ}' --json '{}'`], { encoding: 'utf8' });
    assert.equal(denied.status, 1, denied.stderr);
    assert.equal((JSON.parse(denied.stdout) as { code: string }).code, 'AUTH_KEY_SCOPE_MISSING');
    const ok = spawnSync(process.execPath, [bin, 'diagnose', '--config', gw.configFile, '--json', '--curl', `curl http://h/orders -H 'x-api-key: ${READ}'`], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
  });
});
