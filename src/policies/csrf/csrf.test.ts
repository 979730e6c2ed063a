/**
 * `csrf` through the real schema (defaults), compile() and decide(). Assertions are on codes,
 * evidence and outcomes; every decision is checked for leaked token values.
 */
import { expectConfigIssues, context, decideSync } from '../../pipeline/testing.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { validate } from '../../config/validate.ts';
import { CATALOG } from '../../errors/catalog.ts';
import type { CompiledPolicy, Decision, Deny, RequestFacts } from '../../pipeline/types.ts';
import { tokensEqual } from './decide.ts';
import { csrf } from './index.ts';
import { CsrfSchema, type CsrfConfig } from './schema.ts';

const PATH = 'policies.csrf-web.config';
const CTX = { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: {}, path: PATH, baseDir: process.cwd() };

function compile(config: Record<string, unknown> = {}): CompiledPolicy {
  const c = structuredClone(config);
  assert.deepEqual(validate(CsrfSchema, c, PATH), [], 'test config must pass the schema');
  return csrf.compile(c as CsrfConfig, { id: 'csrf-web', mode: 'enforce' }, CTX);
}

function decide(p: CompiledPolicy, method: string, headers: Record<string, string>): Decision {
  const facts: RequestFacts = {
    method,
    path: '/cart',
    rawQuery: '',
    host: 'shop.example.com',
    headers,
    clientIp: '198.51.100.7',
    clientIpSource: 'socket',
    params: {},
    contentLength: undefined,
    now: 0,
  };
  return decideSync(p, context({ facts, routeId: 'cart' }));
}

const TOKEN = 'tok_6f1d2a9c0b7e4f38a5d1c2b3';
const OTHER = 'tok_0000000000000000000000000';
const SESSION = 'sess_9b8a7c6d5e4f';
const SECRETS = [TOKEN, OTHER, SESSION, 'short'];

interface Case {
  readonly name: string;
  readonly config?: Record<string, unknown>;
  readonly method?: string;
  readonly headers: Record<string, string>;
  readonly expect: 'allow' | 'skip' | Deny['code'];
  readonly evidence?: Record<string, unknown>;
  readonly rule?: RegExp;
}

/** A browser's WebSocket opening handshake (RFC 6455 §4.1), with the site's session cookie. */
const WS = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', cookie: `session=${SESSION}` };
/** What explain shows for a handshake: why a GET was checked at all. */
const WS_RULE = /^GET with Upgrade: websocket: a browser cannot add the token to a handshake/;

const CASES: readonly Case[] = [
  // double-submit (default mode), allowed.
  { name: 'header equals cookie', headers: { cookie: `session=${SESSION}; csrf_token=${TOKEN}`, 'x-csrf-token': TOKEN }, expect: 'allow' },
  { name: 'percent-encoded cookie equals the decoded header', headers: { cookie: 'csrf_token=a%2Bb%3D', 'x-csrf-token': 'a+b=' }, expect: 'allow' },
  { name: 'custom names', config: { cookie_name: '__Host-xsrf', header_name: 'X-XSRF-Token' }, headers: { cookie: `__Host-xsrf=${TOKEN}`, 'x-xsrf-token': TOKEN }, expect: 'allow' },
  { name: 'first cookie of a name wins (RFC 6265 §5.4 order)', headers: { cookie: `csrf_token=${TOKEN}; csrf_token=${OTHER}`, 'x-csrf-token': TOKEN }, expect: 'allow' },

  // Skipped.
  { name: 'safe method skipped', method: 'GET', headers: { cookie: `session=${SESSION}` }, expect: 'skip' },
  { name: 'no cookie: token-authenticated call is not CSRF-prone', headers: { authorization: 'Bearer abc' }, expect: 'skip' },
  // Cached Basic credentials ride along on cross-site requests like cookies do.
  { name: 'no cookie but Basic credentials: checked', headers: { authorization: 'Basic YWxpY2U6cHc=' }, expect: 'CSRF_COOKIE_MISSING' },
  { name: 'empty Cookie header counts as none', headers: { cookie: '' }, expect: 'skip' },
  { name: 'method outside the configured list', config: { methods: ['DELETE'] }, headers: { cookie: `session=${SESSION}` }, expect: 'skip' },

  // double-submit denials.
  {
    name: 'cookie missing: names the cookie and the cookies that were sent, not their values',
    method: 'PUT',
    headers: { cookie: `session=${SESSION}; theme=dark`, 'x-csrf-token': TOKEN },
    expect: 'CSRF_COOKIE_MISSING',
    evidence: { method: 'PUT', cookie_name: 'csrf_token', header_name: 'x-csrf-token', cookie_names: ['session', 'theme'], header_present: true },
  },
  {
    name: 'cookie missing and header missing: the cookie is the first thing to fix',
    headers: { cookie: `session=${SESSION}` },
    expect: 'CSRF_COOKIE_MISSING',
    evidence: { header_present: false },
  },
  { name: 'empty cookie value counts as missing', headers: { cookie: 'csrf_token=; session=x', 'x-csrf-token': TOKEN }, expect: 'CSRF_COOKIE_MISSING' },
  {
    name: 'only_with_cookies: false checks cookie-less requests too',
    config: { only_with_cookies: false },
    headers: {},
    expect: 'CSRF_COOKIE_MISSING',
    evidence: { cookie_names: ['(none)'], header_present: false },
  },
  {
    name: 'token header missing',
    method: 'DELETE',
    headers: { cookie: `csrf_token=${TOKEN}` },
    expect: 'CSRF_TOKEN_MISSING',
    evidence: { method: 'DELETE', cookie_name: 'csrf_token', header_name: 'x-csrf-token' },
  },
  { name: 'empty token header counts as missing', headers: { cookie: `csrf_token=${TOKEN}`, 'x-csrf-token': '' }, expect: 'CSRF_TOKEN_MISSING' },
  {
    name: 'mismatch: lengths only',
    method: 'PATCH',
    headers: { cookie: `csrf_token=${TOKEN}`, 'x-csrf-token': 'short' },
    expect: 'CSRF_TOKEN_MISMATCH',
    evidence: { method: 'PATCH', cookie_name: 'csrf_token', header_name: 'x-csrf-token', header_length: 5, cookie_length: TOKEN.length },
  },
  { name: 'mismatch of equal length', headers: { cookie: `csrf_token=${TOKEN}`, 'x-csrf-token': OTHER.slice(0, TOKEN.length) }, expect: 'CSRF_TOKEN_MISMATCH' },
  { name: 'comparison is case-sensitive', headers: { cookie: `csrf_token=${TOKEN}`, 'x-csrf-token': TOKEN.toUpperCase() }, expect: 'CSRF_TOKEN_MISMATCH' },
  { name: 'a cookie of another name with the same value does not count', headers: { cookie: `xsrf=${TOKEN}`, 'x-csrf-token': TOKEN }, expect: 'CSRF_COOKIE_MISSING' },

  // header mode.
  { name: 'header mode: header present', config: { mode: 'header' }, headers: { cookie: `session=${SESSION}`, 'x-requested-with': 'XMLHttpRequest' }, expect: 'allow' },
  {
    name: 'header mode: header missing',
    config: { mode: 'header' },
    headers: { cookie: `session=${SESSION}`, 'content-type': 'application/x-www-form-urlencoded' },
    expect: 'CSRF_HEADER_MISSING',
    evidence: { method: 'POST', header_name: 'x-requested-with', cookie_present: true },
  },
  { name: 'header mode: custom header', config: { mode: 'header', required_header: 'X-App-Request' }, headers: { cookie: 'a=b', 'x-app-request': '1' }, expect: 'allow' },
  { name: 'header mode: empty value counts as missing', config: { mode: 'header' }, headers: { cookie: 'a=b', 'x-requested-with': '' }, expect: 'CSRF_HEADER_MISSING' },
  { name: 'header mode: no cookie, skipped', config: { mode: 'header' }, headers: {}, expect: 'skip' },
  { name: 'header mode ignores the double-submit fields', config: { mode: 'header' }, headers: { cookie: `csrf_token=${TOKEN}`, 'x-csrf-token': TOKEN }, expect: 'CSRF_HEADER_MISSING' },

  // WebSocket handshakes: checked whatever the method, on their Origin (cross-site WebSocket hijacking).
  { name: 'handshake from a page on this host', method: 'GET', headers: { ...WS, origin: 'https://shop.example.com' }, expect: 'allow', rule: WS_RULE, evidence: { origin: 'https://shop.example.com' } },
  { name: 'handshake: scheme and port are not compared (cookies ignore them)', method: 'GET', headers: { ...WS, origin: 'http://SHOP.example.com:8080' }, expect: 'allow' },
  {
    name: 'cross-site handshake with cookies',
    method: 'GET',
    headers: { ...WS, origin: 'https://evil.com' },
    expect: 'CSRF_HANDSHAKE_CROSS_SITE',
    rule: WS_RULE,
    evidence: { method: 'GET', origin: 'https://evil.com', host: 'shop.example.com' },
  },
  { name: 'cross-site handshake: a sibling subdomain is another host', method: 'GET', headers: { ...WS, origin: 'https://evil.shop.example.com' }, expect: 'CSRF_HANDSHAKE_CROSS_SITE' },
  { name: 'cross-site handshake: a look-alike suffix', method: 'GET', headers: { ...WS, origin: 'https://shop.example.com.evil.com' }, expect: 'CSRF_HANDSHAKE_CROSS_SITE' },
  { name: 'handshake from an opaque origin', method: 'GET', headers: { ...WS, origin: 'null' }, expect: 'CSRF_HANDSHAKE_CROSS_SITE' },
  { name: 'handshake: Upgrade is case-insensitive and may list versions', method: 'GET', headers: { ...WS, upgrade: 'WebSocket/13', origin: 'https://evil.com' }, expect: 'CSRF_HANDSHAKE_CROSS_SITE' },
  { name: 'cross-site handshake: a token header does not help (no browser can send one)', method: 'GET', headers: { ...WS, cookie: `csrf_token=${TOKEN}`, 'x-csrf-token': TOKEN, origin: 'https://evil.com' }, expect: 'CSRF_HANDSHAKE_CROSS_SITE' },
  { name: 'cross-site handshake with cached Basic credentials', method: 'GET', headers: { upgrade: 'websocket', authorization: 'Basic YWxpY2U6cHc=', origin: 'https://evil.com' }, expect: 'CSRF_HANDSHAKE_CROSS_SITE' },
  { name: 'header mode: cross-site handshake', config: { mode: 'header' }, method: 'GET', headers: { ...WS, origin: 'https://evil.com' }, expect: 'CSRF_HANDSHAKE_CROSS_SITE' },
  { name: 'header mode: handshake from this host', config: { mode: 'header' }, method: 'GET', headers: { ...WS, origin: 'https://shop.example.com' }, expect: 'allow' },
  { name: 'handshake without cookies: not CSRF-prone', method: 'GET', headers: { upgrade: 'websocket', origin: 'https://evil.com' }, expect: 'skip' },
  // No Origin: not a browser (browsers always send it on a handshake); the mode's check applies.
  { name: 'handshake without Origin and without the token', method: 'GET', headers: WS, expect: 'CSRF_COOKIE_MISSING', evidence: { method: 'GET' } },
  { name: 'handshake without Origin, with the token', method: 'GET', headers: { ...WS, cookie: `csrf_token=${TOKEN}`, 'x-csrf-token': TOKEN }, expect: 'allow' },
  { name: 'a method outside the list with another Upgrade (h2c) is still skipped', method: 'GET', headers: { ...WS, upgrade: 'h2c', origin: 'https://evil.com' }, expect: 'skip' },
];

void describe('csrf decide', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const d = decide(compile(c.config), c.method ?? 'POST', c.headers);
      if (c.expect === 'allow' || c.expect === 'skip') assert.equal(d.outcome, c.expect, JSON.stringify(d));
      else {
        assert.equal(d.outcome, 'deny', JSON.stringify(d));
        assert.equal(d.code, c.expect);
        assert.equal(CATALOG[d.code].status, 403);
      }
      if (c.evidence !== undefined) {
        assert.ok(d.outcome !== 'skip');
        for (const [k, v] of Object.entries(c.evidence)) assert.deepEqual(d.evidence?.[k], v, `evidence.${k}`);
      }
      if (c.rule !== undefined) assert.match(d.rule, c.rule);
      const text = JSON.stringify(d);
      for (const s of SECRETS) assert.ok(!text.includes(s) && !text.includes(s.toUpperCase()), `decision leaks a token or cookie value: ${text}`);
    });
  }

  void test('every catalog remediation placeholder is filled by the evidence of its denial', () => {
    const seen = new Set<string>();
    for (const c of CASES) {
      const d = decide(compile(c.config), c.method ?? 'POST', c.headers);
      if (d.outcome !== 'deny') continue;
      seen.add(d.code);
      for (const m of CATALOG[d.code].remediation.matchAll(/\{([a-z_]+)\}/g)) assert.ok(m[1] !== undefined && m[1] in d.evidence, `${d.code}: {${m[1]}} not in evidence`);
    }
    assert.deepEqual([...seen].sort(), ['CSRF_COOKIE_MISSING', 'CSRF_HANDSHAKE_CROSS_SITE', 'CSRF_HEADER_MISSING', 'CSRF_TOKEN_MISMATCH', 'CSRF_TOKEN_MISSING']);
  });

  void test('tokensEqual', () => {
    const table: readonly [string, string, boolean][] = [
      [TOKEN, TOKEN, true],
      [TOKEN, OTHER, false],
      ['', '', true],
      ['a', '', false],
      ['é', 'é', true],
      ['abc', 'abcd', false],
    ];
    for (const [a, b, eq] of table) assert.equal(tokensEqual(a, b), eq, `${a} vs ${b}`);
  });

  void test('cookie names in evidence are capped at 20', () => {
    const cookie = Array.from({ length: 30 }, (_, i) => `c${i}=v`).join('; ');
    const d = decide(compile(), 'POST', { cookie, 'x-csrf-token': TOKEN });
    assert.equal(d.outcome === 'deny' && d.code, 'CSRF_COOKIE_MISSING');
    assert.equal(d.outcome === 'deny' && (d.evidence.cookie_names as readonly string[]).length, 20);
  });
});

interface ErrorCase {
  readonly name: string;
  readonly config: Record<string, unknown>;
  readonly issues: readonly { path: string; message: RegExp }[];
}

const ERROR_CASES: readonly ErrorCase[] = [
  { name: 'header mode with a safelisted header', config: { mode: 'header', required_header: 'Content-Type' }, issues: [{ path: `${PATH}.required_header`, message: /CORS-safelisted/ }] },
  { name: 'header mode with accept', config: { mode: 'header', required_header: 'accept' }, issues: [{ path: `${PATH}.required_header`, message: /CORS-safelisted/ }] },
  { name: 'header mode with a header the browser sets', config: { mode: 'header', required_header: 'origin' }, issues: [{ path: `${PATH}.required_header`, message: /set by the browser itself/ }] },
  { name: 'header mode with a Sec- header', config: { mode: 'header', required_header: 'sec-fetch-site' }, issues: [{ path: `${PATH}.required_header`, message: /set by the browser itself/ }] },
  { name: 'double-submit token in a browser-controlled header', config: { header_name: 'Cookie' }, issues: [{ path: `${PATH}.header_name`, message: /page script cannot put the token in it/ }] },
];

void describe('csrf compile errors name the exact path', () => {
  for (const c of ERROR_CASES) {
    void test(c.name, () => {
      expectConfigIssues(() => compile(c.config), c.issues);
    });
  }

  void test('required_header is only checked in header mode', () => {
    // required_header keeps its default in double-submit mode and is not checked there.
    assert.doesNotThrow(() => compile({ mode: 'double-submit', required_header: 'content-type' }));
  });

  void test('schema: defaults, mode values, cookie name syntax', () => {
    const c: Record<string, unknown> = {};
    assert.deepEqual(validate(CsrfSchema, c, PATH), []);
    assert.deepEqual(c, {
      mode: 'double-submit',
      cookie_name: 'csrf_token',
      header_name: 'x-csrf-token',
      required_header: 'x-requested-with',
      methods: ['POST', 'PUT', 'PATCH', 'DELETE'],
      only_with_cookies: true,
    });
    const bad = validate(CsrfSchema, { mode: 'token', cookie_name: 'a b' }, PATH);
    assert.deepEqual(bad.map((i) => i.path).sort(), [`${PATH}.cookie_name`, `${PATH}.mode`]);
  });

  void test('compiled policy: id, type, mode', () => {
    const p = compile();
    assert.deepEqual([p.id, p.type, p.mode, p.needsBody], ['csrf-web', 'csrf', 'enforce', undefined]);
  });
});
