/**
 * E2E: impact analysis on a recorded log finds exactly the changed decisions.
 *
 * A real gateway runs config A and serves a known mix of requests (keys with different scopes,
 * clients behind a trusted proxy, a method the route does not take, a JWT, a cookie). Then
 * `pinpoint impact` (the real command, in its own process) replays the call log against config B,
 * which removes a scope from a key, denies one client address and accepts a method that was 405:
 * the report must list exactly the requests those changes touch, from → to, and nothing else.
 * The call-log files must not contain any of the secrets that were sent.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { parse, stringify } from 'yaml';
import { impactCommand } from '../../src/cli/impact.ts';
import { hashKey } from '../../src/credentials/api-keys.ts';
import { send, startGateway, startUpstream, type Gateway, type Upstream } from '../helpers/harness.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/pinpoint.js');
const KEY_ALICE = 'pp_e2e_impact_alice_3f9a0c1d2e4b';
const KEY_BOB = 'pp_e2e_impact_bob_77c1e0a9b3d5f2';
const KEY_UNKNOWN = 'pp_e2e_impact_nobody_0000aaaa1111';
const COOKIE_SECRET = 'sess-e2e-impact-9d8c7b6a5f4e';
const JWT_SECRET = 'e2e-impact-hmac-secret-at-least-32-bytes';
const ENV = { E2E_IMPACT_JWT: JWT_SECRET };

const run = promisify(execFile);

/** The same command in this process (a second process per case would cost a second each). */
async function inProcess(args: Record<string, string | boolean>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await impactCommand(args, { out: (s) => (stdout += s), err: (s) => (stderr += s), progress: false });
  return { code, stdout, stderr };
}

/** Runs the real command; resolves with its exit code and output whatever the code. */
async function pinpoint(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { ...process.env, ...ENV, NO_COLOR: '1' }, encoding: 'utf8' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function configA(upstream: string): Record<string, unknown> {
  return {
    version: 1,
    errors: { mode: 'detailed' },
    // The test client is the proxy: X-Forwarded-For names the client, so several clients exist.
    trusted_proxies: ['127.0.0.1/32'],
    call_log: { flush_interval_ms: 10 },
    upstreams: { items: { targets: [{ url: upstream }] } },
    policies: {
      ips: { type: 'ip-rules', config: { deny: ['203.0.113.99'] } },
      read: { type: 'api-key', config: { required_scopes: ['items:read'] } },
      write: { type: 'api-key', config: { required_scopes: ['items:write'] } },
      tok: { type: 'jwt', config: { algorithms: ['HS256'], keys: [{ kid: 'k1', secret_env: 'E2E_IMPACT_JWT' }], audience: 'items' } },
    },
    global: { policies: ['ips'] },
    consumers: [
      { id: 'alice', credentials: { api_keys: [{ id: 'k_alice', hash: hashKey(KEY_ALICE), scopes: ['items:read', 'items:write'] }] } },
      { id: 'bob', credentials: { api_keys: [{ id: 'k_bob', hash: hashKey(KEY_BOB), scopes: ['items:read'] }] } },
    ],
    routes: [
      { id: 'items', paths: ['/items', '/items/{id}'], methods: ['GET'], upstream: 'items', policies: ['read'] },
      { id: 'edit', paths: ['/items/{id}/edit'], methods: ['POST'], upstream: 'items', policies: ['write'] },
      { id: 'me', paths: ['/me'], methods: ['GET'], upstream: 'items', policies: ['tok'] },
    ],
  };
}

interface Sent {
  readonly name: string;
  readonly method?: string;
  readonly path: string;
  readonly client: string;
  readonly headers?: Record<string, string>;
  readonly status: number;
}

void describe('impact: replaying a recorded log against a changed config', () => {
  let up: Upstream;
  let gw: Gateway;
  let configB = '';
  /** Request id by scenario name. */
  const ids: Record<string, string> = {};
  let token = '';

  before(async () => {
    // The in-process runs compile the configs with this process's environment.
    Object.assign(process.env, ENV);
    up = await startUpstream();
    gw = await startGateway(configA(up.url), { env: ENV });
    token = await new SignJWT({ sub: 'svc-reports', aud: 'items', scope: 'items:read' })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(JWT_SECRET));
    const alice = { 'x-api-key': KEY_ALICE };
    const bob = { 'x-api-key': KEY_BOB };
    const sent: Sent[] = [
      { name: 'alice-list', path: '/items', client: '198.51.100.1', headers: alice, status: 200 },
      { name: 'bob-list', path: '/items', client: '198.51.100.2', headers: bob, status: 200 },
      { name: 'bob-item', path: '/items/7', client: '198.51.100.2', headers: { authorization: `Bearer ${KEY_BOB}` }, status: 200 },
      { name: 'alice-edit', method: 'POST', path: '/items/1/edit', client: '198.51.100.1', headers: alice, status: 200 },
      { name: 'bob-edit', method: 'POST', path: '/items/1/edit', client: '198.51.100.2', headers: bob, status: 403 },
      { name: 'no-key', path: '/items', client: '198.51.100.1', status: 401 },
      { name: 'alice-delete', method: 'DELETE', path: '/items/1', client: '198.51.100.1', headers: alice, status: 405 },
      { name: 'anon-delete', method: 'DELETE', path: '/items/2', client: '198.51.100.3', status: 405 },
      { name: 'jwt', path: '/me', client: '198.51.100.1', headers: { authorization: `Bearer ${token}` }, status: 200 },
      { name: 'unknown-key', path: '/items', client: '198.51.100.1', headers: { 'x-api-key': KEY_UNKNOWN }, status: 401 },
      { name: 'bob-cookie', path: '/items/8', client: '198.51.100.2', headers: { ...bob, cookie: `session=${COOKIE_SECRET}; theme=dark` }, status: 200 },
      { name: 'client4-alice', path: '/items', client: '198.51.100.4', headers: alice, status: 200 },
      { name: 'client4-anon', path: '/items', client: '198.51.100.4', status: 401 },
      { name: 'blocked', path: '/items', client: '203.0.113.99', headers: alice, status: 403 },
    ];
    for (const s of sent) {
      const r = await send(`${gw.url}${s.path}`, { method: s.method ?? 'GET', headers: { 'x-forwarded-for': s.client, ...s.headers } });
      assert.equal(r.status, s.status, `${s.name}: ${r.text}`);
      ids[s.name] = String(r.headers['x-request-id']);
    }
    await gw.waitForLog({}, sent.length);
    await gw.closeApp();

    // B: (1) bob's key loses items:read, (2) client 198.51.100.4 is denied, (3) items accepts DELETE.
    const b = parse(readFileSync(gw.configFile, 'utf8')) as ReturnType<typeof configA>;
    const policies = b.policies as Record<string, unknown>;
    policies.ips = { type: 'ip-rules', config: { deny: ['203.0.113.99', '198.51.100.4'] } };
    const consumers = b.consumers as { id: string; credentials: { api_keys: { scopes: string[] }[] } }[];
    const bobKey = consumers.find((c) => c.id === 'bob')?.credentials.api_keys[0];
    assert.ok(bobKey !== undefined);
    bobKey.scopes = [];
    const routes = b.routes as { id: string; methods: string[] }[];
    const items = routes.find((r) => r.id === 'items');
    assert.ok(items !== undefined);
    items.methods = ['GET', 'DELETE'];
    configB = path.join(gw.dir, 'b.yaml');
    writeFileSync(configB, stringify(b));
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  void test('the report lists exactly the changed requests, from → to, with counts; exit 1', async () => {
    const r = await pinpoint(['impact', '--config', configB, '--current', gw.configFile, '--examples', '100', '--json']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, '', 'no progress bar with --json');
    const report = JSON.parse(r.stdout) as {
      entries: number;
      compared: number;
      changed: number;
      by_kind: Record<string, number>;
      changes: { kind: string; route: string | null; consumer: string | null; from: { outcome: string; code: string | null; policy: string | null }; to: { outcome: string; code: string | null; policy: string | null }; count: number; examples: string[] }[];
      not_replayable: { reason: string; count: number }[];
      counters: unknown[];
    };
    const d = (x: { outcome: string; code: string | null; policy: string | null }): string => (x.outcome === 'denied' ? `${x.code ?? ''}@${x.policy ?? ''}` : x.outcome);
    const byId = new Map(Object.entries(ids).map(([name, id]) => [id, name]));
    const found = report.changes.flatMap((g) => g.examples.map((id) => `${byId.get(id) ?? id}: ${d(g.from)} -> ${d(g.to)}`)).sort();
    assert.deepEqual(found, [
      'anon-delete: METHOD_NOT_ALLOWED@router -> AUTH_KEY_MISSING@read',
      'alice-delete: METHOD_NOT_ALLOWED@router -> allowed',
      'bob-cookie: allowed -> AUTH_KEY_SCOPE_MISSING@read',
      'bob-item: allowed -> AUTH_KEY_SCOPE_MISSING@read',
      'bob-list: allowed -> AUTH_KEY_SCOPE_MISSING@read',
      'client4-alice: allowed -> IP_DENIED@ips',
      'client4-anon: AUTH_KEY_MISSING@read -> IP_DENIED@ips',
    ].sort());
    assert.equal(report.entries, 14);
    assert.equal(report.compared, 14);
    assert.equal(report.changed, 7);
    assert.deepEqual(report.by_kind, { newly_denied: 4, newly_allowed: 1, denied_differently: 2, answered_differently: 0 });
    assert.deepEqual(report.not_replayable, []);
    // Grouped by route, consumer and code: bob's three requests are one group.
    const bobGroup = report.changes.find((g) => g.consumer === 'bob');
    assert.deepEqual([bobGroup?.kind, bobGroup?.route, bobGroup?.count, bobGroup?.to.code], ['newly_denied', 'items', 3, 'AUTH_KEY_SCOPE_MISSING']);
    assert.equal(report.changes.reduce((n, g) => n + g.count, 0), report.changed);
  });

  void test('human output names each change; exit codes hold in process too', async () => {
    const r = await inProcess({ config: configB, current: gw.configFile, examples: '1' });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, '');
    // No colour codes when not on a terminal.
    assert.doesNotMatch(r.stdout, /\u001b\[/);
    // Groups of one request show that request's id.
    for (const name of ['client4-alice', 'client4-anon', 'alice-delete', 'anon-delete']) assert.ok(r.stdout.includes(ids[name] ?? '?'), name);
    assert.ok(!r.stdout.includes(ids['alice-list'] ?? '?'), 'an unchanged request is not listed');
  });

  void test('the same config changes nothing: exit 0; --route limits the window', async () => {
    const same = await inProcess({ config: gw.configFile, current: gw.configFile, json: true });
    const route = await inProcess({ config: configB, current: gw.configFile, route: 'edit', json: true });
    assert.equal(same.code, 0, same.stderr);
    const s = JSON.parse(same.stdout) as { entries: number; changed: number; changes: unknown[] };
    assert.deepEqual([s.entries, s.changed, s.changes], [14, 0, []]);
    assert.equal(route.code, 0, route.stderr);
    assert.equal((JSON.parse(route.stdout) as { entries: number }).entries, 2);
  });

  void test('bad input exits 2 and names the file and the field', async () => {
    const broken = path.join(gw.dir, 'broken.yaml');
    const b = parse(readFileSync(configB, 'utf8')) as Record<string, unknown>;
    (b.routes as Record<string, unknown>[])[0] = { id: 'items', paths: ['/items'], upstream: 'nowhere' };
    writeFileSync(broken, stringify(b));
    const invalid = await inProcess({ config: broken, current: gw.configFile, json: true });
    const since = await inProcess({ config: configB, current: gw.configFile, since: 'yesterday' });
    const missing = await inProcess({ config: path.join(gw.dir, 'absent.yaml'), current: gw.configFile });
    const noLog = await inProcess({ config: configB, current: gw.configFile, db: path.join(gw.dir, 'no.db') });
    assert.equal(invalid.code, 2);
    const issues = JSON.parse(invalid.stdout) as { valid: boolean; file: string; issues: { path: string }[] };
    assert.equal(issues.file, broken);
    assert.deepEqual(issues.issues.map((i) => i.path), ['routes[0].upstream']);
    assert.equal(since.code, 2);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /absent\.yaml/);
    assert.equal(noLog.code, 3);
  });

  void test('no secret that was sent is anywhere in the call-log files', () => {
    const files = readdirSync(gw.dir).filter((f) => f.startsWith(path.basename(gw.dbFile)));
    assert.ok(files.length > 0);
    const bytes = Buffer.concat(files.map((f) => readFileSync(path.join(gw.dir, f))));
    const signature = token.split('.')[2] ?? '';
    for (const secret of [KEY_ALICE, KEY_BOB, KEY_UNKNOWN, COOKIE_SECRET, token, signature, JWT_SECRET]) {
      assert.equal(bytes.indexOf(secret), -1, `${secret.slice(0, 12)}… found in the call log`);
    }
    // The records are there (the test would pass vacuously on an empty file otherwise).
    assert.notEqual(bytes.indexOf('[redacted#1 key=k_bob]'), -1);
  });
});
