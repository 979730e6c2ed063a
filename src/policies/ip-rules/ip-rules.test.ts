import { context, decideSync } from '../../pipeline/testing.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { normaliseIp } from '../../net/cidr.ts';
import { ConfigError, type CompiledPolicy, type Decision, type RequestFacts } from '../../pipeline/types.ts';
import { ipRules } from './index.ts';
import { DECISION_CACHE_MAX } from './decide.ts';
import type { IpRulesConfig } from './schema.ts';

const CTX = { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: {}, path: 'policies.office.config', baseDir: process.cwd() };

function compile(config: Partial<IpRulesConfig>): CompiledPolicy {
  return ipRules.compile({ allow: [], deny: [], ...config }, { id: 'office', mode: 'enforce' }, CTX);
}

/** The socket address as Node reports it, normalised the way the gateway does (src/proxy/forwarded.ts). */
function facts(remote: string, source: RequestFacts['clientIpSource'] = 'socket'): RequestFacts {
  return {
    method: 'GET',
    path: '/',
    rawQuery: '',
    host: 'api.example.com',
    headers: {},
    clientIp: normaliseIp(remote),
    clientIpSource: source,
    params: {},
    contentLength: undefined,
    now: 0,
  };
}

function decide(p: CompiledPolicy, remote: string, source?: RequestFacts['clientIpSource']): Decision {
  return decideSync(p, context({ facts: facts(remote, source), routeId: 'r' }));
}

interface Case {
  readonly name: string;
  readonly config: Partial<IpRulesConfig>;
  readonly ip: string;
  readonly expect: 'allow' | 'IP_DENIED' | 'IP_NOT_ALLOWED';
  /** The rule text named in the decision (deny evidence.rule, or the allow rule). */
  readonly rule?: string;
}

const CASES: readonly Case[] = [
  // IPv4
  { name: 'v4 in allow CIDR', config: { allow: ['10.0.0.0/8'] }, ip: '10.1.2.3', expect: 'allow', rule: 'allow 10.0.0.0/8' },
  { name: 'v4 outside allow CIDR', config: { allow: ['10.0.0.0/8'] }, ip: '11.0.0.1', expect: 'IP_NOT_ALLOWED' },
  { name: 'v4 first address of CIDR', config: { allow: ['192.168.1.0/24'] }, ip: '192.168.1.0', expect: 'allow' },
  { name: 'v4 last address of CIDR', config: { allow: ['192.168.1.0/24'] }, ip: '192.168.1.255', expect: 'allow' },
  { name: 'v4 just past CIDR', config: { allow: ['192.168.1.0/24'] }, ip: '192.168.2.0', expect: 'IP_NOT_ALLOWED' },
  { name: 'v4 in deny CIDR', config: { deny: ['192.0.2.0/24'] }, ip: '192.0.2.77', expect: 'IP_DENIED', rule: '192.0.2.0/24' },
  { name: 'v4 outside deny CIDR, no allow list', config: { deny: ['192.0.2.0/24'] }, ip: '198.51.100.1', expect: 'allow' },
  { name: 'v4 /0 allows everything v4', config: { allow: ['0.0.0.0/0'] }, ip: '203.0.113.200', expect: 'allow' },
  { name: 'v4 single-address rule matches it', config: { deny: ['203.0.113.9'] }, ip: '203.0.113.9', expect: 'IP_DENIED', rule: '203.0.113.9' },
  { name: 'v4 single-address rule does not match its neighbour', config: { deny: ['203.0.113.9'] }, ip: '203.0.113.10', expect: 'allow' },
  { name: 'v4 /32 equals a single address', config: { allow: ['203.0.113.9/32'] }, ip: '203.0.113.9', expect: 'allow' },

  // IPv6
  { name: 'v6 in allow CIDR', config: { allow: ['2001:db8::/32'] }, ip: '2001:db8:1::5', expect: 'allow', rule: 'allow 2001:db8::/32' },
  { name: 'v6 outside allow CIDR', config: { allow: ['2001:db8::/32'] }, ip: '2001:db9::1', expect: 'IP_NOT_ALLOWED' },
  { name: 'v6 in deny CIDR', config: { deny: ['2001:db8:dead::/48'] }, ip: '2001:db8:dead:beef::1', expect: 'IP_DENIED', rule: '2001:db8:dead::/48' },
  { name: 'v6 single-address rule', config: { deny: ['::1'] }, ip: '::1', expect: 'IP_DENIED', rule: '::1' },
  { name: 'v6 single-address rule, written long-hand', config: { deny: ['2001:0db8:0000:0000:0000:0000:0000:0001'] }, ip: '2001:db8::1', expect: 'IP_DENIED' },
  { name: 'v6 client against v4-only allow list', config: { allow: ['10.0.0.0/8'] }, ip: '2001:db8::1', expect: 'IP_NOT_ALLOWED' },
  { name: 'v4 client against v6-only allow list', config: { allow: ['2001:db8::/32'] }, ip: '10.0.0.1', expect: 'IP_NOT_ALLOWED' },

  // Deny wins.
  { name: 'deny wins over allow (v4)', config: { allow: ['10.0.0.0/8'], deny: ['10.6.6.0/24'] }, ip: '10.6.6.6', expect: 'IP_DENIED', rule: '10.6.6.0/24' },
  { name: 'deny wins over allow (v6)', config: { allow: ['2001:db8::/32'], deny: ['2001:db8::bad'] }, ip: '2001:db8::bad', expect: 'IP_DENIED' },
  { name: 'allowed neighbour of a denied range', config: { allow: ['10.0.0.0/8'], deny: ['10.6.6.0/24'] }, ip: '10.6.7.1', expect: 'allow' },
  { name: 'first matching allow rule is named', config: { allow: ['10.0.0.0/8', '10.1.0.0/16'] }, ip: '10.1.0.1', expect: 'allow', rule: 'allow 10.0.0.0/8' },

  // IPv4-mapped IPv6 (a dual-stack socket's view of an IPv4 client).
  { name: 'mapped v6 client matches a v4 allow rule', config: { allow: ['10.0.0.0/8'] }, ip: '::ffff:10.1.2.3', expect: 'allow' },
  { name: 'mapped v6 client matches a v4 deny rule', config: { deny: ['192.0.2.0/24'] }, ip: '::ffff:192.0.2.1', expect: 'IP_DENIED' },
  { name: 'mapped v6 client outside v4 allow rule', config: { allow: ['10.0.0.0/8'] }, ip: '::ffff:11.0.0.1', expect: 'IP_NOT_ALLOWED' },
  { name: 'v4 client matches a mapped-v6 rule', config: { deny: ['::ffff:192.0.2.0/120'] }, ip: '192.0.2.5', expect: 'IP_DENIED' },

  // Not an address: never matches a rule.
  { name: 'empty client address with only deny rules', config: { deny: ['0.0.0.0/0'] }, ip: '', expect: 'allow' },
  { name: 'empty client address with an allow list fails closed', config: { allow: ['0.0.0.0/0'] }, ip: '', expect: 'IP_NOT_ALLOWED' },
];

void describe('ip-rules decide', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const d = decide(compile(c.config), c.ip);
      if (c.expect === 'allow') {
        assert.equal(d.outcome, 'allow', JSON.stringify(d));
        if (c.rule !== undefined) assert.equal(d.rule, c.rule);
        return;
      }
      assert.equal(d.outcome, 'deny', JSON.stringify(d));
      assert.equal(d.code, c.expect);
      assert.equal(d.evidence.client_ip, normaliseIp(c.ip));
      assert.equal(d.evidence.ip_source, 'socket');
      if (c.expect === 'IP_DENIED' && c.rule !== undefined) assert.equal(d.evidence.rule, c.rule);
      if (c.expect === 'IP_NOT_ALLOWED') assert.deepEqual(d.evidence.allow, c.config.allow);
    });
  }

  void test('the evidence names where the address came from', () => {
    const d = decide(compile({ allow: ['10.0.0.0/8'] }), '198.51.100.1', 'x-forwarded-for');
    assert.equal(d.outcome, 'deny');
    assert.equal(d.evidence.ip_source, 'x-forwarded-for');
  });

  void test('normaliseIp: mapped IPv4 unwrapped, everything else unchanged', () => {
    const table: readonly [string, string][] = [
      ['::ffff:192.0.2.1', '192.0.2.1'],
      ['192.0.2.1', '192.0.2.1'],
      ['2001:db8::1', '2001:db8::1'],
      ['::1', '::1'],
      ['::ffff:2001:db8::1', '::ffff:2001:db8::1'],
      ['', ''],
    ];
    for (const [input, out] of table) assert.equal(normaliseIp(input), out, input);
  });

  void test('compiled policy: id, type, mode', () => {
    const p = ipRules.compile({ allow: [], deny: ['10.0.0.0/8'] }, { id: 'x', mode: 'monitor' }, CTX);
    assert.deepEqual([p.id, p.type, p.mode, p.bodyLimit], ['x', 'ip-rules', 'monitor', undefined]);
  });
});

interface ErrorCase {
  readonly name: string;
  readonly config: IpRulesConfig;
  readonly issues: readonly { path: string; message: RegExp }[];
}

const ERROR_CASES: readonly ErrorCase[] = [
  {
    name: 'not an address',
    config: { allow: ['10.0.0.0/8', 'office'], deny: [] },
    issues: [{ path: 'policies.office.config.allow[1]', message: /"office".*not an IP address or CIDR/ }],
  },
  {
    name: 'v4 octet out of range',
    config: { allow: [], deny: ['10.0.0.256'] },
    issues: [{ path: 'policies.office.config.deny[0]', message: /"10.0.0.256"/ }],
  },
  {
    name: 'v4 prefix too long',
    config: { allow: ['10.0.0.0/33'], deny: [] },
    issues: [{ path: 'policies.office.config.allow[0]', message: /invalid prefix length \(0-32\)/ }],
  },
  {
    name: 'v6 prefix too long',
    config: { allow: [], deny: ['2001:db8::/129'] },
    issues: [{ path: 'policies.office.config.deny[0]', message: /invalid prefix length \(0-128\)/ }],
  },
  {
    name: 'empty prefix',
    config: { allow: ['10.0.0.0/'], deny: [] },
    issues: [{ path: 'policies.office.config.allow[0]', message: /invalid prefix length/ }],
  },
  {
    name: 'negative prefix',
    config: { allow: ['10.0.0.0/-1'], deny: [] },
    issues: [{ path: 'policies.office.config.allow[0]', message: /invalid prefix length/ }],
  },
  {
    name: 'a v4 prefix that is valid for v6 only',
    config: { allow: ['10.0.0.0/64'], deny: [] },
    issues: [{ path: 'policies.office.config.allow[0]', message: /invalid prefix length \(0-32\)/ }],
  },
  {
    name: 'every bad entry in both lists is reported',
    config: { allow: ['x', '10.0.0.0/8', 'y'], deny: ['::/300'] },
    issues: [
      { path: 'policies.office.config.allow[0]', message: /"x"/ },
      { path: 'policies.office.config.allow[2]', message: /"y"/ },
      { path: 'policies.office.config.deny[0]', message: /"::\/300"/ },
    ],
  },
  {
    name: 'both lists empty',
    config: { allow: [], deny: [] },
    issues: [{ path: 'policies.office.config', message: /at least one allow or deny entry/ }],
  },
];

void describe('ip-rules compile errors', () => {
  for (const c of ERROR_CASES) {
    void test(c.name, () => {
      let caught: unknown;
      try {
        ipRules.compile(c.config, { id: 'office', mode: 'enforce' }, CTX);
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof ConfigError, `expected ConfigError, got ${String(caught)}`);
      const issues = caught.issues;
      assert.deepEqual(
        issues.map((i) => i.path),
        c.issues.map((i) => i.path),
      );
      c.issues.forEach((e, i) => assert.match(issues[i]?.message ?? '', e.message));
    });
  }
});

void describe('ip-rules decision cache', () => {
  void test('a repeat client gets the same decision, and the address source stays part of it', () => {
    const p = compile({ deny: ['192.0.2.0/24'], allow: ['10.0.0.0/8'] });
    const first = decide(p, '10.1.2.3');
    assert.equal(decide(p, '10.1.2.3'), first, 'the second request reuses the decision');
    assert.ok(Object.isFrozen(first), 'a shared decision cannot be changed by one request');
    const bySocket = decide(p, '192.0.2.7', 'socket');
    const byHeader = decide(p, '192.0.2.7', 'x-forwarded-for');
    assert.equal(bySocket.outcome === 'deny' && bySocket.evidence['ip_source'], 'socket');
    assert.equal(byHeader.outcome === 'deny' && byHeader.evidence['ip_source'], 'x-forwarded-for');
  });

  void test('past DECISION_CACHE_MAX clients the oldest decisions go and decisions stay right', () => {
    const p = compile({ allow: ['10.0.0.0/8'] });
    // 10.x addresses are allowed, 11.x are not: walk both well past the bound.
    for (let i = 0; i < DECISION_CACHE_MAX * 2 + 10; i++) {
      const a = `${i % 2 === 0 ? 10 : 11}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const d = decide(p, a);
      assert.equal(d.outcome === 'deny' ? d.code : d.outcome, i % 2 === 0 ? 'allow' : 'IP_NOT_ALLOWED', a);
    }
    const d = decide(p, '11.0.0.1');
    assert.equal(d.outcome === 'deny' && d.code, 'IP_NOT_ALLOWED');
  });
});
