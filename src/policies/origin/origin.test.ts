/**
 * `origin` through the real schema (defaults), compile() and decide(); plus the shared origin-list
 * matcher (exact entries, patterns, normalisation) that `cors` uses too.
 */
import { expectConfigIssues, context, decideSync } from '../../pipeline/testing.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { validate } from '../../config/validate.ts';
import { CATALOG } from '../../errors/catalog.ts';
import type { CompiledPolicy, ConfigIssue, Decision, Deny, RequestFacts } from '../../pipeline/types.ts';
import { refererOrigin } from './decide.ts';
import { origin } from './index.ts';
import { compileOrigins } from './origins.ts';
import { OriginSchema, type OriginConfig } from './schema.ts';

const PATH = 'policies.same-site.config';
const CTX = { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: {}, path: PATH, baseDir: process.cwd() };

function compile(config: Record<string, unknown>): CompiledPolicy {
  const c = structuredClone(config);
  assert.deepEqual(validate(OriginSchema, c, PATH), [], 'test config must pass the schema');
  return origin.compile(c as OriginConfig, { id: 'same-site', mode: 'enforce' }, CTX);
}

function decide(p: CompiledPolicy, method: string, headers: Record<string, string | string[]>): Decision {
  const facts: RequestFacts = {
    method,
    path: '/orders',
    rawQuery: '',
    host: 'api.example.com',
    headers: { host: 'api.example.com', ...headers },
    clientIp: '198.51.100.7',
    clientIpSource: 'socket',
    params: {},
    contentLength: undefined,
    now: 0,
  };
  return decideSync(p, context({ facts, routeId: 'orders' }));
}

const APP = 'https://app.example.com';
const ALLOWED = [APP, 'https://*.shop.example', 'http://localhost:*'];
const BASE = { allowed_origins: ALLOWED };
/** A browser's WebSocket opening handshake (RFC 6455 §4.1), with the site's session cookie. */
const WS = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', cookie: 'session=s1' };
/** What explain shows for a handshake whose method is not listed: why a GET was checked. */
const WS_WHY = ' (GET with Upgrade: websocket: handshakes are always checked)';

interface Case {
  readonly name: string;
  readonly config?: Record<string, unknown>;
  readonly method?: string;
  readonly headers: Record<string, string | string[]>;
  readonly expect: 'allow' | 'skip' | Deny['code'];
  readonly rule?: string;
  readonly evidence?: Record<string, unknown>;
}

const CASES: readonly Case[] = [
  // Allowed.
  { name: 'exact origin', headers: { origin: APP }, expect: 'allow', rule: `origin ${APP}`, evidence: { origin: APP, source: 'origin' } },
  { name: 'subdomain pattern', headers: { origin: 'https://eu.shop.example' }, expect: 'allow', rule: 'origin https://*.shop.example' },
  { name: 'port pattern', method: 'DELETE', headers: { origin: 'http://localhost:3000' }, expect: 'allow', rule: 'origin http://localhost:*' },
  { name: 'port pattern, no port', method: 'PUT', headers: { origin: 'http://localhost' }, expect: 'allow' },
  { name: 'upper-case Origin from a non-browser client', method: 'PATCH', headers: { origin: 'HTTPS://APP.EXAMPLE.COM' }, expect: 'allow' },
  {
    name: 'no Origin: Referer origin allowed (path and query never kept)',
    headers: { referer: 'https://app.example.com/cart?session=abc#x' },
    expect: 'allow',
    rule: `referer origin ${APP}`,
    evidence: { referer_origin: APP, source: 'referer' },
  },
  { name: 'Origin wins over Referer', headers: { origin: APP, referer: 'https://evil.test/' }, expect: 'allow' },
  { name: 'allow_missing lets a header-less client through', config: { ...BASE, allow_missing: true }, headers: {}, expect: 'allow', evidence: { source: 'none' } },

  // WebSocket handshakes: checked whatever the method (cross-site WebSocket hijacking, RFC 6455 §10.2).
  { name: 'handshake from an allowed origin', method: 'GET', headers: { ...WS, origin: APP }, expect: 'allow', rule: `origin ${APP}${WS_WHY}` },
  {
    name: 'cross-site handshake with cookies',
    method: 'GET',
    headers: { ...WS, origin: 'https://evil.com' },
    expect: 'ORIGIN_NOT_ALLOWED',
    rule: `origin https://evil.com not allowed${WS_WHY}`,
    evidence: { method: 'GET', origin: 'https://evil.com', allowed_origins: ALLOWED },
  },
  { name: 'handshake: Upgrade is case-insensitive and may list versions', method: 'GET', headers: { ...WS, upgrade: 'foo, WebSocket/13', origin: 'https://evil.com' }, expect: 'ORIGIN_NOT_ALLOWED' },
  { name: 'handshake without Origin (not a browser)', method: 'GET', headers: WS, expect: 'ORIGIN_MISSING', rule: `no Origin and no usable Referer${WS_WHY}`, evidence: { method: 'GET' } },
  { name: 'handshake without Origin, allow_missing', config: { ...BASE, allow_missing: true }, method: 'GET', headers: WS, expect: 'allow', rule: `no Origin or usable Referer; allow_missing${WS_WHY}` },
  { name: 'handshake, no Origin, Referer from another site', method: 'GET', headers: { ...WS, referer: 'https://evil.test/' }, expect: 'ORIGIN_REFERER_NOT_ALLOWED' },
  { name: 'handshake with a listed method: the usual rule', config: { ...BASE, methods: ['GET'] }, method: 'GET', headers: { ...WS, origin: APP }, expect: 'allow', rule: `origin ${APP}` },
  { name: 'handshake whatever the method list', config: { ...BASE, methods: ['DELETE'] }, method: 'GET', headers: { ...WS, origin: 'https://evil.com' }, expect: 'ORIGIN_NOT_ALLOWED' },

  // Skipped.
  { name: 'GET is safe: skipped', method: 'GET', headers: { origin: 'https://evil.test' }, expect: 'skip' },
  { name: 'GET with another Upgrade (h2c, never a browser\u2019s): skipped', method: 'GET', headers: { ...WS, upgrade: 'h2c', origin: 'https://evil.test' }, expect: 'skip' },
  { name: 'OPTIONS is safe: skipped', method: 'OPTIONS', headers: {}, expect: 'skip' },
  { name: 'configured methods only', config: { ...BASE, methods: ['delete'] }, method: 'POST', headers: {}, expect: 'skip' },

  // ORIGIN_NOT_ALLOWED.
  { name: 'other origin', headers: { origin: 'https://evil.test' }, expect: 'ORIGIN_NOT_ALLOWED', evidence: { method: 'POST', origin: 'https://evil.test', allowed_origins: ALLOWED } },
  { name: 'opaque origin "null"', method: 'PUT', headers: { origin: 'null' }, expect: 'ORIGIN_NOT_ALLOWED', evidence: { method: 'PUT', origin: 'null' } },
  { name: 'http instead of https', headers: { origin: 'http://app.example.com' }, expect: 'ORIGIN_NOT_ALLOWED' },
  { name: 'pattern does not cover the apex', headers: { origin: 'https://shop.example' }, expect: 'ORIGIN_NOT_ALLOWED' },
  { name: 'pattern does not cover two labels', headers: { origin: 'https://a.b.shop.example' }, expect: 'ORIGIN_NOT_ALLOWED' },
  { name: 'suffix look-alike', headers: { origin: 'https://eu.shop.example.evil.test' }, expect: 'ORIGIN_NOT_ALLOWED' },
  { name: 'prefix look-alike', headers: { origin: 'https://evilapp.example.com' }, expect: 'ORIGIN_NOT_ALLOWED' },
  { name: 'port pattern is not a host pattern', headers: { origin: 'http://localhost.evil.test' }, expect: 'ORIGIN_NOT_ALLOWED' },
  { name: 'two Origin values joined by a proxy', headers: { origin: `${APP}, https://evil.test` }, expect: 'ORIGIN_NOT_ALLOWED' },
  { name: 'Origin not allowed even though Referer is', headers: { origin: 'https://evil.test', referer: `${APP}/` }, expect: 'ORIGIN_NOT_ALLOWED' },

  // ORIGIN_REFERER_NOT_ALLOWED.
  {
    name: 'no Origin, Referer from another site: only its origin in evidence',
    method: 'DELETE',
    headers: { referer: 'https://evil.test/steal?token=s3cr3t' },
    expect: 'ORIGIN_REFERER_NOT_ALLOWED',
    evidence: { method: 'DELETE', referer_origin: 'https://evil.test', allowed_origins: ALLOWED },
  },

  // ORIGIN_MISSING.
  { name: 'neither Origin nor Referer', headers: {}, expect: 'ORIGIN_MISSING', evidence: { method: 'POST', referer: 'absent' } },
  { name: 'empty Origin counts as absent', headers: { origin: '' }, expect: 'ORIGIN_MISSING' },
  { name: 'unparseable Referer', headers: { referer: 'not a url' }, expect: 'ORIGIN_MISSING', evidence: { referer: 'unusable' } },
  { name: 'about:blank Referer has no origin', headers: { referer: 'about:blank' }, expect: 'ORIGIN_MISSING', evidence: { referer: 'unusable' } },
  {
    name: 'fallback off: an allowed Referer is not enough',
    config: { ...BASE, allow_referer_fallback: false },
    headers: { referer: `${APP}/page` },
    expect: 'ORIGIN_MISSING',
    evidence: { referer: 'ignored (allow_referer_fallback: false)' },
  },
];

void describe('origin decide', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const d = decide(compile(c.config ?? BASE), c.method ?? 'POST', c.headers);
      if (c.expect === 'allow' || c.expect === 'skip') assert.equal(d.outcome, c.expect, JSON.stringify(d));
      else {
        assert.equal(d.outcome, 'deny', JSON.stringify(d));
        assert.equal(d.code, c.expect);
        assert.equal(CATALOG[d.code].status, 403);
        assert.equal(d.headers, undefined);
      }
      if (c.rule !== undefined) assert.equal(d.rule, c.rule);
      if (c.evidence !== undefined) {
        assert.ok(d.outcome !== 'skip');
        for (const [k, v] of Object.entries(c.evidence)) assert.deepEqual(d.evidence?.[k], v, `evidence.${k}`);
      }
      // The Referer's path and query (which can carry tokens) never reach the decision.
      assert.ok(!JSON.stringify(d).includes('s3cr3t') && !JSON.stringify(d).includes('session=abc'));
    });
  }

  void test('every catalog remediation placeholder is filled by the evidence of its denial', () => {
    for (const c of CASES) {
      const d = decide(compile(c.config ?? BASE), c.method ?? 'POST', c.headers);
      if (d.outcome !== 'deny') continue;
      for (const m of CATALOG[d.code].remediation.matchAll(/\{([a-z_]+)\}/g)) assert.ok(m[1] !== undefined && m[1] in d.evidence, `${d.code}: {${m[1]}} not in evidence`);
    }
  });

  void test('refererOrigin: origin only, http(s) only', () => {
    const table: readonly [string, string | undefined][] = [
      ['https://app.example.com/a/b?c=d#e', 'https://app.example.com'],
      ['https://app.example.com:443/', 'https://app.example.com'],
      ['http://localhost:3000/x', 'http://localhost:3000'],
      ['about:blank', undefined],
      ['data:text/html,hi', undefined],
      ['/relative', undefined],
      ['', undefined],
    ];
    for (const [input, out] of table) assert.equal(refererOrigin(input), out, input);
  });
});

void describe('origin list matcher (shared with cors)', () => {
  const MATCH: readonly { entry: string; origin: string; match: boolean }[] = [
    { entry: 'https://App.Example.com:443/', origin: 'https://app.example.com', match: true },
    { entry: 'http://localhost:80', origin: 'http://localhost', match: true },
    { entry: 'http://localhost:8080', origin: 'http://localhost:8080', match: true },
    { entry: 'http://localhost:8080', origin: 'http://localhost', match: false },
    { entry: 'https://bücher.example', origin: 'https://xn--bcher-kva.example', match: true },
    { entry: 'https://*.bücher.example', origin: 'https://shop.xn--bcher-kva.example', match: true },
    { entry: 'http://[::1]:8080', origin: 'http://[::1]:8080', match: true },
    { entry: 'http://[::1]', origin: 'http://[::1]', match: true },
    { entry: 'http://127.0.0.1:*', origin: 'http://127.0.0.1:5173', match: true },
    { entry: 'https://*.example.com', origin: 'https://x-1.example.com', match: true },
    { entry: 'https://*.example.com', origin: 'https://example.com', match: false },
    { entry: 'https://*.example.com', origin: 'https://a.b.example.com', match: false },
    { entry: 'https://*.example.com', origin: 'https://aexample.com', match: false },
    { entry: 'https://*.example.com:*', origin: 'https://a.example.com:8443', match: true },
    { entry: 'https://*.example.com', origin: 'https://a.example.com:8443', match: false },
    { entry: 'chrome-extension://abcdef', origin: 'chrome-extension://abcdef', match: true },
    { entry: 'https://app.example.com', origin: 'null', match: false },
  ];
  for (const c of MATCH) {
    void test(`${c.entry} ${c.match ? 'matches' : 'does not match'} ${c.origin}`, () => {
      const issues: ConfigIssue[] = [];
      const m = compileOrigins([c.entry], 'p', issues, { allowStar: false });
      assert.deepEqual(issues, []);
      assert.equal(m.match(c.origin), c.match ? c.entry : undefined);
    });
  }

  void test('"*" matches everything, "null" included, when allowed', () => {
    const m = compileOrigins(['*'], 'p', [], { allowStar: true });
    assert.equal(m.any, true);
    for (const o of ['https://a.test', 'null', 'http://localhost:1']) assert.equal(m.match(o), '*');
  });
});

interface ErrorCase {
  readonly name: string;
  readonly config: Record<string, unknown>;
  readonly issues: readonly { path: string; message: RegExp }[];
}

const ERROR_CASES: readonly ErrorCase[] = [
  { name: '"*" would protect nothing', config: { allowed_origins: [APP, '*'] }, issues: [{ path: `${PATH}.allowed_origins[1]`, message: /"\*" is not allowed here: it would allow every site/ }] },
  { name: '"null"', config: { allowed_origins: ['null'] }, issues: [{ path: `${PATH}.allowed_origins[0]`, message: /any site can send it/ }] },
  { name: 'no scheme', config: { allowed_origins: ['app.example.com/'] }, issues: [{ path: `${PATH}.allowed_origins[0]`, message: /no scheme: an origin is written like https:\/\/app\.example\.com$/ }] },
  { name: 'a path', config: { allowed_origins: ['https://app.example.com/login'] }, issues: [{ path: `${PATH}.allowed_origins[0]`, message: /path/ }] },
  {
    name: 'several bad entries',
    config: { allowed_origins: ['https://ok.test', 'ftp//x', 'https://*x.test'] },
    issues: [
      { path: `${PATH}.allowed_origins[1]`, message: /no scheme/ },
      { path: `${PATH}.allowed_origins[2]`, message: /whole first label/ },
    ],
  },
];

void describe('origin compile errors name the exact path', () => {
  for (const c of ERROR_CASES) {
    void test(c.name, () => {
      expectConfigIssues(() => compile(c.config), c.issues);
    });
  }

  void test('schema: allowed_origins required and non-empty; defaults', () => {
    assert.deepEqual(
      validate(OriginSchema, {}, PATH).map((i) => i.path),
      [PATH],
    );
    assert.deepEqual(
      validate(OriginSchema, { allowed_origins: [] }, PATH).map((i) => i.path),
      [`${PATH}.allowed_origins`],
    );
    const c: Record<string, unknown> = { allowed_origins: [APP] };
    assert.deepEqual(validate(OriginSchema, c, PATH), []);
    assert.deepEqual(c, { allowed_origins: [APP], methods: ['POST', 'PUT', 'PATCH', 'DELETE'], allow_referer_fallback: true, allow_missing: false });
  });

  void test('compiled policy: id, type, mode', () => {
    const p = compile(BASE);
    assert.deepEqual([p.id, p.type, p.mode, p.bodyLimit, p.needsBody], ['same-site', 'origin', 'enforce', undefined, undefined]);
  });
});
