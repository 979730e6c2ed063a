/**
 * Impact analysis on requests logged the way the gateway logs them (admit + evaluate, then the
 * replay record built from what the exchange holds), replayed against a changed config: exactly
 * the changed decisions are reported, by request id, and what cannot be replayed is said so.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { stringify } from 'yaml';
import { buildReplayRecord } from '../calllog/replay-record.ts';
import type { CallLogEntry } from '../calllog/types.ts';
import type { CompiledConfig } from '../config/compile.ts';
import { loadConfigText } from '../config/load.ts';
import { hashKey } from '../credentials/api-keys.ts';
import { hashPassword } from '../credentials/password.ts';
import { evaluate } from '../pipeline/run.ts';
import type { Identity, RequestFacts, TraceEntry } from '../pipeline/types.ts';
import { clientAddress } from '../proxy/forwarded.ts';
import { admit, hostOnly, splitTarget } from '../routing/admit.ts';
import { changeOf, impact, type ChangeGroup } from './impact.ts';
import { ReplayTarget, type Verdict } from './replay.ts';

const T0 = Date.parse('2020-01-10T12:00:00Z');
const SECRET = 'impact-test-hmac-secret-0123456789abcdef';
const ENV = { JWT_SECRET: SECRET };
const K = { read: 'pp_imp_read_aaaaaaaaaaaaaaaa', gone: 'pp_imp_gone_bbbbbbbbbbbbbbbb', rot: 'pp_imp_rot_cccccccccccccccc', ren: 'pp_imp_ren_dddddddddddddddd', unknown: 'pp_imp_unknown_eeeeeeeeeeeeee' };
const BOB = hashPassword('bob-password');
const CAROL = hashPassword('carol-password');

type Obj = Record<string, unknown>;

function base(): Obj {
  return {
    version: 1,
    upstreams: { u: { targets: [{ url: 'http://127.0.0.1:1' }] } },
    policies: {
      key: { type: 'api-key', config: { required_scopes: ['orders:read'] } },
      ips: { type: 'ip-rules', config: { deny: ['192.0.2.66'] } },
      tok: { type: 'jwt', config: { algorithms: ['HS256'], keys: [{ kid: 'k1', secret_env: 'JWT_SECRET' }], audience: 'api' } },
      basic: { type: 'basic-auth' },
      rl: { type: 'rate-limit', config: { limits: [{ id: 'per-min', by: ['consumer'], rate: { limit: 100000, window: '1m' } }] } },
      own: { type: 'ownership', config: { resource: { from: 'body', name: '/owner' }, claim: 'consumer' } },
    },
    consumers: [
      {
        id: 'alice',
        credentials: {
          api_keys: [
            { id: 'k_read', hash: hashKey(K.read), scopes: ['orders:read'] },
            { id: 'k_gone', hash: hashKey(K.gone), scopes: ['orders:read'] },
            { id: 'k_rot', hash: hashKey(K.rot), scopes: ['orders:read'] },
            { id: 'k_ren', hash: hashKey(K.ren), scopes: ['orders:read'], expires_at: '2020-01-11T00:00:00Z' },
          ],
        },
      },
      { id: 'bob', credentials: { basic_auth: [{ username: 'bob', password_hash: BOB }] } },
      { id: 'carol', credentials: { basic_auth: [{ username: 'carol', password_hash: CAROL }] } },
    ],
    routes: [
      { id: 'orders', paths: ['/orders'], methods: ['GET'], upstream: 'u', policies: ['ips', 'key', 'rl'] },
      { id: 'tokens', paths: ['/tok'], methods: ['GET'], upstream: 'u', policies: ['tok'] },
      { id: 'basic', paths: ['/basic'], methods: ['GET'], upstream: 'u', policies: ['basic'] },
      { id: 'body', paths: ['/body'], methods: ['POST'], upstream: 'u', policies: ['key', 'own'] },
    ],
  };
}

function compile(cfg: Obj): CompiledConfig {
  const r = loadConfigText(stringify(cfg), { env: ENV });
  assert.ok(r.ok, JSON.stringify(r.ok ? null : r.issues));
  return r.compiled;
}

interface Sent {
  readonly id: string;
  readonly method?: string;
  readonly target: string;
  readonly headers?: Record<string, string>;
  readonly peer?: string;
  readonly body?: string;
}

/** Logs a request the way src/server/gateway.ts does: admit, evaluate (live), then the entry. */
async function logged(cfg: CompiledConfig, s: Sent, i: number): Promise<CallLogEntry> {
  const method = s.method ?? 'GET';
  const headers: Record<string, string> = { host: 'api.test', ...s.headers, ...(s.body !== undefined ? { 'content-length': String(Buffer.byteLength(s.body)) } : {}) };
  const peer = s.peer ?? '203.0.113.1';
  const ts = T0 + i;
  const { path, query } = splitTarget(s.target);
  const trace: TraceEntry[] = [];
  const a = admit(cfg, method, path, hostOnly(headers.host), undefined);
  trace.push(a.trace);
  let identity: Identity | undefined;
  let code: CallLogEntry['code'] = null;
  let policy: string | null = null;
  let buffered: Buffer | undefined;
  if (a.kind === 'deny') {
    code = a.code;
    policy = a.policy;
  } else {
    const client = clientAddress(peer, headers, cfg.trustedProxies, cfg.source.trusted_proxy_header);
    const facts: RequestFacts = { method, path, rawQuery: query, host: hostOnly(headers.host), headers, clientIp: client.ip, clientIpSource: client.source, params: a.params, contentLength: s.body === undefined ? undefined : Buffer.byteLength(s.body), now: ts };
    const v = await evaluate(a.route.plan, facts, a.route.id, cfg.consumerPolicies, trace, {
      body: () => {
        buffered = Buffer.from(s.body ?? '');
        return Promise.resolve(buffered);
      },
    });
    for (const r of v.releases) r();
    identity = v.identity;
    if (!v.allowed) {
      code = v.deny?.code ?? null;
      policy = v.denyPolicy?.id ?? null;
    }
  }
  return {
    ts,
    requestId: s.id,
    clientIp: peer,
    consumer: identity?.consumer ?? null,
    credentialId: identity?.credentialId ?? null,
    route: a.kind === 'route' ? a.route.id : null,
    method,
    host: headers.host ?? '',
    path,
    status: 0,
    code,
    layer: null,
    policy,
    latencyMs: 1,
    upstreamTarget: null,
    attempts: 0,
    bytesIn: 0,
    bytesOut: 0,
    userAgent: null,
    trace,
    upstreamBody: null,
    monitorDenied: false,
    replay: buildReplayRecord({ config: cfg, headers, query, peer, ipSource: clientAddress(peer, headers, cfg.trustedProxies, cfg.source.trusted_proxy_header).source, identity, body: buffered }),
  };
}

async function jwt(claims: Record<string, unknown>, kid = 'k1'): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', kid })
    .setIssuedAt(Math.floor(T0 / 1000) - 60)
    .setExpirationTime(Math.floor(T0 / 1000) + 3600)
    .sign(new TextEncoder().encode(SECRET));
}

const basicAuth = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** What the report says changed, as `id: from → to` lines (every id, since examples are unbounded). */
function lines(changes: readonly ChangeGroup[]): string[] {
  const code = (d: ChangeGroup['from']): string => (d.outcome === 'denied' ? `${d.code ?? ''}@${d.policy ?? ''}` : d.outcome);
  return changes.flatMap((g) => g.examples.map((id) => `${id}: ${code(g.from)} -> ${code(g.to)}`)).sort();
}

void describe('impact', async () => {
  const A = compile(base());
  const token = await jwt({ sub: 'svc-1', aud: 'api', scope: 'x' });
  const sent: Sent[] = [
    { id: 'r01-read', target: '/orders', headers: { 'x-api-key': K.read } },
    { id: 'r02-gone', target: '/orders', headers: { authorization: `Bearer ${K.gone}` } },
    { id: 'r03-rot', target: '/orders', headers: { 'x-api-key': K.rot } },
    { id: 'r04-ren', target: '/orders', headers: { 'x-api-key': K.ren } },
    { id: 'r05-blocked-ip', target: '/orders', headers: { 'x-api-key': K.ren }, peer: '198.51.100.9' },
    { id: 'r06-post', method: 'POST', target: '/orders', headers: { 'x-api-key': K.ren } },
    { id: 'r07-no-key', target: '/orders' },
    { id: 'r08-unknown-key', target: '/orders', headers: { 'x-api-key': K.unknown } },
    { id: 'r09-denied-ip', target: '/orders', headers: { 'x-api-key': K.read }, peer: '192.0.2.66' },
    { id: 'r10-jwt', target: '/tok', headers: { authorization: `Bearer ${token}` } },
    { id: 'r11-basic-bob', target: '/basic', headers: { authorization: basicAuth('bob', 'bob-password') } },
    { id: 'r12-basic-bob-wrong', target: '/basic', headers: { authorization: basicAuth('bob', 'nope') } },
    { id: 'r13-basic-carol', target: '/basic', headers: { authorization: basicAuth('carol', 'carol-password') } },
    { id: 'r14-body', method: 'POST', target: '/body', headers: { 'x-api-key': K.read, 'content-type': 'application/json' }, body: '{"owner":"alice"}' },
    { id: 'r15-nowhere', target: '/nowhere' },
  ];
  const entries: CallLogEntry[] = [];
  for (const [i, s] of sent.entries()) entries.push(await logged(A, s, i));
  // Logged before replay records existed.
  entries.push({ ...(entries[0] as CallLogEntry), requestId: 'r16-old', replay: null });

  void test('the logged decisions are what the scenario needs', () => {
    const codes = Object.fromEntries(entries.map((e) => [e.requestId, e.code]));
    assert.deepEqual(codes, {
      'r01-read': null,
      'r02-gone': null,
      'r03-rot': null,
      'r04-ren': null,
      'r05-blocked-ip': null,
      'r06-post': 'METHOD_NOT_ALLOWED',
      'r07-no-key': 'AUTH_KEY_MISSING',
      'r08-unknown-key': 'AUTH_KEY_INVALID',
      'r09-denied-ip': 'IP_DENIED',
      'r10-jwt': null,
      'r11-basic-bob': null,
      'r12-basic-bob-wrong': 'BASIC_AUTH_INVALID',
      'r13-basic-carol': null,
      'r14-body': null,
      'r15-nowhere': 'ROUTE_NOT_FOUND',
      'r16-old': null,
    });
    // Nothing secret went into any record.
    const text = JSON.stringify(entries);
    for (const secret of [...Object.values(K), token, 'bob-password', 'carol-password', Buffer.from('bob:bob-password').toString('base64')]) assert.ok(!text.includes(secret));
  });

  void test('the current config replays every replayable request to the decision it logged', async () => {
    const target = new ReplayTarget(A, A);
    for (const e of entries) {
      const r = await target.replay(e);
      if (e.requestId === 'r16-old' || e.requestId === 'r14-body') {
        assert.equal(r.kind, 'unreplayable', e.requestId);
        continue;
      }
      assert.equal(r.kind, 'decided', e.requestId);
      if (r.kind === 'decided') assert.equal(r.verdict.code, e.code, e.requestId);
    }
  });

  void test('a changed config: exactly the changed decisions, with counts, reasons and counters', async () => {
    const b = base();
    const policies = b.policies as Record<string, Obj>;
    const consumers = b.consumers as Obj[];
    const routes = b.routes as Obj[];
    policies.ips = { type: 'ip-rules', config: { deny: ['192.0.2.66', '198.51.100.9'] } };
    (policies.tok as { config: Obj }).config.audience = 'api2';
    policies.rl = { type: 'rate-limit', config: { limits: [{ id: 'per-min', by: ['consumer'], rate: { limit: 10, window: '1m' } }] } };
    consumers[0] = {
      id: 'alice',
      credentials: {
        api_keys: [
          { id: 'k_read', hash: hashKey(K.read), scopes: [] },
          { id: 'k_rot', hash: hashKey('pp_imp_rot_rotated_ffffffffffff'), scopes: ['orders:read'] },
          // Renamed, same key: nothing changes for its caller. Expired after the request came.
          { id: 'k_renamed', hash: hashKey(K.ren), scopes: ['orders:read'], expires_at: '2020-01-11T00:00:00Z' },
          { id: 'k_new', hash: hashKey('pp_imp_new_gggggggggggggggg'), scopes: ['orders:read'] },
        ],
      },
    };
    consumers[1] = { id: 'bob' };
    consumers[2] = { id: 'carol', credentials: { basic_auth: [{ username: 'carol', password_hash: hashPassword('carol-new') }] } };
    (routes[0] as Obj).methods = ['GET', 'POST'];
    const B = compile(b);
    const report = await impact(entries, { current: A, next: B, examples: 100 });
    assert.deepEqual(lines(report.changes), [
      'r01-read: allowed -> AUTH_KEY_SCOPE_MISSING@key',
      'r02-gone: allowed -> AUTH_KEY_INVALID@key',
      'r03-rot: allowed -> AUTH_KEY_INVALID@key',
      'r05-blocked-ip: allowed -> IP_DENIED@ips',
      'r06-post: METHOD_NOT_ALLOWED@router -> allowed',
      'r10-jwt: allowed -> JWT_AUDIENCE_MISMATCH@tok',
      'r11-basic-bob: allowed -> BASIC_AUTH_INVALID@basic',
    ]);
    assert.equal(report.entries, entries.length);
    assert.equal(report.changed, 7);
    assert.deepEqual(report.by_kind, { newly_denied: 6, newly_allowed: 1, denied_differently: 0, answered_differently: 0 });
    const groups = report.changes.map((g) => [g.kind, g.route, g.consumer, g.count]);
    assert.deepEqual(groups.find((g) => g[1] === 'orders' && g[0] === 'newly_denied' && g[3] === 2), ['newly_denied', 'orders', 'alice', 2]);
    assert.deepEqual(
      report.not_replayable.map((g) => [g.examples.join(','), g.config, g.reason.split(':')[0]]).sort(),
      [
        // An unknown value, and the new config adds a key it could be.
        ['r08-unknown-key', 'new', 'api-key'],
        // carol's password changed.
        ['r13-basic-carol', 'new', 'basic-auth'],
        // The current config needs the body; the new one denies before it is read (k_read lost its scope).
        ['r14-body', 'current', 'body not recorded'],
        ['r16-old', 'both', 'no replay record (logged before replay records existed, or with call_log.replay off)'],
      ],
    );
    assert.equal(report.compared, entries.length - 4);
    assert.deepEqual(report.counters, [{ policy: 'rl', type: 'rate-limit', change: 'changed', requests: 2 }]);
  });

  void test('the same config changes nothing', async () => {
    const report = await impact(entries, { current: A, next: compile(base()), examples: 3 });
    assert.equal(report.changed, 0);
    assert.deepEqual(report.changes, []);
    // r01 to r05 reach the counter; r16 has no record.
    assert.deepEqual(report.counters, [{ policy: 'rl', type: 'rate-limit', change: 'unchanged', requests: 5 }]);
  });

  void test('keys are judged at the time the request was logged, not now', async () => {
    const b = base();
    const consumers = b.consumers as { credentials: { api_keys: Obj[] } }[];
    const keys = consumers[0]?.credentials.api_keys ?? [];
    (keys[3] as Obj).expires_at = '2020-01-10T11:00:00Z'; // an hour before r04 came
    (keys[0] as Obj).expires_at = '2020-01-10T13:00:00Z'; // an hour after r01 came, long before now
    const report = await impact(entries, { current: A, next: compile(b), examples: 100 });
    assert.deepEqual(lines(report.changes), ['r04-ren: allowed -> AUTH_KEY_EXPIRED@key', 'r05-blocked-ip: allowed -> AUTH_KEY_EXPIRED@key']);
  });

  void test('tokens: claims are re-checked; other keys or an unrecorded claim the new config reads make the request not replayable', async () => {
    const tokenWithTenant = await jwt({ sub: 'svc-2', aud: 'api', tenant: 't1' });
    const e = await logged(A, { id: 'j2', target: '/tok', headers: { authorization: `Bearer ${tokenWithTenant}` } }, 0);
    assert.deepEqual(e.replay?.otherClaims, ['tenant']);
    const jwtEntry = entries.find((x) => x.requestId === 'r10-jwt') as CallLogEntry;
    const withTok = (config: Obj): CompiledConfig => {
      const b = base();
      (b.policies as Record<string, Obj>).tok = { type: 'jwt', config };
      return compile(b);
    };
    const reason = async (cfg: CompiledConfig, entry: CallLogEntry): Promise<string> => {
      const r = await new ReplayTarget(cfg, A).replay(entry);
      return r.kind === 'unreplayable' ? r.reason : `decided ${r.verdict.code ?? r.verdict.outcome}`;
    };
    const tok = { algorithms: ['HS256'], keys: [{ kid: 'k1', secret_env: 'JWT_SECRET' }], audience: 'api' };
    assert.match(await reason(withTok({ ...tok, keys: [{ kid: 'k2', secret_env: 'JWT_SECRET' }] }), jwtEntry), /^jwt: tok verifies tokens differently/);
    assert.match(await reason(withTok({ ...tok, required_claims: ['tenant'] }), e), /^jwt: claim tenant is read by this config but was not recorded/);
    // A claim the token never had is certain to be missing.
    assert.equal(await reason(withTok({ ...tok, required_claims: ['jti'] }), jwtEntry), 'decided JWT_CLAIM_MISSING');
  });

  void test('a double-submit CSRF check and a repeated header replay to what they were, though the values are gone', async () => {
    const withCsrf = base();
    (withCsrf.policies as Record<string, Obj>).csrf = { type: 'csrf' };
    (withCsrf.routes as Obj[]).push({ id: 'form', paths: ['/form'], methods: ['POST'], upstream: 'u', policies: ['csrf'] });
    const C = compile(withCsrf);
    const same = await logged(C, { id: 'c1', method: 'POST', target: '/form', headers: { cookie: 'csrf_token=abc123; s=1', 'x-csrf-token': 'abc123' } }, 0);
    const other = await logged(C, { id: 'c2', method: 'POST', target: '/form', headers: { cookie: 'csrf_token=abc123', 'x-csrf-token': 'zzz' } }, 1);
    assert.deepEqual([same.code, other.code], [null, 'CSRF_TOKEN_MISMATCH']);
    const target = new ReplayTarget(C, C);
    const code = async (e: CallLogEntry): Promise<string | null> => {
      const r = await target.replay(e);
      return r.kind === 'decided' ? r.verdict.code ?? r.verdict.outcome : r.reason;
    };
    assert.deepEqual([await code(same), await code(other)], ['allowed', 'CSRF_TOKEN_MISMATCH']);
    // Node keeps one Host of two; the logged trace says there were two.
    const dup: CallLogEntry = { ...same, code: 'REQUEST_HEADER_DUPLICATED', trace: [{ policy: 'http', type: 'http', outcome: 'deny', rule: 'host sent more than once', code: 'REQUEST_HEADER_DUPLICATED', evidence: { header: 'host' }, us: 0 }] };
    assert.equal(await code(dup), 'REQUEST_HEADER_DUPLICATED');
  });

  void test('a request whose body was kept replays through a policy that reads it', async () => {
    const withBody = { ...base(), call_log: { replay_body_bytes: 1024 } };
    const A2 = compile(withBody);
    const e = await logged(A2, { id: 'b1', method: 'POST', target: '/body', headers: { 'x-api-key': K.read, 'content-type': 'application/json' }, body: '{"owner":"alice"}' }, 0);
    const b = structuredClone(withBody) as Obj;
    ((b.policies as Record<string, Obj>).own as { config: Obj }).config = { resource: { from: 'body', name: '/owner' }, claim: 'consumer', methods: ['POST'], override_permissions: [] };
    const r = await new ReplayTarget(compile(b), A2).replay(e);
    assert.deepEqual(r.kind === 'decided' ? [r.verdict.outcome, r.verdict.consumer] : r, ['allowed', 'alice']);
    const other = { ...e, replay: e.replay === null || e.replay === undefined ? null : { ...e.replay, body: { base64: Buffer.from('{"owner":"mallory"}').toString('base64'), bytes: 19 } } };
    const r2 = await new ReplayTarget(A2, A2).replay(other);
    assert.deepEqual(r2.kind === 'decided' ? [r2.verdict.code, r2.verdict.policy] : r2, ['OWNERSHIP_NOT_OWNER', 'own']);
    const cut = { ...e, replay: e.replay === null || e.replay === undefined ? null : { ...e.replay, body: { base64: 'e30=', bytes: 17 } } };
    const r3 = await new ReplayTarget(A2, A2).replay(cut);
    assert.equal(r3.kind, 'unreplayable');
    assert.match(r3.kind === 'unreplayable' ? r3.reason : '', /^body not recorded/);
  });
});

void describe('changeOf', () => {
  const v = (outcome: Verdict['outcome'], code: Verdict['code'] = null, policy: string | null = null, status: number | null = null): Verdict => ({ outcome, code, policy, status, route: 'r', consumer: null, counters: [] });
  void test('classifies every pair', () => {
    assert.equal(changeOf(v('allowed'), v('allowed')), undefined);
    assert.equal(changeOf(v('allowed'), v('denied', 'IP_DENIED', 'ips', 403)), 'newly_denied');
    assert.equal(changeOf(v('answered', null, 'cors', 204), v('denied', 'IP_DENIED', 'ips', 403)), 'newly_denied');
    assert.equal(changeOf(v('denied', 'IP_DENIED', 'ips', 403), v('allowed')), 'newly_allowed');
    assert.equal(changeOf(v('denied', 'IP_DENIED', 'ips', 403), v('denied', 'IP_DENIED', 'ips', 403)), undefined);
    assert.equal(changeOf(v('denied', 'IP_DENIED', 'ips', 403), v('denied', 'IP_DENIED', 'ips2', 403)), 'denied_differently');
    assert.equal(changeOf(v('denied', 'IP_DENIED', 'ips', 403), v('denied', 'IP_NOT_ALLOWED', 'ips', 403)), 'denied_differently');
    assert.equal(changeOf(v('allowed'), v('answered', null, 'cors', 204)), 'answered_differently');
  });
});
