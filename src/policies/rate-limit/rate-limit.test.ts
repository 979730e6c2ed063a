/**
 * `rate-limit` driven the way the gateway drives it: compile() then decide(), against a real
 * MemoryCounterStore and a fake clock (facts.now). Assertions are on codes, evidence fields and
 * header values, never on prose.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { memoryStores } from '../../counters/testing.ts';
import type { CounterOp, CounterStore, OpResult } from '../../counters/types.ts';
import { CATALOG } from '../../errors/catalog.ts';
import { validate } from '../../config/validate.ts';
import { evaluateSync, evaluate } from '../../pipeline/run.ts';
import { asAllow, asDeny, assertEvidence, context, decideSync } from '../../pipeline/testing.ts';
import { ConfigError, type Allow, type CompiledPolicy, type Decision, type Deny, type Identity, type RequestFacts } from '../../pipeline/types.ts';
import { calendarWindow } from './decide.ts';
import { createRateLimit, parseDuration } from './index.ts';
import { RateLimitSchema, type LimitConfig, type RateLimitConfig } from './schema.ts';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const S = 1000;
const CTX = { consumers: [], apiKeys: KeyIndex.build([], {}).index, env: {}, path: 'policies.x.config', baseDir: process.cwd() };

const ALICE: Identity = { consumer: 'alice', credentialId: 'k_alice', credentialType: 'api-key', scopes: new Set() };
const BOB: Identity = { consumer: 'bob', credentialId: 'k_bob', credentialType: 'api-key', scopes: new Set() };

const memory = memoryStores();

function compile(limits: LimitConfig[], more: Partial<RateLimitConfig> = {}, store: CounterStore = memory(), id = 'x'): CompiledPolicy {
  const config: RateLimitConfig = { limits, headers: true, concurrency_retry_after: '1s', on_store_error: 'allow', ...more };
  return createRateLimit(() => store).compile(config, { id, mode: 'enforce' }, { ...CTX, path: `policies.${id}.config` });
}

function facts(now = NOW, headers: RequestFacts['headers'] = {}, clientIp = '198.51.100.7'): RequestFacts {
  return { method: 'GET', path: '/orders', rawQuery: '', host: 'api.example.com', headers, clientIp, clientIpSource: 'socket', params: {}, contentLength: undefined, now };
}

interface Req {
  readonly now?: number;
  readonly identity?: Identity | undefined;
  readonly ip?: string;
  readonly headers?: RequestFacts['headers'];
  readonly route?: string;
  readonly dryRun?: boolean;
}

function decide(p: CompiledPolicy, r: Req = {}): Decision {
  return decideSync(p, context({ facts: facts(r.now, r.headers, r.ip), identity: 'identity' in r ? r.identity : ALICE, routeId: r.route ?? 'orders', dryRun: r.dryRun ?? false }));
}

/** One arrival in a table: 'allow' with the RateLimit value, or a code with Retry-After. */
interface Step {
  readonly at: number;
  readonly expect: 'allow' | Deny['code'];
  readonly ratelimit?: string;
  readonly retryAfter?: string;
}

function runSteps(p: CompiledPolicy, steps: readonly Step[], base = NOW): void {
  steps.forEach((s, i) => {
    const d = decide(p, { now: base + s.at });
    const where = `step ${i} at +${s.at} ms: ${JSON.stringify(d)}`;
    if (s.expect === 'allow') {
      const a = asAllow(d);
      if (s.ratelimit !== undefined) assert.equal(a.responseHeaders?.ratelimit, s.ratelimit, where);
    } else {
      const deny = asDeny(d);
      assert.equal(deny.code, s.expect, where);
      if (s.retryAfter !== undefined) assert.equal(deny.headers?.['retry-after'], s.retryAfter, where);
      if (s.ratelimit !== undefined) assert.equal(deny.headers?.ratelimit, s.ratelimit, where);
    }
  });
}

void describe('rate (GCRA) through the policy, fake clock', () => {
  const CASES: readonly { name: string; rate: NonNullable<LimitConfig['rate']>; policy: string; steps: readonly Step[] }[] = [
    {
      name: '2 per minute (burst defaults to the limit)',
      rate: { limit: 2, window: '1m' },
      policy: '"per-minute";q=2;w=60',
      steps: [
        { at: 0, expect: 'allow', ratelimit: '"per-minute";r=1;t=30' },
        { at: 0, expect: 'allow', ratelimit: '"per-minute";r=0;t=30' },
        { at: 0, expect: 'RATE_LIMIT_EXCEEDED', retryAfter: '30', ratelimit: '"per-minute";r=0;t=30' },
        { at: 10 * S, expect: 'RATE_LIMIT_EXCEEDED', retryAfter: '20', ratelimit: '"per-minute";r=0;t=20' },
        // 0.5 s left: delay-seconds round up, a client never comes back early.
        { at: 29.5 * S, expect: 'RATE_LIMIT_EXCEEDED', retryAfter: '1' },
        { at: 30 * S, expect: 'allow', ratelimit: '"per-minute";r=0;t=30' },
        { at: 45 * S, expect: 'RATE_LIMIT_EXCEEDED', retryAfter: '15' },
        { at: 120 * S, expect: 'allow', ratelimit: '"per-minute";r=1;t=30' },
      ],
    },
    {
      name: '1 per minute with burst 3',
      rate: { limit: 1, window: '1m', burst: 3 },
      policy: '"per-minute";q=1;w=60',
      steps: [
        { at: 0, expect: 'allow', ratelimit: '"per-minute";r=2;t=60' },
        { at: 0, expect: 'allow', ratelimit: '"per-minute";r=1;t=60' },
        { at: 1 * S, expect: 'allow', ratelimit: '"per-minute";r=0;t=59' },
        { at: 1 * S, expect: 'RATE_LIMIT_EXCEEDED', retryAfter: '59' },
        { at: 60 * S, expect: 'allow', ratelimit: '"per-minute";r=0;t=60' },
      ],
    },
    {
      name: 'burst 1: evenly spaced, 10 per 10 s is one per second',
      rate: { limit: 10, window: '10s', burst: 1 },
      policy: '"per-minute";q=10;w=10',
      steps: [
        { at: 0, expect: 'allow', ratelimit: '"per-minute";r=0;t=1' },
        { at: 0.2 * S, expect: 'RATE_LIMIT_EXCEEDED', retryAfter: '1' },
        { at: 1 * S, expect: 'allow' },
        { at: 2 * S, expect: 'allow' },
        { at: 2.999 * S, expect: 'RATE_LIMIT_EXCEEDED', retryAfter: '1' },
        { at: 3 * S, expect: 'allow' },
      ],
    },
  ];
  for (const c of CASES) {
    void test(c.name, () => {
      const p = compile([{ id: 'per-minute', by: ['consumer'], rate: c.rate }]);
      assert.equal(asAllow(decide(p, { dryRun: true })).responseHeaders?.['ratelimit-policy'], c.policy);
      runSteps(p, c.steps);
    });
  }

  void test('denial evidence names the limit, the key, the window, remaining and the reset', () => {
    const p = compile([{ id: 'per-minute', by: ['consumer'], rate: { limit: 2, window: '1m' } }]);
    decide(p);
    decide(p);
    const d = asDeny(decide(p, { now: NOW + 10 * S }));
    assert.deepEqual(d.evidence, {
      limit_id: 'per-minute',
      limit_kind: 'rate',
      counted_by: 'consumer',
      key: 'consumer=alice',
      limit: 2,
      window: '1m',
      burst: 2,
      remaining: 0,
      reset_at: '2026-06-01T12:00:30.000Z',
      retry_after_s: 20,
      violated_limits: ['per-minute'],
    });
    assert.equal(d.identity, undefined, 'the identity came from authentication, not from here');
  });

  void test('Retry-After is honest at awkward rates and instants: waiting it passes, one second less does not', () => {
    // mulberry32: a fixed seed keeps the sequence reproducible.
    let seed = 0x5eed;
    const random = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const RATES: NonNullable<LimitConfig['rate']>[] = [
      { limit: 7, window: '1m' },
      { limit: 3, window: '1s' },
      { limit: 1000, window: '1h', burst: 13 },
      { limit: 5, window: '7s', burst: 1 },
    ];
    for (const rate of RATES) {
      const p = compile([{ id: 'r', by: ['consumer'], rate }]);
      const T = (parseDuration(rate.window) as number) / rate.limit;
      let now = NOW + 0.123;
      let denials = 0;
      for (let i = 0; i < 300; i++) {
        now += random() * T * 1.5;
        const d = decide(p, { now });
        const where = `${JSON.stringify(rate)} at +${now - NOW} ms`;
        if (d.outcome === 'allow') {
          const m = /;r=(\d+);t=(\d+)$/.exec(d.responseHeaders?.ratelimit ?? '');
          assert.ok(m !== null, where);
          assert.ok(Number(m[1]) < (rate.burst ?? rate.limit), `r ${where}`);
          assert.ok(Number(m[2]) >= 1 && Number(m[2]) <= Math.ceil(T / 1000), `t=${m[2]} ${where}`);
          continue;
        }
        denials++;
        const wait = Number(asDeny(d).headers?.['retry-after']) * 1000;
        assert.equal(asDeny(d).headers?.ratelimit, `"r";r=0;t=${wait / 1000}`, where);
        asAllow(decide(p, { now: now + wait, dryRun: true }));
        asDeny(decide(p, { now: now + wait - 1000, dryRun: true }));
      }
      assert.ok(denials > 10, `the sequence exercised denials (${denials}) for ${JSON.stringify(rate)}`);
    }
  });

  void test('a 101st request inside the minute waits exactly one emission interval', () => {
    const p = compile([{ id: 'per-minute', by: ['consumer'], rate: { limit: 100, window: '1m' } }]);
    for (let i = 0; i < 100; i++) asAllow(decide(p));
    const d = asDeny(decide(p));
    assert.equal(d.headers?.['retry-after'], '1');
    assert.equal(d.evidence.reset_at, '2026-06-01T12:00:00.600Z');
    asAllow(decide(p, { now: NOW + 600 }));
  });
});

void describe('quota (UTC calendar windows)', () => {
  void test('a daily quota is refused until midnight UTC, then starts again', () => {
    const p = compile([{ id: 'daily', by: ['consumer'], quota: { limit: 2, period: 'day' } }]);
    const late = Date.parse('2026-06-01T23:59:30Z');
    const midnight = Date.parse('2026-06-02T00:00:00Z');
    runSteps(
      p,
      [
        { at: 0, expect: 'allow', ratelimit: '"daily";r=1;t=30' },
        { at: 0, expect: 'allow', ratelimit: '"daily";r=0;t=30' },
        { at: 0, expect: 'RATE_LIMIT_QUOTA_EXCEEDED', retryAfter: '30', ratelimit: '"daily";r=0;t=30' },
        { at: 29.9 * S, expect: 'RATE_LIMIT_QUOTA_EXCEEDED', retryAfter: '1' },
        { at: midnight - late, expect: 'allow', ratelimit: '"daily";r=1;t=86400' },
        { at: midnight - late + 1, expect: 'allow' },
        { at: midnight - late + 2, expect: 'RATE_LIMIT_QUOTA_EXCEEDED', retryAfter: '86400' },
      ],
      late,
    );
    const d = asDeny(decide(p, { now: midnight + 5 * S }));
    assertEvidence(d, {
      limit_id: 'daily',
      limit_kind: 'quota',
      key: 'consumer=alice',
      limit: 2,
      window: 'day',
      window_start: '2026-06-02T00:00:00.000Z',
      reset_at: '2026-06-03T00:00:00.000Z',
      remaining: 0,
      retry_after_s: 86395,
    });
  });

  void test('a monthly quota resets on the 1st, and its policy item has no w', () => {
    const p = compile([{ id: 'monthly', by: ['consumer'], quota: { limit: 1, period: 'month' } }]);
    const end = Date.parse('2026-06-30T23:59:59Z');
    const a = asAllow(decide(p, { now: end }));
    assert.equal(a.responseHeaders?.['ratelimit-policy'], '"monthly";q=1');
    assert.equal(a.responseHeaders?.ratelimit, '"monthly";r=0;t=1');
    assertEvidence(asDeny(decide(p, { now: end })), { window: 'month', window_start: '2026-06-01T00:00:00.000Z', reset_at: '2026-07-01T00:00:00.000Z' });
    asAllow(decide(p, { now: Date.parse('2026-07-01T00:00:00Z') }));
  });

  void test('calendar windows: month lengths, leap February, year end', () => {
    const rows: readonly [string, 'day' | 'month', string, string][] = [
      ['2026-06-01T00:00:00Z', 'day', '2026-06-01T00:00:00.000Z', '2026-06-02T00:00:00.000Z'],
      ['2026-06-01T23:59:59.999Z', 'day', '2026-06-01T00:00:00.000Z', '2026-06-02T00:00:00.000Z'],
      ['2026-12-31T18:00:00Z', 'day', '2026-12-31T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
      ['2028-02-29T12:00:00Z', 'month', '2028-02-01T00:00:00.000Z', '2028-03-01T00:00:00.000Z'],
      ['2026-12-15T00:00:00Z', 'month', '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    ];
    for (const [at, period, start, end] of rows) {
      const w = calendarWindow(period, Date.parse(at));
      assert.deepEqual([new Date(w.start).toISOString(), new Date(w.end).toISOString()], [start, end], `${period} of ${at}`);
    }
  });
});

void describe('concurrency through Allow.release', () => {
  void test('slots are taken on allow and given back by release, once', () => {
    const store = memory();
    const p = compile([{ id: 'parallel', by: ['consumer'], concurrency: 2 }], {}, store);
    const key = 'x\u0000parallel\u0000concurrency\u0000consumer=alice';
    const first = asAllow(decide(p));
    assert.equal(first.responseHeaders?.ratelimit, '"parallel";r=1');
    assert.equal(first.responseHeaders?.['ratelimit-policy'], '"parallel";q=2;qu="concurrent-requests"');
    const second = asAllow(decide(p));
    assert.equal(store.inFlight(key), 2);

    const third = asDeny(decide(p));
    assert.equal(third.code, 'RATE_LIMIT_CONCURRENCY_EXCEEDED');
    assert.deepEqual(third.headers, { 'retry-after': '1', 'ratelimit-policy': '"parallel";q=2;qu="concurrent-requests"', ratelimit: '"parallel";r=0' });
    assertEvidence(third, { limit_id: 'parallel', limit_kind: 'concurrency', key: 'consumer=alice', limit: 2, in_flight: 2, window: null, reset_at: null, retry_after_s: 1 });
    assert.equal(store.inFlight(key), 2, 'a refused request holds nothing');

    assert.ok(first.release !== undefined && second.release !== undefined);
    first.release();
    first.release();
    assert.equal(store.inFlight(key), 1, 'release is idempotent');
    const fourth = asAllow(decide(p));
    second.release();
    fourth.release?.();
    assert.equal(store.inFlight(key), 0);
    // Bob has his own slots.
    asAllow(decide(p, { identity: BOB }));
  });

  void test('concurrency_retry_after sets Retry-After of a concurrency refusal', () => {
    const p = compile([{ id: 'parallel', by: ['consumer'], concurrency: 1 }], { concurrency_retry_after: '2500ms' });
    asAllow(decide(p));
    assert.equal(asDeny(decide(p)).headers?.['retry-after'], '3');
  });

  void test('the pipeline collects the release and the headers into the verdict', () => {
    const store = memory();
    const p = compile([{ id: 'parallel', by: ['ip'], concurrency: 1 }], {}, store);
    const plan = [{ policy: p, position: 0, attachedTo: 'route' as const }];
    const none = { get: () => undefined };
    const v = evaluateSync(plan, facts(), 'orders', none);
    assert.equal(v.allowed, true);
    assert.equal(v.releases.length, 1);
    assert.equal(v.responseHeaders?.ratelimit, '"parallel";r=0');
    const refused = evaluateSync(plan, facts(), 'orders', none);
    assert.equal(refused.deny?.code, 'RATE_LIMIT_CONCURRENCY_EXCEEDED');
    for (const r of v.releases) r();
    assert.equal(evaluateSync(plan, facts(), 'orders', none).allowed, true);
  });
});

void describe('headers', () => {
  const THREE: LimitConfig[] = [
    { id: 'per-minute', by: ['consumer'], rate: { limit: 100, window: '1m' } },
    { id: 'daily', by: ['consumer'], quota: { limit: 10000, period: 'day' } },
    { id: 'parallel', by: ['consumer'], concurrency: 5 },
  ];
  /** RFC 9651 List of Strings with Integer or String parameters, as the draft's fields use. */
  const SF_LIST = /^"[A-Za-z0-9._-]+"(;[a-z]+=(\d+|"[a-z-]+"))*(, "[A-Za-z0-9._-]+"(;[a-z]+=(\d+|"[a-z-]+"))*)*$/;

  void test('allowed: RateLimit-Policy and RateLimit list every limit, in config order', () => {
    const a = asAllow(decide(compile(THREE)));
    assert.deepEqual(a.responseHeaders, {
      'ratelimit-policy': '"per-minute";q=100;w=60, "daily";q=10000;w=86400, "parallel";q=5;qu="concurrent-requests"',
      ratelimit: '"per-minute";r=99;t=1, "daily";r=9999;t=43200, "parallel";r=4',
    });
    for (const v of Object.values(a.responseHeaders ?? {})) assert.match(v, SF_LIST);
    assertEvidence(a, {
      remaining: ['per-minute=99', 'daily=9999', 'parallel=4'],
      counted: ['per-minute by consumer: consumer=alice', 'daily by consumer: consumer=alice', 'parallel by consumer: consumer=alice'],
    });
  });

  void test('refused: Retry-After covers every violated limit; RateLimit lists only those', () => {
    const p = compile([
      { id: 'burst', by: ['consumer'], rate: { limit: 1, window: '10s' } },
      { id: 'slow', by: ['consumer'], rate: { limit: 1, window: '1h' } },
      { id: 'parallel', by: ['consumer'], concurrency: 5 },
    ]);
    asAllow(decide(p));
    const d = asDeny(decide(p, { now: NOW + 1 * S }));
    assert.equal(d.code, 'RATE_LIMIT_EXCEEDED');
    assert.deepEqual(d.headers, {
      'retry-after': '3599',
      'ratelimit-policy': '"burst";q=1;w=10, "slow";q=1;w=3600, "parallel";q=5;qu="concurrent-requests"',
      ratelimit: '"burst";r=0;t=9, "slow";r=0;t=3599',
    });
    for (const v of [d.headers?.['ratelimit-policy'], d.headers?.ratelimit]) assert.match(v ?? '', SF_LIST);
    assertEvidence(d, { limit_id: 'slow', violated_limits: ['burst', 'slow'], retry_after_s: 3599 });
  });

  void test('headers: false sends no RateLimit fields; a refusal still has Retry-After', () => {
    const p = compile([{ id: 'one', by: ['consumer'], rate: { limit: 1, window: '1m' } }], { headers: false });
    const a = asAllow(decide(p));
    assert.equal(a.responseHeaders, undefined);
    assert.deepEqual(asDeny(decide(p)).headers, { 'retry-after': '60' });
  });
});

void describe('dry run: peek only', () => {
  void test('reports what a live request would get, and consumes nothing', () => {
    const store = memory();
    const p = compile(
      [
        { id: 'one', by: ['consumer'], rate: { limit: 1, window: '1m', burst: 1 } },
        { id: 'daily', by: ['consumer'], quota: { limit: 1, period: 'day' } },
        { id: 'parallel', by: ['consumer'], concurrency: 1 },
      ],
      {},
      store,
    );
    for (let i = 0; i < 5; i++) {
      const a = asAllow(decide(p, { dryRun: true }));
      assert.equal(a.responseHeaders?.ratelimit, '"one";r=0;t=60, "daily";r=0;t=43200, "parallel";r=0');
      assert.equal(a.release, undefined, 'nothing taken, nothing to give back');
    }
    assert.equal(store.stats().keys, 0);
    assert.equal(store.stats().inFlightKeys, 0);
    const live = asAllow(decide(p));
    asDeny(decide(p, { dryRun: true }));
    live.release?.();
  });

  void test('a dry run of an exhausted limit names the denial without moving its clock', () => {
    const store = memory();
    const p = compile([{ id: 'one', by: ['consumer'], rate: { limit: 1, window: '1m', burst: 1 } }], {}, store);
    asAllow(decide(p));
    for (let i = 0; i < 3; i++) assert.equal(asDeny(decide(p, { dryRun: true })).headers?.['retry-after'], '60');
    asAllow(decide(p, { now: NOW + 60 * S }));
  });
});

void describe('keys and the anonymous fallback', () => {
  interface KeyCase {
    readonly name: string;
    readonly by: string[];
    readonly req: Req;
    readonly countedBy: string;
    readonly key: string;
  }
  const CASES: readonly KeyCase[] = [
    { name: 'consumer', by: ['consumer'], req: {}, countedBy: 'consumer', key: 'consumer=alice' },
    { name: 'anonymous consumer falls back to IP', by: ['consumer'], req: { identity: undefined }, countedBy: 'ip (no consumer)', key: 'ip=198.51.100.7' },
    { name: 'credential counts by its id', by: ['credential'], req: {}, countedBy: 'credential', key: 'credential=k_alice' },
    { name: 'anonymous credential falls back to IP', by: ['credential'], req: { identity: undefined }, countedBy: 'ip (no credential)', key: 'ip=198.51.100.7' },
    { name: 'ip (IPv6 counted per /64)', by: ['ip'], req: { ip: '2001:db8::1' }, countedBy: 'ip', key: 'ip=2001:db8:0:0::/64' },
    { name: 'route', by: ['route'], req: { route: 'invoices' }, countedBy: 'route', key: 'route=invoices' },
    { name: 'header value', by: ['header:X-Tenant'], req: { headers: { 'x-tenant': 'acme' } }, countedBy: 'header:x-tenant', key: 'header:x-tenant=acme' },
    { name: 'missing header falls back to IP', by: ['header:x-tenant'], req: {}, countedBy: 'ip (no header x-tenant)', key: 'ip=198.51.100.7' },
    { name: 'consumer + route', by: ['consumer', 'route'], req: {}, countedBy: 'consumer+route', key: 'consumer=alice, route=orders' },
    { name: 'anonymous consumer + route', by: ['consumer', 'route'], req: { identity: undefined }, countedBy: 'ip (no consumer)+route', key: 'ip=198.51.100.7, route=orders' },
    { name: 'ip + anonymous consumer: the IP counted once', by: ['ip', 'consumer'], req: { identity: undefined }, countedBy: 'ip+ip (no consumer)', key: 'ip=198.51.100.7' },
  ];
  for (const c of CASES) {
    void test(c.name, () => {
      const p = compile([{ id: 'one', by: c.by, rate: { limit: 1, window: '1m' } }]);
      asAllow(decide(p, c.req));
      assertEvidence(asDeny(decide(p, c.req)), { counted_by: c.countedBy, key: c.key });
    });
  }

  void test('separate keys count separately', () => {
    const p = compile([{ id: 'one', by: ['consumer', 'route'], rate: { limit: 1, window: '1m' } }]);
    const distinct: Req[] = [{}, { identity: BOB }, { route: 'invoices' }, { identity: undefined }, { identity: undefined, ip: '203.0.113.9' }];
    for (const r of distinct) asAllow(decide(p, r));
    for (const r of distinct) asDeny(decide(p, r));
  });

  void test('an authenticated caller does not share the bucket of anonymous callers from its IP', () => {
    const p = compile([{ id: 'one', by: ['consumer'], rate: { limit: 1, window: '1m' } }]);
    asAllow(decide(p, { identity: undefined }));
    asAllow(decide(p));
  });

  void test('two policy instances never share counters', () => {
    const store = memory();
    const a = compile([{ id: 'one', by: ['consumer'], rate: { limit: 1, window: '1m' } }], {}, store, 'a');
    const b = compile([{ id: 'one', by: ['consumer'], rate: { limit: 1, window: '1m' } }], {}, store, 'b');
    asAllow(decide(a));
    asAllow(decide(b));
  });

  void test('a long header value is hashed in the key and shortened in evidence', () => {
    const store = memory();
    const p = compile([{ id: 'one', by: ['header:x-tenant'], rate: { limit: 1, window: '1m' } }], {}, store);
    const long = 't'.repeat(5000);
    asAllow(decide(p, { headers: { 'x-tenant': long } }));
    const d = asDeny(decide(p, { headers: { 'x-tenant': long } }));
    assert.equal(d.evidence.key, `header:x-tenant=${'t'.repeat(32)}\u2026 (5000 chars)`);
    asAllow(decide(p, { headers: { 'x-tenant': `${long}x` } }));
    assert.equal(store.stats().keys, 2);
  });

  void test('repeated header fields are combined (RFC 9110 §5.3)', () => {
    const p = compile([{ id: 'one', by: ['header:x-tenant'], rate: { limit: 1, window: '1m' } }]);
    asAllow(decide(p, { headers: { 'x-tenant': ['a', 'b'] } }));
    assertEvidence(asDeny(decide(p, { headers: { 'x-tenant': 'a, b' } })), { key: 'header:x-tenant=a, b' });
  });
});

void describe('distinct codes, all-or-nothing', () => {
  const CASES: readonly { limit: LimitConfig; code: Deny['code'] }[] = [
    { limit: { id: 'r', by: ['consumer'], rate: { limit: 1, window: '1m' } }, code: 'RATE_LIMIT_EXCEEDED' },
    { limit: { id: 'q', by: ['consumer'], quota: { limit: 1, period: 'day' } }, code: 'RATE_LIMIT_QUOTA_EXCEEDED' },
    { limit: { id: 'c', by: ['consumer'], concurrency: 1 }, code: 'RATE_LIMIT_CONCURRENCY_EXCEEDED' },
  ];
  for (const c of CASES) {
    void test(`${c.code}: 429, retryable, names limit ${c.limit.id}`, () => {
      const p = compile([c.limit]);
      asAllow(decide(p));
      const d = asDeny(decide(p));
      assert.equal(d.code, c.code);
      assert.equal(CATALOG[d.code].status, 429);
      assert.equal(CATALOG[d.code].retryable, true);
      assert.equal(d.evidence.limit_id, c.limit.id);
      assert.match(d.headers?.['retry-after'] ?? '', /^[1-9][0-9]*$/);
    });
  }

  void test('every remediation placeholder is filled from the denial evidence', async () => {
    const denials: Deny[] = [];
    for (const c of CASES) {
      const p = compile([c.limit]);
      asAllow(decide(p));
      denials.push(asDeny(decide(p, {})));
    }
    const failing = compile([{ id: 'one', by: ['consumer'], rate: { limit: 1, window: '1m' } }], { on_store_error: 'deny' }, BROKEN_ASYNC);
    denials.push(asDeny(await failing.decide(context({ facts: facts(), identity: ALICE, routeId: 'orders' }))));
    assert.deepEqual(denials.map((d) => d.code), [...CASES.map((c) => c.code), 'RATE_LIMIT_STORE_UNAVAILABLE']);
    for (const d of denials) {
      for (const m of CATALOG[d.code].remediation.matchAll(/\{([a-z_]+)\}/g)) {
        const name = m[1] as string;
        // request_id is added by the problem envelope (src/errors/problem.ts), not by policies.
        if (name !== 'request_id') assert.ok(d.evidence[name] !== undefined && d.evidence[name] !== null, `${d.code}: {${name}} missing from ${JSON.stringify(d.evidence)}`);
      }
    }
  });

  void test('the three codes are distinct', () => {
    assert.equal(new Set(CASES.map((c) => c.code)).size, 3);
  });

  void test('a request refused by its quota does not spend its rate, nor hold a slot', () => {
    const store = memory();
    const p = compile(
      [
        { id: 'rate', by: ['consumer'], rate: { limit: 2, window: '1m', burst: 2 } },
        { id: 'daily', by: ['consumer'], quota: { limit: 1, period: 'day' } },
        { id: 'parallel', by: ['consumer'], concurrency: 1 },
      ],
      {},
      store,
    );
    asAllow(decide(p)).release?.();
    for (let i = 0; i < 5; i++) assert.equal(asDeny(decide(p)).code, 'RATE_LIMIT_QUOTA_EXCEEDED');
    assert.equal(store.stats().inFlightKeys, 0);
    // The rate still has its second token.
    const rateOnly = store.gcra('x\u0000rate\u0000rate\u0000consumer=alice', 30_000, 30_000, NOW, true);
    assert.equal(rateOnly.available, 1);
  });
});

/** A store that answers later, like the cluster store. */
class AsyncStore implements CounterStore {
  readonly inner = memory();
  run(ops: readonly CounterOp[], now: number, peek: boolean): Promise<readonly OpResult[]> {
    return new Promise((resolve) => setImmediate(() => resolve(this.inner.run(ops, now, peek))));
  }
  release(key: string): void {
    this.inner.release(key);
  }
}

const BROKEN_SYNC: CounterStore = {
  run: () => {
    throw new Error('boom');
  },
  release: () => {},
};
const BROKEN_ASYNC: CounterStore = { run: () => Promise.reject(new Error('primary did not answer')), release: () => {} };

void describe('asynchronous and failing stores', () => {
  void test('an asynchronous store makes decide a promise with the same answers', async () => {
    const p = compile([{ id: 'one', by: ['consumer'], rate: { limit: 1, window: '1m' } }], {}, new AsyncStore());
    const first = p.decide(context({ facts: facts(), identity: ALICE, routeId: 'orders' }));
    assert.equal(typeof (first as { then?: unknown }).then, 'function');
    asAllow(await first);
    assert.equal(asDeny(await p.decide(context({ facts: facts(), identity: ALICE, routeId: 'orders' }))).code, 'RATE_LIMIT_EXCEEDED');
  });

  void test('through the pipeline with an asynchronous store', async () => {
    const p = compile([{ id: 'parallel', by: ['consumer'], concurrency: 1 }], {}, new AsyncStore());
    const plan = [{ policy: p, position: 0, attachedTo: 'route' as const }];
    const v = await evaluate(plan, facts(), 'orders', { get: () => undefined });
    assert.equal(v.allowed, true);
    assert.equal(v.releases.length, 1);
  });

  const FAILURES: readonly { name: string; store: CounterStore; onError: 'allow' | 'deny'; expect: 'allow' | Deny['code'] }[] = [
    { name: 'sync failure, fail open', store: BROKEN_SYNC, onError: 'allow', expect: 'allow' },
    { name: 'sync failure, fail closed', store: BROKEN_SYNC, onError: 'deny', expect: 'RATE_LIMIT_STORE_UNAVAILABLE' },
    { name: 'async failure, fail open', store: BROKEN_ASYNC, onError: 'allow', expect: 'allow' },
    { name: 'async failure, fail closed', store: BROKEN_ASYNC, onError: 'deny', expect: 'RATE_LIMIT_STORE_UNAVAILABLE' },
  ];
  for (const f of FAILURES) {
    void test(f.name, async () => {
      const p = compile([{ id: 'one', by: ['consumer'], rate: { limit: 1, window: '1m' } }], { on_store_error: f.onError }, f.store);
      const d = await p.decide(context({ facts: facts(), identity: ALICE, routeId: 'orders' }));
      if (f.expect === 'allow') asAllow(d);
      else {
        assert.equal(asDeny(d).code, f.expect);
        assert.equal(CATALOG[f.expect].status, 503);
      }
      assertEvidence(d, { on_store_error: f.onError, limits: ['one'] });
      assert.match(String((d as Allow | Deny).evidence?.reason), /boom|did not answer/);
    });
  }
});

void describe('config', () => {
  const rate = (window: string): LimitConfig => ({ id: 'b', by: ['consumer'], rate: { limit: 10, window } });
  const ok: LimitConfig = { id: 'a', by: ['consumer'], rate: { limit: 10, window: '1m' } };

  const REJECTED: readonly { name: string; limits: LimitConfig[]; more?: Partial<RateLimitConfig>; path: string; message: RegExp }[] = [
    { name: 'sub-second window', limits: [ok, rate('500ms')], path: 'policies.x.config.limits[1].rate.window', message: /whole number of seconds/ },
    { name: 'fractional-second window', limits: [ok, rate('1500ms')], path: 'policies.x.config.limits[1].rate.window', message: /whole number of seconds/ },
    { name: 'window that is not a duration', limits: [ok, rate('fast')], path: 'policies.x.config.limits[1].rate.window', message: /duration/ },
    { name: 'zero window', limits: [ok, rate('0s')], path: 'policies.x.config.limits[1].rate.window', message: /at least 1s/ },
    { name: 'two kinds in one limit', limits: [{ id: 'a', by: ['consumer'], rate: { limit: 1, window: '1s' }, quota: { limit: 1, period: 'day' } }], path: 'policies.x.config.limits[0]', message: /exactly one of rate, quota or concurrency \(found rate, quota\)/ },
    { name: 'no kind', limits: [ok, { id: 'b', by: ['consumer'] }], path: 'policies.x.config.limits[1]', message: /found none/ },
    { name: 'duplicate id', limits: [ok, { ...ok }], path: 'policies.x.config.limits[1].id', message: /duplicate id "a" \(also limits\[0\]\)/ },
    { name: 'id unsafe for a structured-field string', limits: [{ ...ok, id: 'per "minute"' }], path: 'policies.x.config.limits[0].id', message: /A-Z/ },
    { name: 'credential-carrying header', limits: [{ ...ok, by: ['consumer', 'header:Authorization'] }], path: 'policies.x.config.limits[0].by[1]', message: /carries credentials/ },
    { name: 'unknown key', limits: [{ ...ok, by: ['user'] }], path: 'policies.x.config.limits[0].by[0]', message: /not a key/ },
    { name: 'bad header name', limits: [{ ...ok, by: ['header:x tenant'] }], path: 'policies.x.config.limits[0].by[0]', message: /not a header name/ },
    { name: 'key listed twice', limits: [{ ...ok, by: ['header:X-T', 'header:x-t'] }], path: 'policies.x.config.limits[0].by[1]', message: /listed twice/ },
    { name: 'no limits', limits: [], path: 'policies.x.config.limits', message: /at least one limit/ },
    { name: 'burst 0', limits: [{ id: 'a', by: ['consumer'], rate: { limit: 1, window: '1s', burst: 0 } }], path: 'policies.x.config.limits[0].rate.burst', message: />= 1/ },
    { name: 'concurrency 0', limits: [{ id: 'a', by: ['consumer'], concurrency: 0 }], path: 'policies.x.config.limits[0].concurrency', message: />= 1/ },
    { name: 'bad concurrency_retry_after', limits: [ok], more: { concurrency_retry_after: 'soon' }, path: 'policies.x.config.concurrency_retry_after', message: /duration/ },
  ];
  for (const c of REJECTED) {
    void test(`compile rejects: ${c.name}`, () => {
      assert.throws(
        () => compile(c.limits, c.more),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          const issue = err.issues.find((i) => i.path === c.path);
          assert.ok(issue !== undefined, `no issue at ${c.path}: ${JSON.stringify(err.issues)}`);
          assert.match(issue.message, c.message);
          return true;
        },
      );
    });
  }

  void test('the schema rejects a bad window at its exact path, and fills every default', () => {
    const bad = { limits: [ok, { id: 'b', rate: { limit: 1, window: 'fast' } }] };
    const issues = validate(RateLimitSchema, bad, 'policies.x.config');
    assert.deepEqual(issues.map((i) => i.path), ['policies.x.config.limits[1].rate.window']);

    const good: Record<string, unknown> = { limits: [{ id: 'a', rate: { limit: 1, window: '1s' } }] };
    assert.deepEqual(validate(RateLimitSchema, good, 'policies.x.config'), []);
    assert.deepEqual(good, { limits: [{ id: 'a', by: ['consumer'], rate: { limit: 1, window: '1s' } }], headers: true, concurrency_retry_after: '1s', on_store_error: 'allow' });
  });

  void test('the schema names unknown fields and bad keys by path', () => {
    const issues = validate(RateLimitSchema, { limits: [{ id: 'a', by: ['nobody'], concurency: 5 }] }, 'policies.x.config');
    const paths = issues.map((i) => i.path);
    assert.ok(paths.includes('policies.x.config.limits[0].by[0]'), JSON.stringify(issues));
    assert.ok(issues.some((i) => i.path === 'policies.x.config.limits[0]' && /unknown field "concurency" \(did you mean "concurrency"\?\)/.test(i.message)), JSON.stringify(issues));
  });

  void test('every schema field has a description', () => {
    const walk = (s: unknown, where: string): void => {
      if (typeof s !== 'object' || s === null) return;
      const o = s as { properties?: Record<string, { description?: string }>; items?: unknown; anyOf?: unknown[] };
      for (const [k, v] of Object.entries(o.properties ?? {})) {
        assert.ok(typeof v.description === 'string' && v.description.length > 0, `${where}.${k} has no description`);
        walk(v, `${where}.${k}`);
      }
      if (o.items !== undefined) walk(o.items, `${where}[]`);
    };
    walk(RateLimitSchema, 'config');
  });

  void test('parseDuration', () => {
    assert.deepEqual(['500ms', '30s', '1m', '1h', '1d', '1x', '', '-1s'].map(parseDuration), [500, 30_000, 60_000, 3_600_000, 86_400_000, undefined, undefined, undefined]);
  });

  void test('the compiled policy carries id, type and mode, and decides synchronously with the memory store', () => {
    const p = compile([ok]);
    assert.equal(p.id, 'x');
    assert.equal(p.type, 'rate-limit');
    assert.equal(p.mode, 'enforce');
    assert.equal(p.needsBody, undefined);
  });
});
