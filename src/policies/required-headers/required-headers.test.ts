/** `required-headers` through its module. Assertions are on codes, evidence and config paths. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { CATALOG } from '../../errors/catalog.ts';
import { context, decideSync } from '../../pipeline/testing.ts';
import { ConfigError, type CompiledPolicy, type Decision, type RequestFacts } from '../../pipeline/types.ts';
import { requiredHeaders } from './index.ts';
import type { HeaderRuleConfig } from './schema.ts';

const CTX = { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: {}, path: 'policies.hdr.config', baseDir: process.cwd() };

type RuleIn = Pick<HeaderRuleConfig, 'name'> & Partial<HeaderRuleConfig>;

function compile(rules: readonly RuleIn[]): CompiledPolicy {
  const headers = rules.map((r) => ({ status: 400 as const, secret: false, ...r }));
  return requiredHeaders.compile({ headers }, { id: 'hdr', mode: 'enforce' }, CTX);
}

function facts(headers: Record<string, string | string[] | undefined>): RequestFacts {
  return { method: 'POST', path: '/orders', rawQuery: '', host: 'api.example.com', headers, clientIp: '198.51.100.1', clientIpSource: 'socket', params: {}, contentLength: undefined, now: 0 };
}

const TENANT: RuleIn = { name: 'X-Tenant', pattern: '[a-z0-9-]{3,32}' };
const VERSION: RuleIn = { name: 'x-api-version', values: ['2024-06-01', '2025-01-01'] };
const INTERNAL: RuleIn = { name: 'x-internal-caller', values: ['billing-7f3a9c'], status: 403, secret: true };
const SIGNED: RuleIn = { name: 'x-signature', pattern: 'sha256=[0-9a-f]{64}', status: 403, secret: true };

interface Case {
  readonly name: string;
  readonly rules: readonly RuleIn[];
  readonly headers: Record<string, string | string[] | undefined>;
  readonly expect: 'allow' | 'REQUIRED_HEADER_MISSING' | 'REQUIRED_HEADER_MALFORMED' | 'REQUIRED_HEADER_MISSING_FORBIDDEN' | 'REQUIRED_HEADER_MALFORMED_FORBIDDEN';
  /** Exact evidence of a denial. */
  readonly evidence?: Record<string, unknown>;
}

const CASES: readonly Case[] = [
  { name: 'all present and valid', rules: [TENANT, VERSION, INTERNAL], headers: { 'x-tenant': 'acme-eu', 'x-api-version': '2025-01-01', 'x-internal-caller': 'billing-7f3a9c' }, expect: 'allow' },
  { name: 'presence only', rules: [{ name: 'x-request-source' }], headers: { 'x-request-source': 'cli' }, expect: 'allow' },
  {
    name: 'missing header (400)',
    rules: [TENANT],
    headers: {},
    expect: 'REQUIRED_HEADER_MISSING',
    evidence: { header: 'x-tenant', rule: 'matches [a-z0-9-]{3,32} (whole value)', failing_headers: ['x-tenant'] },
  },
  { name: 'empty value counts as missing', rules: [{ name: 'x-request-source' }], headers: { 'x-request-source': ' ' }, expect: 'REQUIRED_HEADER_MISSING', evidence: { header: 'x-request-source', rule: 'present, non-empty', failing_headers: ['x-request-source'] } },
  {
    name: 'pattern is anchored: a partial match is malformed; the value is shown',
    rules: [TENANT],
    headers: { 'x-tenant': 'ACME!acme' },
    expect: 'REQUIRED_HEADER_MALFORMED',
    evidence: { header: 'x-tenant', rule: 'matches [a-z0-9-]{3,32} (whole value)', failing_headers: ['x-tenant'], received: 'ACME!acme' },
  },
  {
    name: 'value not in the set',
    rules: [VERSION],
    headers: { 'x-api-version': '2023-01-01' },
    expect: 'REQUIRED_HEADER_MALFORMED',
    evidence: { header: 'x-api-version', rule: 'one of: 2024-06-01, 2025-01-01', failing_headers: ['x-api-version'], received: '2023-01-01' },
  },
  { name: 'values are case-sensitive', rules: [{ name: 'x-mode', values: ['fast'] }], headers: { 'x-mode': 'FAST' }, expect: 'REQUIRED_HEADER_MALFORMED' },
  { name: 'pattern and values both apply', rules: [{ name: 'x-mode', pattern: '[a-z]+', values: ['fast', 'slow'] }], headers: { 'x-mode': 'medium' }, expect: 'REQUIRED_HEADER_MALFORMED' },
  { name: 'a repeated header kept as an array: every value must pass', rules: [{ name: 'x-mode', values: ['fast'] }], headers: { 'x-mode': ['fast', 'slow'] }, expect: 'REQUIRED_HEADER_MALFORMED' },
  { name: 'a repeated header joined by Node fails an anchored pattern', rules: [TENANT], headers: { 'x-tenant': 'acme, other' }, expect: 'REQUIRED_HEADER_MALFORMED' },
  {
    name: 'secret header missing (403): rule does not list the values',
    rules: [INTERNAL],
    headers: {},
    expect: 'REQUIRED_HEADER_MISSING_FORBIDDEN',
    evidence: { header: 'x-internal-caller', rule: 'one of 1 configured value(s)', failing_headers: ['x-internal-caller'] },
  },
  {
    name: 'secret header wrong (403): no received value in evidence',
    rules: [INTERNAL],
    headers: { 'x-internal-caller': 'billing-guess' },
    expect: 'REQUIRED_HEADER_MALFORMED_FORBIDDEN',
    evidence: { header: 'x-internal-caller', rule: 'one of 1 configured value(s)', failing_headers: ['x-internal-caller'] },
  },
  {
    name: 'secret header with a pattern: the pattern is shown, the value is not',
    rules: [SIGNED],
    headers: { 'x-signature': 'sha256=zz-not-hex-secret' },
    expect: 'REQUIRED_HEADER_MALFORMED_FORBIDDEN',
    evidence: { header: 'x-signature', rule: 'matches sha256=[0-9a-f]{64} (whole value)', failing_headers: ['x-signature'] },
  },
  {
    name: 'first failing rule gives the code; every failing header is listed',
    rules: [VERSION, TENANT, INTERNAL],
    headers: { 'x-api-version': '2025-01-01', 'x-tenant': 'x', 'x-internal-caller': undefined },
    expect: 'REQUIRED_HEADER_MALFORMED',
    evidence: { header: 'x-tenant', rule: 'matches [a-z0-9-]{3,32} (whole value)', failing_headers: ['x-tenant', 'x-internal-caller'], received: 'x' },
  },
  {
    name: 'a 403 rule failing first gives a 403 code',
    rules: [INTERNAL, TENANT],
    headers: {},
    expect: 'REQUIRED_HEADER_MISSING_FORBIDDEN',
    evidence: { header: 'x-internal-caller', rule: 'one of 1 configured value(s)', failing_headers: ['x-internal-caller', 'x-tenant'] },
  },
  {
    name: 'a long received value is clipped',
    rules: [{ name: 'x-mode', values: ['fast'] }],
    headers: { 'x-mode': 'a'.repeat(200) },
    expect: 'REQUIRED_HEADER_MALFORMED',
    evidence: { header: 'x-mode', rule: 'one of: fast', failing_headers: ['x-mode'], received: `${'a'.repeat(64)}…` },
  },
];

function outcome(d: Decision): string {
  return d.outcome === 'deny' ? d.code : d.outcome;
}

void describe('required-headers decide', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const d = decideSync(compile(c.rules), context({ facts: facts(c.headers) }));
      assert.equal(outcome(d), c.expect, JSON.stringify(d));
      if (c.evidence !== undefined) {
        assert.equal(d.outcome, 'deny');
        assert.deepEqual(d.evidence, c.evidence);
      }
      // No decision may carry a secret header's value, nor a secret rule's allowed values.
      const text = JSON.stringify(d);
      for (const r of c.rules) {
        if (r.secret !== true) continue;
        const sent = c.headers[r.name.toLowerCase()];
        if (typeof sent === 'string') assert.ok(!text.includes(sent), `leaks ${r.name}: ${text}`);
        for (const v of r.values ?? []) assert.ok(!text.includes(v), `leaks an allowed value of ${r.name}: ${text}`);
      }
    });
  }

  void test('codes carry the status their name says', () => {
    assert.deepEqual(
      (['REQUIRED_HEADER_MISSING', 'REQUIRED_HEADER_MALFORMED', 'REQUIRED_HEADER_MISSING_FORBIDDEN', 'REQUIRED_HEADER_MALFORMED_FORBIDDEN'] as const).map((c) => CATALOG[c].status),
      [400, 400, 403, 403],
    );
  });
});

void describe('required-headers compile', () => {
  const BAD: readonly { name: string; rules: readonly RuleIn[]; issues: readonly [string, RegExp][] }[] = [
    { name: 'invalid regex', rules: [TENANT, { name: 'x-b', pattern: '[a-z' }], issues: [['policies.hdr.config.headers[1].pattern', /invalid regular expression/]] },
    { name: 'look-around is not RE2 syntax', rules: [{ name: 'x-a', pattern: '(?=a)a' }], issues: [['policies.hdr.config.headers[0].pattern', /RE2 syntax/]] },
    { name: 'duplicate name, any case', rules: [TENANT, { name: 'x-tenant' }], issues: [['policies.hdr.config.headers[1].name', /headers\[0\]/]] },
    { name: 'a value the pattern can never accept', rules: [{ name: 'x-v', pattern: '[0-9]+', values: ['1', 'two'] }], issues: [['policies.hdr.config.headers[0].values[1]', /does not match/]] },
    {
      name: 'a secret value the pattern can never accept is not echoed',
      rules: [{ name: 'x-s', pattern: '[0-9]+', values: ['hunter2'], secret: true }],
      issues: [['policies.hdr.config.headers[0].values[0]', /^this value does not match/]],
    },
  ];
  for (const c of BAD) {
    void test(`rejects: ${c.name}`, () => {
      assert.throws(
        () => compile(c.rules),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.deepEqual(err.issues.map((i) => i.path), c.issues.map(([p]) => p));
          c.issues.forEach(([, re], k) => assert.match(err.issues[k]?.message ?? '', re));
          return true;
        },
      );
    });
  }

  void test('the pattern is compiled once, at load', () => {
    const p = compile([TENANT]);
    for (let i = 0; i < 3; i++) assert.equal(outcome(decideSync(p, context({ facts: facts({ 'x-tenant': 'acme' }) }))), 'allow');
  });

  void test('id, type and mode', () => {
    const p = compile([TENANT]);
    assert.deepEqual([p.id, p.type, p.mode], ['hdr', 'required-headers', 'enforce']);
  });
});

void test('patterns run in linear time: a backtracking bomb is just a mismatch', () => {
  // (a|a)+ takes seconds on a backtracking engine with ~30 characters; RE2 answers at once.
  const p = compile([{ name: 'x-a', pattern: '(a|a)+' }]);
  const t0 = performance.now();
  const d = decideSync(p, context({ facts: facts({ 'x-a': `${'a'.repeat(5000)}b` }) }));
  assert.equal(outcome(d), 'REQUIRED_HEADER_MALFORMED');
  assert.ok(performance.now() - t0 < 1000);
  assert.equal(outcome(decideSync(p, context({ facts: facts({ 'x-a': 'aaaa' }) }))), 'allow');
});
