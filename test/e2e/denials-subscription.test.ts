/**
 * E2E: the subscription and tenant rows of /work/shared/denial-causes.md (causes 12 and 13), one
 * describe per row and one test per code, named by the code. Each test provokes the cause over real
 * sockets (gateway and upstream on 127.0.0.1:0), asserts the problem envelope (status, code, layer,
 * policy), checks that `diagnose` (the dry run over the same pipeline) gives the same answer, and
 * then applies what the remediation says — the API owner approves or renews the subscription, the
 * caller names its own tenant, the operator gives the consumer a team — and asserts that the
 * request reaches the upstream.
 *
 * Subscriptions and teams are consumer config today, so the owner's or operator's fix is a config
 * edit and a reload, as an operator would apply it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { parse, stringify } from 'yaml';
import { diagnose } from '../../src/diagnose/diagnose.ts';
import { assertProblem, send, startGateway, startUpstream, type Gateway, type Problem, type Reply, type SeenRequest, type SendOptions, type Upstream } from '../helpers/harness.ts';

// ---------------------------------------------------------------------------------------------
// Credentials and config

const KEYS = {
  shop: 'pp_e2e_sub_shop_5f0c2a7e91d3b864',
  stranger: 'pp_e2e_sub_stranger_0a9b8c7d6e5f',
  newbie: 'pp_e2e_sub_newbie_1122334455667788',
  banned: 'pp_e2e_sub_banned_99aabbccddeeff00',
  lapsed: 'pp_e2e_sub_lapsed_13579bdf2468ace0',
  paused: 'pp_e2e_sub_paused_fedcba9876543210',
  loner: 'pp_e2e_sub_loner_0f1e2d3c4b5a6978',
  support: 'pp_e2e_sub_support_a1b2c3d4e5f60718',
} as const;

const sha = (key: string): string => `sha256:${createHash('sha256').update(key).digest('hex')}`;

const JWT_SECRET = 'e2e-tenant-hmac-secret-0123456789abcdef-0123456789abcdef-0123';
const ISSUER = 'https://issuer.e2e.test';
const AUDIENCE = 'pinpoint-e2e-api';
const ENV = { E2E_TENANT_JWT_SECRET: JWT_SECRET };

async function token(claims: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg: 'HS256', kid: 'hs1', typ: 'JWT' })
    .sign(new TextEncoder().encode(JWT_SECRET));
}

function consumer(id: string, extra: Record<string, unknown> = {}, scopes: string[] = []): Record<string, unknown> {
  return { id, credentials: { api_keys: [{ id: `k_${id}`, hash: sha(KEYS[id as keyof typeof KEYS]), scopes }] }, ...extra };
}

function gatewayConfig(upstream: string): Record<string, unknown> {
  return {
    version: 1,
    errors: { mode: 'detailed' },
    upstreams: { svc: { targets: [{ url: upstream }] } },
    policies: {
      keys: { type: 'api-key', config: {} },
      jwt: { type: 'jwt', config: { algorithms: ['HS256'], keys: [{ kid: 'hs1', secret_env: 'E2E_TENANT_JWT_SECRET' }], issuer: ISSUER, audience: AUDIENCE } },
      'orders-subscribers': { type: 'subscription', config: { api: 'orders' } },
      'team-path': { type: 'tenant', config: { tenant: { from: 'param', name: 'team' } } },
      'team-header': { type: 'tenant', config: { tenant: { from: 'header', name: 'x-tenant-id' }, override_scopes: ['tenants:admin'] } },
      'team-claim': { type: 'tenant', config: { tenant: { from: 'header', name: 'x-tenant-id' }, claim: 'tenant_id' } },
    },
    consumers: [
      consumer('shop', { team: 'acme', subscriptions: [{ api: 'orders', status: 'active', plan: 'pro' }] }),
      consumer('stranger', { subscriptions: [{ api: 'orders-v1', status: 'active' }] }),
      consumer('newbie', { subscriptions: [{ api: 'orders', status: 'pending', plan: 'free' }] }),
      consumer('banned', { subscriptions: [{ api: 'orders', status: 'rejected' }] }),
      consumer('lapsed', { subscriptions: [{ api: 'orders', status: 'active', plan: 'pro', expires_at: '2024-01-01T00:00:00Z' }] }),
      consumer('paused', { subscriptions: [{ api: 'orders', status: 'suspended', plan: 'pro' }] }),
      consumer('loner'),
      consumer('support', { team: 'staff' }, ['tenants:admin']),
    ],
    routes: [
      { id: 'orders', paths: ['/orders', '/orders/{id}'], methods: ['GET', 'POST'], upstream: 'svc', policies: ['keys', 'orders-subscribers'] },
      { id: 'projects', paths: ['/teams/{team}/projects'], methods: ['GET', 'POST'], upstream: 'svc', policies: ['keys', 'team-path'] },
      { id: 'reports', paths: ['/reports'], methods: ['GET'], upstream: 'svc', policies: ['keys', 'team-header'] },
      { id: 'sso-reports', paths: ['/sso/reports'], methods: ['GET'], upstream: 'svc', policies: ['jwt', 'team-claim'] },
    ],
  };
}

let up: Upstream;
let gw: Gateway;

before(async () => {
  up = await startUpstream();
  gw = await startGateway(gatewayConfig(up.url), { env: ENV });
});

after(async () => {
  await gw.close();
  await up.close();
});

// ---------------------------------------------------------------------------------------------
// Helpers

const url = (path: string): string => `${gw.url}${path}`;

interface Want {
  readonly status: number;
  readonly code: string;
  readonly layer: string;
  readonly policy: string;
}

/**
 * Sends a request that must be denied: the envelope, the policy header, the upstream never saw it,
 * and `diagnose` describing the same request gives the same code, policy and status.
 */
async function denied(path: string, opts: SendOptions, want: Want): Promise<Problem & { evidence: Record<string, unknown> }> {
  const r = await send(url(path), opts);
  const p = assertProblem(r, want);
  assert.equal(r.headers['x-pinpoint-policy'], want.policy);
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.equal(seenBy(r), undefined, 'a denied request never reaches the upstream');
  assert.ok(p.evidence !== undefined && typeof p.evidence === 'object', 'detailed mode carries evidence');
  assert.equal(typeof p.remediation, 'string');
  assert.ok(!/\{[a-z_]+\}/.test(p.remediation ?? ''), `remediation fully filled: ${p.remediation ?? ''}`);

  const headers: Record<string, string> = { host: `127.0.0.1:${gw.port}` };
  for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  const d = await diagnose(gw.app.config, { method: opts.method ?? 'GET', target: path, headers });
  assert.deepEqual([d.verdict, d.code, d.policy, d.status], ['denied', want.code, want.policy, want.status], 'diagnose agrees with live enforcement');
  return p as Problem & { evidence: Record<string, unknown> };
}

function seenBy(r: Reply): SeenRequest | undefined {
  const id = r.headers['x-request-id'];
  return up.requests.find((q) => q.headers['x-request-id'] === id);
}

/** A passing request: 2xx from the upstream, no gateway marks, and the upstream saw this very request. */
async function reaches(path: string, opts: SendOptions = {}): Promise<SeenRequest> {
  const r = await send(url(path), opts);
  assert.ok(r.status >= 200 && r.status < 300, `expected the upstream's 2xx, got ${r.status}: ${r.text}`);
  assert.equal(r.headers['x-pinpoint-code'], undefined);
  const seen = seenBy(r);
  assert.ok(seen !== undefined, 'the upstream saw the request');
  assert.equal(seen.method, opts.method ?? 'GET');
  assert.equal(seen.path, path);
  return seen;
}

/** Edits the gateway's config file and reloads it: what the API owner or operator does to apply a fix. */
function reconfigure(edit: (cfg: Record<string, unknown>) => void): void {
  const cfg = parse(readFileSync(gw.configFile, 'utf8')) as Record<string, unknown>;
  edit(cfg);
  writeFileSync(gw.configFile, stringify(cfg));
  const result = gw.app.reload();
  assert.equal(result.applied, true, JSON.stringify(result.issues));
}

interface ConsumerEntry {
  id: string;
  team?: string;
  subscriptions?: { api: string; status: string; expires_at?: string; plan?: string }[];
}

/** Changes one consumer's config entry. */
function editConsumer(id: string, edit: (c: ConsumerEntry) => void): void {
  reconfigure((cfg) => {
    const c = (cfg.consumers as ConsumerEntry[]).find((x) => x.id === id);
    assert.ok(c !== undefined, `consumer ${id} is configured`);
    edit(c);
  });
}

/** Sets the status of a consumer's subscription to `api` (adding one if it has none). */
function setSubscription(id: string, api: string, status: string, extra: { expires_at?: string } = {}): void {
  editConsumer(id, (c) => {
    c.subscriptions ??= [];
    const s = c.subscriptions.find((x) => x.api === api);
    if (s === undefined) c.subscriptions.push({ api, status, ...extra });
    else Object.assign(s, { status, ...extra });
  });
}

const key = (k: string): Record<string, string> => ({ 'x-api-key': k });

// ---------------------------------------------------------------------------------------------
// The causes

void describe('cause 12: not subscribed, or the subscription is pending, rejected, expired or suspended', () => {
  void test('SUBSCRIPTION_MISSING', async () => {
    const p = await denied('/orders', { headers: key(KEYS.stranger) }, { status: 403, code: 'SUBSCRIPTION_MISSING', layer: 'gateway', policy: 'orders-subscribers' });
    assert.deepEqual(
      [p.evidence.consumer, p.evidence.api, p.evidence.status, p.evidence.expires_at, p.evidence.plan, p.evidence.subscribed_apis, p.evidence.known_consumer],
      ['stranger', 'orders', null, null, null, ['orders-v1'], true],
      'evidence says it is subscribed to another API only',
    );

    // The fix: subscribe to the API the evidence names, and have the subscription approved.
    setSubscription('stranger', String(p.evidence.api), 'active');
    await reaches('/orders', { headers: key(KEYS.stranger) });
  });

  void test('SUBSCRIPTION_PENDING', async () => {
    const p = await denied('/orders/7', { method: 'POST', headers: { ...key(KEYS.newbie), 'content-type': 'application/json' }, body: '{}' }, {
      status: 403,
      code: 'SUBSCRIPTION_PENDING',
      layer: 'gateway',
      policy: 'orders-subscribers',
    });
    assert.deepEqual([p.evidence.consumer, p.evidence.api, p.evidence.status, p.evidence.plan], ['newbie', 'orders', 'pending', 'free']);
    assert.match(p.remediation ?? '', /wait until the API owner approves it/);
    assert.match(p.remediation ?? '', /API orders/);

    // The fix: the API owner approves; the very same request then passes.
    setSubscription('newbie', 'orders', 'active');
    await reaches('/orders/7', { method: 'POST', headers: { ...key(KEYS.newbie), 'content-type': 'application/json' }, body: '{}' });
  });

  void test('SUBSCRIPTION_REJECTED', async () => {
    const p = await denied('/orders', { headers: key(KEYS.banned) }, { status: 403, code: 'SUBSCRIPTION_REJECTED', layer: 'gateway', policy: 'orders-subscribers' });
    assert.deepEqual([p.evidence.consumer, p.evidence.api, p.evidence.status], ['banned', 'orders', 'rejected']);

    // The fix: apply again, and this time the owner approves.
    setSubscription('banned', 'orders', 'active');
    await reaches('/orders', { headers: key(KEYS.banned) });
  });

  void test('SUBSCRIPTION_EXPIRED', async () => {
    const p = await denied('/orders', { headers: key(KEYS.lapsed) }, { status: 403, code: 'SUBSCRIPTION_EXPIRED', layer: 'gateway', policy: 'orders-subscribers' });
    assert.deepEqual(
      [p.evidence.consumer, p.evidence.api, p.evidence.status, p.evidence.expires_at, p.evidence.plan, p.evidence.expired_by],
      ['lapsed', 'orders', 'active', '2024-01-01T00:00:00.000Z', 'pro', 'expires_at'],
    );
    assert.equal(typeof p.evidence.expired_seconds_ago, 'number');
    assert.ok((p.evidence.expired_seconds_ago as number) > 0);
    assert.match(p.remediation ?? '', /expired \(at 2024-01-01T00:00:00\.000Z/);

    // The fix: renew it.
    setSubscription('lapsed', 'orders', 'active', { expires_at: new Date(Date.now() + 365 * 86_400_000).toISOString() });
    await reaches('/orders', { headers: key(KEYS.lapsed) });
  });

  void test('SUBSCRIPTION_SUSPENDED', async () => {
    const p = await denied('/orders', { headers: key(KEYS.paused) }, { status: 403, code: 'SUBSCRIPTION_SUSPENDED', layer: 'gateway', policy: 'orders-subscribers' });
    assert.deepEqual([p.evidence.consumer, p.evidence.api, p.evidence.status, p.evidence.plan], ['paused', 'orders', 'suspended', 'pro']);

    // The fix: the API owner reinstates it.
    setSubscription('paused', 'orders', 'active');
    await reaches('/orders', { headers: key(KEYS.paused) });
  });
});

void describe('cause 13: tenant / team mismatch', () => {
  void test('TENANT_MISMATCH', async (t) => {
    await t.test('an API key of team acme naming team globex in the path', async () => {
      const p = await denied('/teams/globex/projects', { headers: key(KEYS.shop) }, { status: 403, code: 'TENANT_MISMATCH', layer: 'gateway', policy: 'team-path' });
      assert.deepEqual(
        [p.evidence.requested_tenant, p.evidence.caller_tenant, p.evidence.caller_tenant_source, p.evidence.tenant, p.evidence.consumer],
        ['globex', 'acme', 'consumers[].team', 'path parameter team', 'shop'],
      );

      // The fix: act in the caller's own tenant, as the evidence names it.
      await reaches(`/teams/${String(p.evidence.caller_tenant)}/projects`, { headers: key(KEYS.shop) });
    });

    await t.test('a token whose tenant_id claim is another tenant than the one in the header', async () => {
      const sso = await token({ sub: 'u-42', tenant_id: 'initech' });
      const headers = { authorization: `Bearer ${sso}`, 'x-tenant-id': 'acme' };
      const p = await denied('/sso/reports', { headers }, { status: 403, code: 'TENANT_MISMATCH', layer: 'gateway', policy: 'team-claim' });
      assert.deepEqual([p.evidence.requested_tenant, p.evidence.caller_tenant, p.evidence.caller_tenant_source], ['acme', 'initech', 'claim tenant_id']);

      await reaches('/sso/reports', { headers: { ...headers, 'x-tenant-id': String(p.evidence.caller_tenant) } });
    });

    await t.test('a caller holding an override scope crosses tenants', async () => {
      await reaches('/reports', { headers: { ...key(KEYS.support), 'x-tenant-id': 'globex' } });
    });
  });

  void test('TENANT_UNKNOWN', async () => {
    const p = await denied('/teams/acme/projects', { method: 'POST', headers: key(KEYS.loner), body: '' }, { status: 403, code: 'TENANT_UNKNOWN', layer: 'gateway', policy: 'team-path' });
    assert.deepEqual([p.evidence.consumer, p.evidence.requested_tenant, p.evidence.looked_in, p.evidence.known_consumer], ['loner', 'acme', 'consumers[].team', true]);

    // The fix: the operator gives the consumer its team.
    editConsumer('loner', (c) => (c.team = 'acme'));
    await reaches('/teams/acme/projects', { method: 'POST', headers: key(KEYS.loner), body: '' });
  });

  void test('TENANT_MISSING', async () => {
    const p = await denied('/reports', { headers: key(KEYS.shop) }, { status: 400, code: 'TENANT_MISSING', layer: 'client', policy: 'team-header' });
    assert.deepEqual([p.evidence.tenant, p.evidence.problem], ['header x-tenant-id', 'absent']);

    // The fix: send the header the evidence names, with the caller's tenant.
    const header = /^header (.+)$/.exec(String(p.evidence.tenant))?.[1];
    assert.ok(header !== undefined);
    await reaches('/reports', { headers: { ...key(KEYS.shop), [header]: 'acme' } });
  });

  void test('TENANT_AMBIGUOUS', async () => {
    // Two header lines: the gateway and the upstream could each believe another one.
    const p = await denied('/reports', { headers: { ...key(KEYS.shop), 'x-tenant-id': ['acme', 'globex'] } }, { status: 400, code: 'TENANT_AMBIGUOUS', layer: 'client', policy: 'team-header' });
    assert.deepEqual([p.evidence.tenant, p.evidence.count], ['header x-tenant-id', 2]);

    await reaches('/reports', { headers: { ...key(KEYS.shop), 'x-tenant-id': 'acme' } });
  });
});
