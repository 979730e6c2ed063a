/**
 * `content-type` through its module: compile() then decide(). Assertions are on codes, evidence
 * and headers, never on prose.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { CATALOG } from '../../errors/catalog.ts';
import { context, decideSync } from '../../pipeline/testing.ts';
import { ConfigError, type CompiledPolicy, type Decision, type RequestFacts } from '../../pipeline/types.ts';
import { contentType } from './index.ts';
import { parseMediaType } from './media-type.ts';
import type { ContentTypeConfig } from './schema.ts';

const CTX = { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: {}, path: 'policies.json-only.config', baseDir: process.cwd() };
const DEFAULTS: ContentTypeConfig = { allow: ['application/json', 'application/*+json'], methods: ['POST', 'PUT', 'PATCH'], require_body_type: true, charsets: [] };

function compile(config: Partial<ContentTypeConfig> = {}): CompiledPolicy {
  return contentType.compile({ ...DEFAULTS, ...config }, { id: 'json-only', mode: 'enforce' }, CTX);
}

function facts(method: string, headers: Record<string, string | undefined>, contentLength: number | undefined): RequestFacts {
  return {
    method,
    path: '/orders',
    rawQuery: '',
    host: 'api.example.com',
    headers,
    clientIp: '198.51.100.1',
    clientIpSource: 'socket',
    params: {},
    contentLength,
    now: 0,
  };
}

interface Case {
  readonly name: string;
  readonly config?: Partial<ContentTypeConfig>;
  readonly method?: string;
  readonly type?: string;
  /** Content-Length; 'chunked' sends Transfer-Encoding instead. Default 12. */
  readonly length?: number | 'chunked';
  readonly expect: 'allow' | 'skip' | 'CONTENT_TYPE_MISSING' | 'CONTENT_TYPE_NOT_ACCEPTED' | 'CONTENT_TYPE_CHARSET_NOT_ACCEPTED';
  readonly evidence?: Record<string, unknown>;
  /** Exact denial headers; `null` asserts there are none. */
  readonly headers?: Record<string, string> | null;
}

const ACCEPT_JSON = 'application/json';

const CASES: readonly Case[] = [
  { name: 'JSON accepted', type: 'application/json', expect: 'allow' },
  { name: 'type and subtype are case-insensitive (RFC 9110 §8.3.1)', type: 'Application/JSON', expect: 'allow' },
  { name: 'parameters are ignored when no charset rule', type: 'application/json; charset=iso-8859-1', expect: 'allow' },
  { name: 'structured suffix +json (RFC 6839)', type: 'application/vnd.api+json', expect: 'allow' },
  { name: 'suffix wildcard needs a name before +', type: 'application/+json', expect: 'CONTENT_TYPE_NOT_ACCEPTED', evidence: { sent: 'application/+json' } },
  { name: 'suffix wildcard does not match another suffix', type: 'application/vnd.api+xml', expect: 'CONTENT_TYPE_NOT_ACCEPTED' },
  {
    name: 'form-encoded body on a JSON route',
    type: 'application/x-www-form-urlencoded',
    expect: 'CONTENT_TYPE_NOT_ACCEPTED',
    evidence: { method: 'POST', sent: 'application/x-www-form-urlencoded', accepted: ['application/json', 'application/*+json'] },
    headers: { 'accept-post': ACCEPT_JSON },
  },
  {
    name: 'multipart on a JSON route, PATCH: Accept-Patch (RFC 5789 §3.1)',
    method: 'PATCH',
    type: 'multipart/form-data; boundary=x',
    expect: 'CONTENT_TYPE_NOT_ACCEPTED',
    evidence: { method: 'PATCH', sent: 'multipart/form-data' },
    headers: { 'accept-patch': ACCEPT_JSON },
  },
  { name: 'PUT: no Accept-* header exists for it', method: 'PUT', type: 'text/plain', expect: 'CONTENT_TYPE_NOT_ACCEPTED', headers: null },
  {
    name: 'not a media type: the value is clipped into evidence',
    type: 'json',
    expect: 'CONTENT_TYPE_NOT_ACCEPTED',
    evidence: { sent: 'json' },
  },
  { name: 'malformed parameter', type: 'application/json; charset', expect: 'CONTENT_TYPE_NOT_ACCEPTED' },
  {
    name: 'body without Content-Type',
    expect: 'CONTENT_TYPE_MISSING',
    evidence: { method: 'POST', accepted: ['application/json', 'application/*+json'] },
    headers: { 'accept-post': ACCEPT_JSON },
  },
  { name: 'empty Content-Type counts as missing', type: '  ', expect: 'CONTENT_TYPE_MISSING' },
  { name: 'chunked body without Content-Type', length: 'chunked', expect: 'CONTENT_TYPE_MISSING' },
  { name: 'missing allowed when require_body_type is false', config: { require_body_type: false }, expect: 'allow' },
  { name: 'wrong type still refused when require_body_type is false', config: { require_body_type: false }, type: 'text/plain', expect: 'CONTENT_TYPE_NOT_ACCEPTED' },
  { name: 'no body (Content-Length 0): nothing to check', length: 0, type: 'text/plain', expect: 'allow' },
  { name: 'no body (neither length nor chunked)', length: undefined, expect: 'allow' },
  { name: 'GET is not checked by default', method: 'GET', type: 'text/plain', expect: 'skip' },
  { name: 'DELETE checked when listed', config: { methods: ['delete'] }, method: 'DELETE', type: 'text/plain', expect: 'CONTENT_TYPE_NOT_ACCEPTED', headers: null },
  { name: 'type/* pattern', config: { allow: ['text/*'] }, type: 'text/csv', expect: 'allow' },
  {
    name: 'type/* pattern refuses another type; Accept-Post carries it',
    config: { allow: ['text/*', 'application/*+json'] },
    type: 'application/json',
    expect: 'CONTENT_TYPE_NOT_ACCEPTED',
    headers: { 'accept-post': 'text/*' },
  },
  { name: 'only *+suffix patterns: no Accept-Post', config: { allow: ['application/*+json'] }, type: 'text/plain', expect: 'CONTENT_TYPE_NOT_ACCEPTED', headers: null },
  { name: '*/* accepts anything typed', config: { allow: ['*/*'] }, type: 'image/png', expect: 'allow' },
  { name: '*/* still requires a type', config: { allow: ['*/*'] }, expect: 'CONTENT_TYPE_MISSING', headers: { 'accept-post': '*/*' } },
  { name: 'charset in the list', config: { charsets: ['utf-8'] }, type: 'application/json; charset=UTF-8', expect: 'allow' },
  { name: 'quoted charset in the list', config: { charsets: ['utf-8'] }, type: 'application/json; charset="utf-8"', expect: 'allow' },
  { name: 'no charset with a charset rule', config: { charsets: ['utf-8'] }, type: 'application/json', expect: 'allow' },
  {
    name: 'charset not in the list',
    config: { charsets: ['utf-8'] },
    type: 'application/json;charset=latin1',
    expect: 'CONTENT_TYPE_CHARSET_NOT_ACCEPTED',
    evidence: { media_type: 'application/json', sent_charset: 'latin1', accepted_charsets: ['utf-8'] },
    headers: null,
  },
];

function outcome(d: Decision): string {
  return d.outcome === 'deny' ? d.code : d.outcome;
}

void describe('content-type decide', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const length = c.length === undefined && !('length' in c) ? 12 : c.length;
      const headers: Record<string, string | undefined> = {};
      if (c.type !== undefined) headers['content-type'] = c.type;
      if (length === 'chunked') headers['transfer-encoding'] = 'chunked';
      const d = decideSync(compile(c.config), context({ facts: facts(c.method ?? 'POST', headers, length === 'chunked' ? undefined : length) }));
      assert.equal(outcome(d), c.expect, JSON.stringify(d));
      if (c.evidence !== undefined) {
        assert.ok(d.outcome !== 'skip' && d.evidence !== undefined);
        for (const [k, v] of Object.entries(c.evidence)) assert.deepEqual(d.evidence[k], v, `evidence.${k}`);
      }
      if (c.headers !== undefined) {
        assert.equal(d.outcome, 'deny');
        assert.deepEqual(d.headers, c.headers ?? undefined);
      }
    });
  }

  void test('every code is a 415 (RFC 9110 §15.5.16)', () => {
    for (const code of ['CONTENT_TYPE_MISSING', 'CONTENT_TYPE_NOT_ACCEPTED', 'CONTENT_TYPE_CHARSET_NOT_ACCEPTED'] as const) assert.equal(CATALOG[code].status, 415);
  });

  void test('a huge malformed Content-Type is clipped in evidence', () => {
    const d = decideSync(compile(), context({ facts: facts('POST', { 'content-type': 'x'.repeat(5000) }, 3) }));
    assert.equal(d.outcome, 'deny');
    assert.ok(String(d.evidence.sent).length <= 101);
  });
});

void describe('content-type compile', () => {
  const BAD: readonly { name: string; config: Partial<ContentTypeConfig>; paths: string[] }[] = [
    { name: 'not a media type', config: { allow: ['application/json', 'json'] }, paths: ['policies.json-only.config.allow[1]'] },
    { name: 'parameters in a pattern', config: { allow: ['application/json; charset=utf-8'] }, paths: ['policies.json-only.config.allow[0]'] },
    { name: 'wildcard type with concrete subtype', config: { allow: ['*/json'] }, paths: ['policies.json-only.config.allow[0]'] },
    { name: 'partial subtype wildcard', config: { allow: ['application/vnd.*'] }, paths: ['policies.json-only.config.allow[0]'] },
    { name: 'empty suffix', config: { allow: ['application/*+'] }, paths: ['policies.json-only.config.allow[0]'] },
    { name: 'several at once', config: { allow: ['a', 'b/c', 'd'], charsets: ['utf 8'] }, paths: ['policies.json-only.config.allow[0]', 'policies.json-only.config.allow[2]', 'policies.json-only.config.charsets[0]'] },
  ];
  for (const c of BAD) {
    void test(`rejects: ${c.name}`, () => {
      assert.throws(
        () => compile(c.config),
        (err: unknown) => err instanceof ConfigError && assert.deepEqual(err.issues.map((i) => i.path), c.paths) === undefined,
      );
    });
  }

  void test('compiled policy carries id, type, mode and no body needs', () => {
    const p = compile();
    assert.deepEqual([p.id, p.type, p.mode, p.needsBody, p.bodyLimit], ['json-only', 'content-type', 'enforce', undefined, undefined]);
  });

  void test('compile copies its config', () => {
    const config: ContentTypeConfig = { ...DEFAULTS, allow: ['application/json'] };
    const p = contentType.compile(config, { id: 'j', mode: 'enforce' }, CTX);
    config.allow.push('text/plain');
    const d = decideSync(p, context({ facts: facts('POST', { 'content-type': 'text/plain' }, 1) }));
    assert.equal(outcome(d), 'CONTENT_TYPE_NOT_ACCEPTED');
  });
});

void describe('parseMediaType', () => {
  const CASES: readonly [string, string | undefined, Record<string, string>?][] = [
    ['application/json', 'application/json', {}],
    ['TEXT/Plain ; Charset="UTF-8" ; format=flowed', 'text/plain', { charset: 'UTF-8', format: 'flowed' }],
    ['multipart/form-data; boundary="a;b\\"c"', 'multipart/form-data', { boundary: 'a;b"c' }],
    ['application/json;', 'application/json', {}],
    ['application/json; charset=utf-8; charset=latin1', 'application/json', { charset: 'utf-8' }],
    ['application', undefined],
    ['/json', undefined],
    ['application/json x', undefined],
    ['application/json; =x', undefined],
    ['application/json; a="unterminated', undefined],
  ];
  for (const [input, essence, params] of CASES) {
    void test(input, () => {
      const mt = parseMediaType(input);
      assert.equal(mt?.essence, essence);
      if (params !== undefined) assert.deepEqual(Object.fromEntries(mt?.params ?? []), params);
    });
  }
});
