/**
 * `cors` driven the way the gateway drives it: config validated by the real schema (so defaults
 * apply), compile(), then decide(). Assertions are on outcomes, codes, evidence and exact headers.
 */
import { expectConfigIssues, context, decideSync } from '../../pipeline/testing.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { validate } from '../../config/validate.ts';
import { CATALOG } from '../../errors/catalog.ts';
import { evaluateSync } from '../../pipeline/run.ts';
import type { CompiledPolicy, Decision, Deny, RequestFacts } from '../../pipeline/types.ts';
import { cors } from './index.ts';
import { CorsSchema, type CorsConfig } from './schema.ts';

const PATH = 'policies.web-cors.config';
const CTX = { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: {}, path: PATH, baseDir: process.cwd() };

/** Validates (filling schema defaults) and compiles. */
function compile(config: Record<string, unknown>): CompiledPolicy {
  const c = structuredClone(config);
  assert.deepEqual(validate(CorsSchema, c, PATH), [], 'test config must pass the schema');
  return cors.compile(c as CorsConfig, { id: 'web-cors', mode: 'enforce' }, CTX);
}

function facts(method: string, headers: Record<string, string>): RequestFacts {
  return {
    method,
    path: '/orders',
    rawQuery: '',
    host: 'api.gateway.test',
    headers: { host: 'api.gateway.test', ...headers },
    clientIp: '198.51.100.7',
    clientIpSource: 'socket',
    params: {},
    contentLength: undefined,
    now: 0,
  };
}

function decide(p: CompiledPolicy, method: string, headers: Record<string, string>): Decision {
  return decideSync(p, context({ facts: facts(method, headers), routeId: 'orders' }));
}

function preflight(origin: string, method: string, requestHeaders?: string): Record<string, string> {
  return { origin, 'access-control-request-method': method, ...(requestHeaders !== undefined ? { 'access-control-request-headers': requestHeaders } : {}) };
}

const APP = 'https://app.example.com';
const BASE = { allow_origins: [APP, 'https://*.example.com', 'http://localhost:*'] };
const CRED = { ...BASE, allow_methods: ['GET', 'PUT', 'DELETE'], allow_headers: ['Content-Type', 'authorization', 'x-trace'], allow_credentials: true, max_age: 900 };
const DEFAULT_EXPOSE = 'x-request-id, x-pinpoint-code, x-pinpoint-layer, x-pinpoint-policy';

void describe('cors preflight allowed: answered by the gateway with 204 and the exact headers', () => {
  const CASES: readonly { name: string; config: Record<string, unknown>; headers: Record<string, string>; respond: Record<string, string> }[] = [
    {
      name: 'exact origin, credentials, listed method and headers',
      config: CRED,
      headers: preflight(APP, 'PUT', 'content-type,x-trace'),
      respond: {
        'access-control-allow-origin': APP,
        vary: 'Origin',
        'access-control-allow-methods': 'GET, PUT, DELETE',
        'access-control-allow-headers': 'Content-Type, authorization, x-trace',
        'access-control-allow-credentials': 'true',
        'access-control-max-age': '900',
      },
    },
    {
      name: 'defaults: six methods, no allow-headers, no credentials, max-age 600',
      config: BASE,
      headers: preflight(APP, 'PATCH'),
      respond: {
        'access-control-allow-origin': APP,
        vary: 'Origin',
        'access-control-allow-methods': 'GET, HEAD, PUT, PATCH, POST, DELETE',
        'access-control-max-age': '600',
      },
    },
    {
      name: 'wildcard subdomain pattern echoes the request origin',
      config: CRED,
      headers: preflight('https://shop.example.com', 'DELETE', 'authorization'),
      respond: {
        'access-control-allow-origin': 'https://shop.example.com',
        vary: 'Origin',
        'access-control-allow-methods': 'GET, PUT, DELETE',
        'access-control-allow-headers': 'Content-Type, authorization, x-trace',
        'access-control-allow-credentials': 'true',
        'access-control-max-age': '900',
      },
    },
    {
      name: 'port wildcard',
      config: BASE,
      headers: preflight('http://localhost:5173', 'PUT'),
      respond: { 'access-control-allow-origin': 'http://localhost:5173', vary: 'Origin', 'access-control-allow-methods': 'GET, HEAD, PUT, PATCH, POST, DELETE', 'access-control-max-age': '600' },
    },
    {
      name: '"*" without credentials: static "*", no Vary',
      config: { allow_origins: ['*'], allow_methods: ['PUT'], allow_headers: ['*'], max_age: 0 },
      headers: preflight('https://anyone.test', 'PUT', 'x-anything'),
      respond: { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'PUT', 'access-control-allow-headers': '*', 'access-control-max-age': '0' },
    },
    {
      name: 'a CORS-safelisted method passes even when not listed (Fetch #cors-preflight-fetch)',
      config: { ...BASE, allow_methods: ['PUT'], allow_headers: ['x-trace'] },
      headers: preflight(APP, 'POST', 'x-trace'),
      respond: { 'access-control-allow-origin': APP, vary: 'Origin', 'access-control-allow-methods': 'PUT', 'access-control-allow-headers': 'x-trace', 'access-control-max-age': '600' },
    },
    {
      name: '"*" methods without credentials allow any method',
      config: { ...BASE, allow_methods: ['*'] },
      headers: preflight(APP, 'PROPFIND'),
      respond: { 'access-control-allow-origin': APP, vary: 'Origin', 'access-control-allow-methods': '*', 'access-control-max-age': '600' },
    },
    {
      name: '"*" headers plus an explicit authorization covers authorization',
      config: { ...BASE, allow_headers: ['*', 'Authorization'] },
      headers: preflight(APP, 'PUT', 'authorization,x-one'),
      respond: {
        'access-control-allow-origin': APP,
        vary: 'Origin',
        'access-control-allow-methods': 'GET, HEAD, PUT, PATCH, POST, DELETE',
        'access-control-allow-headers': '*, Authorization',
        'access-control-max-age': '600',
      },
    },
  ];
  for (const c of CASES) {
    void test(c.name, () => {
      const d = decide(compile(c.config), 'OPTIONS', c.headers);
      assert.equal(d.outcome, 'allow', JSON.stringify(d));
      assert.deepEqual(d.respond, { status: 204, headers: c.respond });
      assert.equal(d.responseHeaders, undefined, 'a preflight answer carries its headers in respond');
      assert.equal(d.evidence?.origin, c.headers.origin);
      assert.equal(d.evidence?.method, c.headers['access-control-request-method']);
    });
  }
});

void describe('cors preflight refused: one code per missing allowance, no Access-Control-Allow-* headers', () => {
  const CASES: readonly { name: string; config: Record<string, unknown>; headers: Record<string, string>; code: Deny['code']; evidence: Record<string, unknown> }[] = [
    {
      name: 'origin not allowed',
      config: BASE,
      headers: preflight('https://evil.test', 'PUT'),
      code: 'CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED',
      evidence: { origin: 'https://evil.test', method: 'PUT', allowed_origins: BASE.allow_origins },
    },
    {
      name: 'opaque origin "null"',
      config: BASE,
      headers: preflight('null', 'PUT'),
      code: 'CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED',
      evidence: { origin: 'null' },
    },
    {
      name: 'pattern: the apex is not a subdomain',
      config: { allow_origins: ['https://*.example.com'] },
      headers: preflight('https://example.com', 'PUT'),
      code: 'CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED',
      evidence: { origin: 'https://example.com' },
    },
    {
      name: 'pattern: two labels are not one',
      config: { allow_origins: ['https://*.example.com'] },
      headers: preflight('https://a.b.example.com', 'PUT'),
      code: 'CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED',
      evidence: { origin: 'https://a.b.example.com' },
    },
    {
      name: 'pattern: suffix look-alike',
      config: { allow_origins: ['https://*.example.com'] },
      headers: preflight('https://a.example.com.evil.test', 'PUT'),
      code: 'CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED',
      evidence: { origin: 'https://a.example.com.evil.test' },
    },
    {
      name: 'pattern: other scheme',
      config: { allow_origins: ['https://*.example.com'] },
      headers: preflight('http://shop.example.com', 'PUT'),
      code: 'CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED',
      evidence: { origin: 'http://shop.example.com' },
    },
    {
      name: 'exact origin: other port',
      config: { allow_origins: [APP] },
      headers: preflight('https://app.example.com:8443', 'PUT'),
      code: 'CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED',
      evidence: { origin: 'https://app.example.com:8443' },
    },
    {
      name: 'method not allowed: names the method',
      config: CRED,
      headers: preflight(APP, 'PATCH', 'content-type'),
      code: 'CORS_PREFLIGHT_METHOD_NOT_ALLOWED',
      evidence: { origin: APP, method: 'PATCH', allowed_methods: ['GET', 'PUT', 'DELETE'] },
    },
    {
      name: 'methods compare case-sensitively, as browsers do',
      config: CRED,
      headers: preflight(APP, 'delete'),
      code: 'CORS_PREFLIGHT_METHOD_NOT_ALLOWED',
      evidence: { method: 'delete' },
    },
    {
      name: '"*" methods with credentials are refused at compile, so a credentialed policy lists them',
      config: { ...CRED, allow_methods: ['GET'] },
      headers: preflight(APP, 'PUT'),
      code: 'CORS_PREFLIGHT_METHOD_NOT_ALLOWED',
      evidence: { method: 'PUT', allowed_methods: ['GET'] },
    },
    {
      name: 'headers not allowed: names exactly the missing ones',
      config: CRED,
      headers: preflight(APP, 'PUT', 'content-type, x-secret, x-trace, x-other'),
      code: 'CORS_PREFLIGHT_HEADERS_NOT_ALLOWED',
      evidence: { origin: APP, method: 'PUT', headers_not_allowed: ['x-secret', 'x-other'], allowed_headers: ['Content-Type', 'authorization', 'x-trace'] },
    },
    {
      name: 'no allow_headers at all (default): any requested header is missing',
      config: BASE,
      headers: preflight(APP, 'PUT', 'content-type'),
      code: 'CORS_PREFLIGHT_HEADERS_NOT_ALLOWED',
      evidence: { headers_not_allowed: ['content-type'], allowed_headers: [] },
    },
    {
      name: '"*" headers never cover authorization',
      config: { ...BASE, allow_headers: ['*'] },
      headers: preflight(APP, 'PUT', 'x-one,authorization'),
      code: 'CORS_PREFLIGHT_HEADERS_NOT_ALLOWED',
      evidence: { headers_not_allowed: ['authorization'] },
    },
  ];
  for (const c of CASES) {
    void test(c.name, () => {
      const d = decide(compile(c.config), 'OPTIONS', c.headers);
      assert.equal(d.outcome, 'deny', JSON.stringify(d));
      assert.equal(d.code, c.code);
      for (const [k, v] of Object.entries(c.evidence)) assert.deepEqual(d.evidence[k], v, `evidence.${k}`);
      assert.equal(d.headers, undefined, 'a refused preflight carries no Access-Control-Allow-* header');
      assert.equal(CATALOG[d.code].status, 403);
    });
  }

  void test('the origin is checked before the method, the method before the headers', () => {
    const d = decide(compile(CRED), 'OPTIONS', preflight('https://evil.test', 'PATCH', 'x-secret'));
    assert.equal(d.outcome === 'deny' && d.code, 'CORS_PREFLIGHT_ORIGIN_NOT_ALLOWED');
    const m = decide(compile(CRED), 'OPTIONS', preflight(APP, 'PATCH', 'x-secret'));
    assert.equal(m.outcome === 'deny' && m.code, 'CORS_PREFLIGHT_METHOD_NOT_ALLOWED');
  });
});

void describe('cors actual requests', () => {
  const CASES: readonly { name: string; config: Record<string, unknown>; method: string; headers: Record<string, string>; rule: string; responseHeaders: Record<string, string> }[] = [
    {
      name: 'allowed origin, credentials: echo, Vary, credentials, expose',
      config: { ...CRED, expose_headers: ['x-request-id', 'etag'] },
      method: 'POST',
      headers: { origin: APP },
      rule: `origin ${APP}`,
      responseHeaders: { 'access-control-allow-origin': APP, vary: 'Origin', 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'x-request-id, etag' },
    },
    {
      name: 'allowed by pattern, default expose list',
      config: BASE,
      method: 'GET',
      headers: { origin: 'https://shop.example.com' },
      rule: 'origin https://*.example.com',
      responseHeaders: { 'access-control-allow-origin': 'https://shop.example.com', vary: 'Origin', 'access-control-expose-headers': DEFAULT_EXPOSE },
    },
    {
      name: '"*": static headers, no Vary',
      config: { allow_origins: ['*'], expose_headers: [] },
      method: 'DELETE',
      headers: { origin: 'https://anyone.test' },
      rule: 'origin *',
      responseHeaders: { 'access-control-allow-origin': '*' },
    },
    {
      name: 'OPTIONS without Access-Control-Request-Method is an actual request',
      config: BASE,
      method: 'OPTIONS',
      headers: { origin: APP },
      rule: `origin ${APP}`,
      responseHeaders: { 'access-control-allow-origin': APP, vary: 'Origin', 'access-control-expose-headers': DEFAULT_EXPOSE },
    },
    {
      name: 'origin not allowed: not blocked, no Access-Control-* headers, trace says unreadable',
      config: CRED,
      method: 'POST',
      headers: { origin: 'https://evil.test' },
      rule: 'origin not allowed: response will be unreadable in the browser',
      responseHeaders: { vary: 'Origin' },
    },
    {
      name: 'no Origin: not a CORS request; Vary: Origin for caches (Fetch #cors-protocol-and-http-caches)',
      config: CRED,
      method: 'GET',
      headers: {},
      rule: 'no Origin: not a CORS request',
      responseHeaders: { vary: 'Origin' },
    },
    {
      name: 'no Origin with "*": the static headers on every response, as Fetch asks',
      config: { allow_origins: ['*'] },
      method: 'GET',
      headers: {},
      rule: 'no Origin: not a CORS request',
      responseHeaders: { 'access-control-allow-origin': '*', 'access-control-expose-headers': DEFAULT_EXPOSE },
    },
    {
      name: 'same-origin page (Origin host = Host): not a CORS request',
      config: CRED,
      method: 'POST',
      headers: { origin: 'https://api.gateway.test' },
      rule: 'same-origin request',
      responseHeaders: { vary: 'Origin' },
    },
    {
      name: 'same-origin with the default port written in Host',
      config: CRED,
      method: 'POST',
      headers: { origin: 'https://api.gateway.test', host: 'api.gateway.test:443' },
      rule: 'same-origin request',
      responseHeaders: { vary: 'Origin' },
    },
    {
      name: 'same host, other port: cross-origin',
      config: CRED,
      method: 'POST',
      headers: { origin: 'https://api.gateway.test:8443' },
      rule: 'origin not allowed: response will be unreadable in the browser',
      responseHeaders: { vary: 'Origin' },
    },
  ];
  for (const c of CASES) {
    void test(c.name, () => {
      const d = decide(compile(c.config), c.method, c.headers);
      assert.equal(d.outcome, 'allow', JSON.stringify(d));
      assert.equal(d.rule, c.rule);
      assert.deepEqual(d.responseHeaders, c.responseHeaders);
      assert.equal(d.respond, undefined, 'actual requests go on to the upstream');
    });
  }

  void test('origin not allowed: evidence names the origin and the list', () => {
    const d = decide(compile(CRED), 'POST', { origin: 'https://evil.test' });
    assert.equal(d.outcome, 'allow');
    assert.deepEqual(d.evidence, { origin: 'https://evil.test', allowed_origins: BASE.allow_origins });
  });

  void test('a preflight from the gateway\'s own host that is not listed goes on (no CORS decision to make)', () => {
    const d = decide(compile(CRED), 'OPTIONS', preflight('https://api.gateway.test', 'PUT'));
    assert.equal(d.outcome, 'allow');
    assert.equal(d.rule, 'same-origin request');
    assert.equal(d.respond, undefined);
  });
});

void describe('cors in the pipeline', () => {
  const denyAll: CompiledPolicy = {
    id: 'key',
    type: 'api-key',
    mode: 'enforce',
    decide: () => ({ outcome: 'deny', code: 'AUTH_KEY_MISSING', rule: 'no key', evidence: { accepted: 'header x-api-key' }, headers: { 'www-authenticate': 'ApiKey' } }),
  };
  const none = { get: () => undefined };
  function run(p: CompiledPolicy, method: string, headers: Record<string, string>) {
    const planned = [
      { policy: p, position: 0, attachedTo: 'route' as const },
      { policy: denyAll, position: 1, attachedTo: 'route' as const },
    ];
    return evaluateSync(planned, facts(method, headers), 'orders', none);
  }

  void test('a later denial carries the CORS headers, so the page can read the 401 body', () => {
    const v = run(compile(CRED), 'POST', { origin: APP });
    assert.equal(v.deny?.code, 'AUTH_KEY_MISSING');
    assert.deepEqual(v.responseHeaders, { 'access-control-allow-origin': APP, vary: 'Origin', 'access-control-allow-credentials': 'true', 'access-control-expose-headers': DEFAULT_EXPOSE });
  });

  void test('an allowed preflight is answered before authentication runs', () => {
    const v = run(compile(CRED), 'OPTIONS', preflight(APP, 'PUT'));
    assert.equal(v.allowed, true);
    assert.equal(v.respond?.status, 204);
    assert.equal(v.respond?.policy, 'web-cors');
    assert.deepEqual(
      v.trace.map((t) => [t.policy, t.outcome]),
      [['web-cors', 'allow']],
    );
  });

  void test('a refused preflight is the denial, traced with its code and evidence', () => {
    const v = run(compile(CRED), 'OPTIONS', preflight(APP, 'PUT', 'x-secret'));
    assert.equal(v.deny?.code, 'CORS_PREFLIGHT_HEADERS_NOT_ALLOWED');
    assert.equal(v.denyPolicy?.id, 'web-cors');
    assert.deepEqual(v.trace[0]?.evidence?.headers_not_allowed, ['x-secret']);
    assert.equal(v.responseHeaders, undefined);
  });
});

interface ErrorCase {
  readonly name: string;
  readonly config: Record<string, unknown>;
  readonly issues: readonly { path: string; message: RegExp }[];
}

const ERROR_CASES: readonly ErrorCase[] = [
  {
    name: '"*" origin with credentials',
    config: { allow_origins: [APP, '*'], allow_credentials: true },
    issues: [{ path: `${PATH}.allow_origins[1]`, message: /"\*" is not allowed here: allow_credentials is true/ }],
  },
  {
    name: '"*" methods, headers and expose headers with credentials',
    config: { allow_origins: [APP], allow_credentials: true, allow_methods: ['GET', '*'], allow_headers: ['*'], expose_headers: ['x-request-id', 'etag', '*'] },
    issues: [
      { path: `${PATH}.allow_methods[1]`, message: /literal name/ },
      { path: `${PATH}.allow_headers[0]`, message: /literal name/ },
      { path: `${PATH}.expose_headers[2]`, message: /literal name/ },
    ],
  },
  { name: 'origin without a scheme', config: { allow_origins: ['app.example.com'] }, issues: [{ path: `${PATH}.allow_origins[0]`, message: /no scheme: an origin is written like https:\/\/app\.example\.com/ }] },
  { name: 'origin with a path', config: { allow_origins: [APP, 'https://app.example.com/app'] }, issues: [{ path: `${PATH}.allow_origins[1]`, message: /path, query or fragment/ }] },
  { name: 'origin with a query', config: { allow_origins: ['https://app.example.com?x=1'] }, issues: [{ path: `${PATH}.allow_origins[0]`, message: /path, query or fragment/ }] },
  { name: 'origin with user info', config: { allow_origins: ['https://me@app.example.com'] }, issues: [{ path: `${PATH}.allow_origins[0]`, message: /user info/ }] },
  { name: '"null"', config: { allow_origins: ['null'] }, issues: [{ path: `${PATH}.allow_origins[0]`, message: /sandboxed/ }] },
  { name: 'wildcard inside a label', config: { allow_origins: ['https://app*.example.com'] }, issues: [{ path: `${PATH}.allow_origins[0]`, message: /only allowed as the whole first label/ }] },
  { name: 'two wildcard labels', config: { allow_origins: ['https://*.*.example.com'] }, issues: [{ path: `${PATH}.allow_origins[0]`, message: /only allowed as the whole first label/ }] },
  { name: 'port out of range', config: { allow_origins: ['https://app.example.com:70000'] }, issues: [{ path: `${PATH}.allow_origins[0]`, message: /invalid port 70000/ }] },
  { name: 'not a host', config: { allow_origins: ['https://exa mple.com'] }, issues: [{ path: `${PATH}.allow_origins[0]`, message: /not a valid origin/ }] },
  {
    name: 'every bad entry is reported, in order',
    config: { allow_origins: ['x.test', APP, 'null', 'https://a.test/b'] },
    issues: [
      { path: `${PATH}.allow_origins[0]`, message: /no scheme/ },
      { path: `${PATH}.allow_origins[2]`, message: /null/ },
      { path: `${PATH}.allow_origins[3]`, message: /path/ },
    ],
  },
];

void describe('cors compile errors name the exact path', () => {
  for (const c of ERROR_CASES) {
    void test(c.name, () => {
      expectConfigIssues(() => compile(c.config), c.issues);
    });
  }

  void test('schema: allow_origins is required, max_age bounded, methods are tokens', () => {
    assert.deepEqual(
      validate(CorsSchema, {}, PATH).map((i) => i.path),
      [PATH],
    );
    assert.deepEqual(
      validate(CorsSchema, { allow_origins: [APP], max_age: 90000, allow_methods: ['GET POST'] }, PATH).map((i) => i.path).sort(),
      [`${PATH}.allow_methods[0]`, `${PATH}.max_age`],
    );
    assert.deepEqual(
      validate(CorsSchema, { allow_origins: [] }, PATH).map((i) => i.path),
      [`${PATH}.allow_origins`],
    );
  });

  void test('schema defaults', () => {
    const c: Record<string, unknown> = { allow_origins: [APP] };
    assert.deepEqual(validate(CorsSchema, c, PATH), []);
    assert.deepEqual(c, {
      allow_origins: [APP],
      allow_methods: ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'],
      allow_headers: [],
      expose_headers: ['x-request-id', 'x-pinpoint-code', 'x-pinpoint-layer', 'x-pinpoint-policy'],
      allow_credentials: false,
      max_age: 600,
    });
  });

  void test('compiled policy: id, type, mode; config edits after compile change nothing', () => {
    const config = structuredClone({ ...CRED }) as Record<string, unknown>;
    validate(CorsSchema, config, PATH);
    const p = cors.compile(config as CorsConfig, { id: 'web-cors', mode: 'monitor' }, CTX);
    assert.deepEqual([p.id, p.type, p.mode], ['web-cors', 'cors', 'monitor']);
    (config.allow_origins as string[]).push('https://evil.test');
    (config.allow_methods as string[]).push('PATCH');
    assert.equal(decideSync(p, context({ facts: facts('OPTIONS', preflight('https://evil.test', 'PUT')) })).outcome, 'deny');
    const m = decideSync(p, context({ facts: facts('OPTIONS', preflight(APP, 'PATCH')) }));
    assert.equal(m.outcome === 'deny' && m.code, 'CORS_PREFLIGHT_METHOD_NOT_ALLOWED');
  });
});
