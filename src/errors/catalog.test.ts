/**
 * The catalog is the contract with every client: these tests keep it, the published reference
 * (docs/errors.md) and the published JSON Schema in sync, and pin the problem envelope's shape.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { renderJsonSchema } from '../config/json-schema.ts';
import { CATALOG, CODES, docsAnchor, isCode, renderTemplate, type CatalogEntry, type Code } from './catalog.ts';
import { envelopeBody } from './envelopes.ts';
import { problemBody, problemHeaders, proxyStatus, type ProblemInput } from './problem.ts';
import { renderErrorReference } from './reference.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const REGEN = 'run `npm run docs` to regenerate it, and commit the result';

const ENTRIES: readonly [Code, CatalogEntry][] = CODES.map((c) => [c, CATALOG[c]]);

const PROXY_ERROR_TYPES = new Set([
  // RFC 9209 §2.3
  'dns_timeout',
  'dns_error',
  'destination_not_found',
  'destination_unavailable',
  'destination_ip_prohibited',
  'destination_ip_unroutable',
  'connection_refused',
  'connection_terminated',
  'connection_timeout',
  'connection_read_timeout',
  'connection_write_timeout',
  'connection_limit_reached',
  'tls_protocol_error',
  'tls_certificate_error',
  'tls_alert_received',
  'http_request_error',
  'http_request_denied',
  'http_response_incomplete',
  'http_response_header_section_size',
  'http_response_header_size',
  'http_response_body_size',
  'http_response_trailer_section_size',
  'http_response_trailer_size',
  'http_response_transfer_coding',
  'http_response_content_coding',
  'http_response_timeout',
  'http_upgrade_failed',
  'http_protocol_error',
  'proxy_internal_response',
  'proxy_internal_error',
  'proxy_configuration_error',
  'proxy_loop_detected',
  'http_request_body_size_exceeded',
]);

void describe('generated references are in sync', () => {
  void test('docs/errors.md equals renderErrorReference()', () => {
    const onDisk = readFileSync(path.join(ROOT, 'docs/errors.md'), 'utf8');
    assert.equal(onDisk, renderErrorReference(), `docs/errors.md is out of date with src/errors/catalog.ts: ${REGEN}`);
  });

  void test('schema/pinpoint.schema.json equals renderJsonSchema()', () => {
    const onDisk = readFileSync(path.join(ROOT, 'schema/pinpoint.schema.json'), 'utf8');
    assert.equal(onDisk, renderJsonSchema(), `schema/pinpoint.schema.json is out of date with the config schema: ${REGEN}`);
  });

  void test('the published schema is valid JSON with every policy type wired in', () => {
    const schema = JSON.parse(renderJsonSchema()) as { $schema?: string };
    assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
    const text = renderJsonSchema();
    for (const t of ['api-key', 'ip-rules', 'request-size']) assert.ok(text.includes(`"const": "${t}"`), t);
  });

  void test('every catalog code has a heading in docs/errors.md, and every heading is a catalog code', () => {
    const onDisk = readFileSync(path.join(ROOT, 'docs/errors.md'), 'utf8');
    const headings = [...onDisk.matchAll(/^## (.+)$/gm)].map((m) => (m[1] ?? '').trim());
    for (const c of CODES) assert.ok(headings.includes(c), `code ${c} has no "## ${c}" heading in docs/errors.md: ${REGEN}`);
    for (const h of headings) assert.ok(isCode(h), `docs/errors.md has a heading "## ${h}" that is not a catalog code: ${REGEN}`);
    assert.equal(new Set(headings).size, headings.length, 'a heading appears twice in docs/errors.md');
  });

  void test('every code is linked from the summary table by its anchor', () => {
    const onDisk = readFileSync(path.join(ROOT, 'docs/errors.md'), 'utf8');
    for (const c of CODES) assert.ok(onDisk.includes(`[${c}](#${docsAnchor(c)})`), c);
  });
});

void describe('catalog entries', () => {
  void test('codes are SCREAMING_SNAKE_CASE and unique', () => {
    for (const c of CODES) assert.match(c, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
    assert.equal(new Set(CODES).size, CODES.length);
  });

  for (const [code, e] of ENTRIES) {
    void test(code, () => {
      assert.ok(Number.isInteger(e.status) && e.status >= 400 && e.status <= 599, `${code}: status ${e.status} is not 4xx/5xx`);
      assert.ok(e.title.trim().length > 0, `${code}: empty title`);
      assert.ok(!e.title.endsWith('.'), `${code}: a title is a phrase, not a sentence`);
      assert.ok(e.remediation.trim().length > 0, `${code}: empty remediation`);
      assert.ok((['client', 'gateway', 'upstream', 'provider'] as const).includes(e.layer), `${code}: bad layer ${e.layer}`);
      assert.equal(typeof e.retryable, 'boolean');
      assert.ok(PROXY_ERROR_TYPES.has(e.proxyStatus), `${code}: ${e.proxyStatus} is not an RFC 9209 error type`);
      // Placeholders are lower-case evidence names (renderTemplate only fills those).
      for (const m of e.remediation.matchAll(/\{([^}]*)\}/g)) assert.match(m[1] ?? '', /^[a-z_]+$/, `${code}: placeholder {${m[1]}}`);
    });
  }

  void test('401 entries are credential problems: never upstream, never retryable as is', () => {
    for (const [code, e] of ENTRIES) {
      if (e.status !== 401) continue;
      assert.notEqual(e.layer, 'upstream', code);
      assert.equal(e.retryable, false, code);
    }
  });

  void test('5xx entries are never blamed on the client', () => {
    for (const [code, e] of ENTRIES) if (e.status >= 500) assert.notEqual(e.layer, 'client', code);
  });

  void test('isCode', () => {
    assert.equal(isCode('AUTH_KEY_MISSING'), true);
    assert.equal(isCode('auth_key_missing'), false);
    assert.equal(isCode('toString'), false);
    assert.equal(isCode(''), false);
  });

  void test('docsAnchor is the lower-case code', () => {
    assert.equal(docsAnchor('AUTH_KEY_SCOPE_MISSING'), 'auth_key_scope_missing');
  });
});

void describe('renderTemplate', () => {
  const CASES: readonly { name: string; template: string; values: Record<string, unknown>; out: string }[] = [
    { name: 'fills a placeholder', template: 'Key {key_id} expired.', values: { key_id: 'k1' }, out: 'Key k1 expired.' },
    { name: 'fills several, repeated', template: '{a}-{b}-{a}', values: { a: 'x', b: 'y' }, out: 'x-y-x' },
    { name: 'joins arrays', template: 'lacks {missing_scopes}', values: { missing_scopes: ['a:w', 'b:w'] }, out: 'lacks a:w, b:w' },
    { name: 'numbers and booleans', template: '{limit_bytes} {ok}', values: { limit_bytes: 65536, ok: false }, out: '65536 false' },
    { name: 'zero and empty string are values', template: '[{n}][{s}]', values: { n: 0, s: '' }, out: '[0][]' },
    { name: 'unknown placeholder stays visible', template: 'at {expired_at}', values: {}, out: 'at {expired_at}' },
    { name: 'null stays visible', template: 'id {found_key_id}', values: { found_key_id: null }, out: 'id {found_key_id}' },
    { name: 'objects as JSON', template: '{o}', values: { o: { a: 1 } }, out: '{"a":1}' },
    { name: 'no placeholders', template: 'Retry.', values: { a: 1 }, out: 'Retry.' },
    { name: 'upper-case braces are not placeholders', template: '{NAME}', values: { NAME: 'x' }, out: '{NAME}' },
  ];
  for (const c of CASES) void test(c.name, () => assert.equal(renderTemplate(c.template, c.values), c.out));

  void test('inherited properties are not placeholders', () => {
    assert.equal(renderTemplate('{constructor}', {}), '{constructor}');
  });
});

const PUBLIC_KEYS = ['code', 'layer', 'policy', 'request_id', 'retryable', 'status', 'title', 'type'];

function input(code: Code, detailed: boolean, extra: Partial<ProblemInput> = {}): ProblemInput {
  return { code, policy: 'orders-write-key', requestId: 'req-1', requestIdHeader: 'x-request-id', detailed, typeBase: 'urn:pinpoint:error:', ...extra };
}

void describe('problemBody', () => {
  void test('public mode: exactly type, title, status, code, layer, policy, request_id, retryable', () => {
    for (const code of CODES) {
      const b = problemBody(input(code, false, { evidence: { key_id: 'k1' }, rule: 'key k1 lacks x' }));
      assert.deepEqual(Object.keys(b).sort(), PUBLIC_KEYS, code);
      const e = CATALOG[code];
      assert.equal(b.type, `urn:pinpoint:error:${code.toLowerCase()}`);
      assert.equal(b.title, e.title);
      assert.equal(b.status, e.status);
      assert.equal(b.code, code);
      assert.equal(b.layer, e.layer);
      assert.equal(b.policy, 'orders-write-key');
      assert.equal(b.request_id, 'req-1');
      assert.equal(b.retryable, e.retryable);
    }
  });

  void test('public mode leaks no evidence or rule', () => {
    const b = JSON.stringify(problemBody(input('AUTH_KEY_SCOPE_MISSING', false, { evidence: { key_id: 'k_secret_id' }, rule: 'rule-text' })));
    assert.ok(!b.includes('k_secret_id') && !b.includes('rule-text'));
  });

  void test('detailed mode adds detail, remediation and evidence', () => {
    const evidence = { key_id: 'k_read', missing_scopes: ['orders:write'] };
    const b = problemBody(input('AUTH_KEY_SCOPE_MISSING', true, { evidence, rule: 'key k_read lacks orders:write' }));
    assert.deepEqual(Object.keys(b).sort(), [...PUBLIC_KEYS, 'detail', 'evidence', 'remediation'].sort());
    assert.deepEqual(b.evidence, evidence);
    assert.ok(b.detail?.includes('key k_read lacks orders:write'));
    const remediation = b.remediation ?? '';
    assert.ok(remediation.includes('k_read') && remediation.includes('orders:write'), remediation);
    assert.ok(!remediation.includes('{'), remediation);
  });

  void test('detailed mode without evidence: no evidence member', () => {
    const b = problemBody(input('GATEWAY_SHUTTING_DOWN', true));
    assert.deepEqual(Object.keys(b).sort(), [...PUBLIC_KEYS, 'detail', 'remediation'].sort());
  });

  void test('the request id fills {request_id}', () => {
    const b = problemBody(input('GATEWAY_INTERNAL_ERROR', true, { requestId: 'abc-123' }));
    assert.ok(b.remediation?.includes('abc-123'));
  });

  void test('type_base is a prefix', () => {
    const b = problemBody(input('ROUTE_NOT_FOUND', false, { typeBase: 'https://docs.example.com/errors#' }));
    assert.equal(b.type, 'https://docs.example.com/errors#route_not_found');
  });
});

void describe('problemHeaders', () => {
  for (const [code, e] of ENTRIES) {
    void test(code, () => {
      const h = problemHeaders(input(code, false));
      assert.equal(h['content-type'], 'application/problem+json');
      assert.equal(h['cache-control'], 'no-store');
      assert.equal(h['x-pinpoint-code'], code);
      assert.equal(h['x-pinpoint-layer'], e.layer);
      assert.equal(h['x-pinpoint-policy'], 'orders-write-key');
      assert.equal(h['proxy-status'], proxyStatus(code));
      assert.match(h['proxy-status'] ?? '', new RegExp(`^pinpoint; error=${e.proxyStatus}; details="${code}"$`));
      if (e.retryable) assert.equal(h['x-should-retry'], undefined, `${code} is retryable`);
      else assert.equal(h['x-should-retry'], 'false', `${code} is not retryable`);
    });
  }

  void test('extra headers from the decision are added', () => {
    const h = problemHeaders(input('AUTH_KEY_MISSING', false, { headers: { 'www-authenticate': 'Bearer realm="pinpoint"' } }));
    assert.equal(h['www-authenticate'], 'Bearer realm="pinpoint"');
    assert.equal(h['x-pinpoint-code'], 'AUTH_KEY_MISSING');
  });

  void test('METHOD_NOT_ALLOWED carries Allow when the router gives it', () => {
    const h = problemHeaders(input('METHOD_NOT_ALLOWED', false, { policy: 'router', headers: { allow: 'GET, HEAD' } }));
    assert.equal(h.allow, 'GET, HEAD');
  });

  void test("the OpenAI envelope's param names the field in public mode too; other evidence stays out", () => {
    const evidence = { param: 'temperature', problem: 'must be <= 2' };
    const pub = input('AI_REQUEST_INVALID', false, { evidence });
    const error = envelopeBody('openai', problemBody(pub), pub.evidence).error as Record<string, unknown>;
    assert.equal(error.param, 'temperature');
    assert.equal(error.evidence, undefined);
    const none = envelopeBody('openai', problemBody(input('AI_MODEL_NOT_FOUND', false))).error as Record<string, unknown>;
    assert.equal(none.param, null);
  });

  void test('AI envelopes also carry the request id where the client SDK reads it', () => {
    // The Anthropic SDK reads request-id, the OpenAI SDK x-request-id, whatever request_id.header says.
    const anthropic = problemHeaders(input('AUTH_KEY_INVALID', false, { requestId: 'r-1', requestIdHeader: 'x-correlation-id', envelope: 'anthropic' }));
    assert.equal(anthropic['request-id'], 'r-1');
    assert.equal(anthropic['x-correlation-id'], 'r-1');
    const openai = problemHeaders(input('AUTH_KEY_INVALID', false, { requestId: 'r-2', requestIdHeader: 'x-correlation-id', envelope: 'openai' }));
    assert.equal(openai['x-request-id'], 'r-2');
    assert.equal(openai['request-id'], undefined);
    const problem = problemHeaders(input('AUTH_KEY_INVALID', false, { requestId: 'r-3', requestIdHeader: 'x-correlation-id' }));
    assert.equal(problem['request-id'], undefined);
    assert.equal(problem['x-request-id'], undefined);
  });
});
