/**
 * `ai-limits` driven the way the gateway drives it: compile() then decide(), the AI handler's
 * charge() after the "response", against a real MemoryCounterStore. Two fake clocks: facts.now for
 * decisions and the module's clock for charges. Assertions are on codes, evidence fields and exact
 * header values, never on prose.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { memoryStores } from '../../counters/testing.ts';
import type { CounterOp, MeteredCounterStore, OpResult } from '../../counters/types.ts';
import { CATALOG } from '../../errors/catalog.ts';
import { openaiType } from '../../errors/envelopes.ts';
import { problemHeaders } from '../../errors/problem.ts';
import { validate } from '../../config/validate.ts';
import { evaluate, evaluateSync } from '../../pipeline/run.ts';
import { asAllow, asDeny, assertEvidence, context, decideSync } from '../../pipeline/testing.ts';
import {
  ConfigError,
  type AiProtocol,
  type AiUsage,
  type Allow,
  type CompiledPolicy,
  type ConsumerSpec,
  type Decision,
  type Deny,
  type Identity,
  type Mode,
  type RequestFacts,
} from '../../pipeline/types.ts';
import { goDuration, meterWindow, rfc3339 } from './decide.ts';
import { createAiLimits } from './index.ts';
import { AiLimitsSchema, type AiLimitConfig, type AiLimitsConfig } from './schema.ts';

/** 10 s into a minute, so minute windows and GCRA resets are told apart. */
const NOW = Date.parse('2026-06-01T12:00:10Z');
const S = 1000;

const CONSUMERS: readonly ConsumerSpec[] = [
  { id: 'alice', team: 'acme' },
  { id: 'bob', team: 'acme' },
  { id: 'carol' },
  { id: 'dave', team: 'zeta' },
];
const CTX = { consumers: CONSUMERS, apiKeys: KeyIndex.build([], {}).index, env: {}, path: 'policies.x.config', baseDir: process.cwd() };

const who = (consumer: string): Identity => ({ consumer, credentialId: `k_${consumer}`, credentialType: 'api-key', scopes: new Set() });
const ALICE = who('alice');
const BOB = who('bob');
const CAROL = who('carol');
const DAVE = who('dave');

const memory = memoryStores();

/** The charge clock: when the AI handler reports usage. Tests move it. */
let chargeAt = NOW;

interface Setup {
  readonly more?: Partial<AiLimitsConfig>;
  readonly store?: MeteredCounterStore;
  readonly id?: string;
  readonly mode?: Mode;
  readonly consumers?: readonly ConsumerSpec[];
}

function compile(limits: AiLimitConfig[], s: Setup = {}): CompiledPolicy {
  const store = s.store ?? memory();
  const config: AiLimitsConfig = { limits, headers: true, on_store_error: 'allow', ...s.more };
  const id = s.id ?? 'x';
  return createAiLimits({ store: () => store, clock: () => chargeAt }).compile(config, { id, mode: s.mode ?? 'enforce' }, { ...CTX, consumers: s.consumers ?? CONSUMERS, path: `policies.${id}.config` });
}

function facts(now = NOW): RequestFacts {
  return { method: 'POST', path: '/v1/chat/completions', rawQuery: '', host: 'ai.example.com', headers: {}, clientIp: '198.51.100.7', clientIpSource: 'socket', params: {}, contentLength: undefined, now };
}

interface Req {
  readonly now?: number;
  readonly identity?: Identity | undefined;
  readonly protocol?: AiProtocol | undefined;
  readonly dryRun?: boolean;
}

function decide(p: CompiledPolicy, r: Req = {}): Decision {
  return decideSync(p, context({ facts: facts(r.now), identity: 'identity' in r ? r.identity : ALICE, routeId: 'chat', dryRun: r.dryRun ?? false, protocol: 'protocol' in r ? r.protocol : 'openai' }));
}

const usage = (tokens: number, costMicroUsd = 0): AiUsage => ({ promptTokens: Math.floor(tokens / 2), completionTokens: tokens - Math.floor(tokens / 2), costMicroUsd });

/** Allows, then reports usage at `at` (the charge clock) as the AI handler does, when asked to. */
function allowAndCharge(p: CompiledPolicy, u: AiUsage, r: Req = {}, at = r.now ?? NOW): Allow {
  const a = asAllow(decide(p, r));
  chargeAt = at;
  a.charge?.(u);
  return a;
}

/** One arrival in a table. `headers` are checked exactly for the listed names only. */
interface Step {
  readonly at: number;
  readonly expect: 'allow' | Deny['code'];
  readonly headers?: Readonly<Record<string, string>>;
  /** Usage charged after an allowed step. */
  readonly charge?: AiUsage;
  readonly identity?: Identity;
}

function runSteps(p: CompiledPolicy, steps: readonly Step[], base = NOW): void {
  steps.forEach((s, i) => {
    const now = base + s.at;
    const d = decide(p, { now, ...(s.identity !== undefined ? { identity: s.identity } : {}) });
    const where = `step ${i} at +${s.at} ms: ${JSON.stringify(d)}`;
    let got: Readonly<Record<string, string>> | undefined;
    if (s.expect === 'allow') {
      const a = asAllow(d);
      got = a.responseHeaders;
      if (s.charge !== undefined) {
        chargeAt = now;
        a.charge?.(s.charge);
      }
    } else {
      const deny = asDeny(d);
      assert.equal(deny.code, s.expect, where);
      got = deny.headers;
    }
    for (const [k, v] of Object.entries(s.headers ?? {})) assert.equal(got?.[k], v, `${k} ${where}`);
  });
}

void describe('rpm (GCRA: a minute\u2019s allowance at once, then one per 60/rpm s)', () => {
  void test('3 per minute: the 4th is refused for 20 s, then one more passes', () => {
    const p = compile([{ id: 'chat', per: 'consumer', rpm: 3 }]);
    runSteps(p, [
      { at: 0, expect: 'allow', headers: { 'x-ratelimit-limit-requests': '3', 'x-ratelimit-remaining-requests': '2', 'x-ratelimit-reset-requests': '20s' } },
      { at: 0, expect: 'allow', headers: { 'x-ratelimit-remaining-requests': '1', 'x-ratelimit-reset-requests': '40s' } },
      { at: 0, expect: 'allow', headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1m0s' } },
      { at: 0, expect: 'AI_RPM_EXCEEDED', headers: { 'retry-after': '20', 'retry-after-ms': '20000', 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1m0s' } },
      { at: 12.5 * S, expect: 'AI_RPM_EXCEEDED', headers: { 'retry-after': '8', 'retry-after-ms': '7500', 'x-ratelimit-reset-requests': '47.5s' } },
      { at: 20 * S, expect: 'allow', headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1m0s' } },
      { at: 20 * S, expect: 'AI_RPM_EXCEEDED', headers: { 'retry-after': '20' } },
      { at: 120 * S, expect: 'allow', headers: { 'x-ratelimit-remaining-requests': '2', 'x-ratelimit-reset-requests': '20s' } },
    ]);
  });

  void test('denial evidence names the limit, the scope, limit, used/remaining and the reset', () => {
    const p = compile([{ id: 'chat', per: 'consumer', rpm: 2 }]);
    decide(p);
    decide(p);
    const d = asDeny(decide(p, { now: NOW + 6 * S }));
    assert.deepEqual(d.evidence, {
      limit_id: 'chat',
      metric: 'rpm',
      scope: 'consumer',
      scope_id: 'alice',
      consumer: 'alice',
      window: 'minute',
      unit: 'requests',
      limit: 2,
      used: 2,
      remaining: 0,
      reset_at: '2026-06-01T12:01:10.000Z',
      retry_after_s: 24,
      retry_after_ms: 24_000,
      violated_limits: ['chat.rpm'],
    });
    assert.equal(d.identity, undefined, 'the identity came from authentication, not from here');
  });

  void test('consumers count separately under per: consumer', () => {
    const p = compile([{ id: 'chat', per: 'consumer', rpm: 1 }]);
    asAllow(decide(p));
    asDeny(decide(p));
    asAllow(decide(p, { identity: BOB }));
  });
});

void describe('tpm (metered per clock minute: checked before, charged after)', () => {
  void test('a charge that pushes usage past the limit refuses the next request until the next minute', () => {
    const p = compile([{ id: 'tokens', per: 'consumer', tpm: 1000 }]);
    runSteps(p, [
      { at: 0, expect: 'allow', charge: usage(600), headers: { 'x-ratelimit-limit-tokens': '1000', 'x-ratelimit-remaining-tokens': '1000', 'x-ratelimit-reset-tokens': '50s' } },
      // 400 left is still under the limit: the request passes, and its 700 tokens overshoot.
      { at: 10 * S, expect: 'allow', charge: usage(700), headers: { 'x-ratelimit-remaining-tokens': '400', 'x-ratelimit-reset-tokens': '40s' } },
      { at: 20 * S, expect: 'AI_TPM_EXCEEDED', headers: { 'retry-after': '30', 'retry-after-ms': '30000', 'x-ratelimit-remaining-tokens': '0', 'x-ratelimit-reset-tokens': '30s' } },
      { at: 49.999 * S, expect: 'AI_TPM_EXCEEDED', headers: { 'retry-after': '1', 'retry-after-ms': '1' } },
      // 12:01:00, a new minute: recovered.
      { at: 50 * S, expect: 'allow', headers: { 'x-ratelimit-remaining-tokens': '1000', 'x-ratelimit-reset-tokens': '1m0s' } },
    ]);
  });

  void test('denial evidence names the limit, the scope, limit, used/remaining and the reset', () => {
    const p = compile([{ id: 'tokens', per: 'consumer', tpm: 1000 }]);
    allowAndCharge(p, usage(600));
    allowAndCharge(p, usage(700), { now: NOW + 10 * S });
    const d = asDeny(decide(p, { now: NOW + 20 * S }));
    assertEvidence(d, {
      limit_id: 'tokens',
      metric: 'tpm',
      unit: 'tokens',
      scope: 'consumer',
      scope_id: 'alice',
      limit: 1000,
      used: 1300,
      remaining: 0,
      window: 'minute',
      window_start: '2026-06-01T12:00:00.000Z',
      reset_at: '2026-06-01T12:01:00.000Z',
      retry_after_s: 30,
      violated_limits: ['tokens.tpm'],
    });
  });

  void test('usage is charged to the minute it arrives in, never to one before the decision', () => {
    const p = compile([{ id: 'tokens', per: 'consumer', tpm: 100 }]);
    // Decided at 12:00:50, answered (streamed) until 12:01:05: the tokens count in 12:01.
    const streaming = asAllow(decide(p, { now: NOW + 40 * S }));
    asAllow(decide(p, { now: NOW + 45 * S }));
    chargeAt = NOW + 55 * S;
    streaming.charge?.(usage(150));
    assertEvidence(asDeny(decide(p, { now: NOW + 60 * S })), { used: 150, window_start: '2026-06-01T12:01:00.000Z' });
    // A charge clock behind the decision (skew) still charges the decision's minute.
    const q = compile([{ id: 'tokens', per: 'consumer', tpm: 100 }]);
    allowAndCharge(q, usage(150), { now: NOW }, NOW - 3_600_000);
    asDeny(decide(q, { now: NOW + 1 * S }));
  });

  void test('a live allow offers a charge only when there is something to meter', () => {
    assert.ok(asAllow(decide(compile([{ id: 'tokens', per: 'consumer', tpm: 100 }]))).charge !== undefined);
    assert.ok(asAllow(decide(compile([{ id: 'spend', per: 'consumer', budget_usd_month: 1 }]))).charge !== undefined);
    assert.equal(asAllow(decide(compile([{ id: 'rate', per: 'consumer', rpm: 100 }]))).charge, undefined, 'requests are counted at the decision');
  });

  void test('charge counts once, prompt + completion tokens, and ignores nonsense amounts', () => {
    const store = memory();
    const p = compile([{ id: 'tokens', per: 'consumer', tpm: 100 }], { store });
    const a = allowAndCharge(p, { promptTokens: 30, completionTokens: 20, costMicroUsd: 0 });
    a.charge?.({ promptTokens: 1000, completionTokens: 0, costMicroUsd: 0 });
    const b = allowAndCharge(p, { promptTokens: Number.NaN, completionTokens: -5, costMicroUsd: Number.POSITIVE_INFINITY });
    assert.ok(b.charge !== undefined);
    assert.equal(asAllow(decide(p)).responseHeaders?.['x-ratelimit-remaining-tokens'], '50');
  });
});

void describe('budgets (metered micro-dollars per UTC day and month; not retryable)', () => {
  void test('a daily budget is refused until midnight UTC, then starts again', () => {
    const p = compile([{ id: 'spend', per: 'consumer', budget_usd_day: 1 }]);
    const late = Date.parse('2026-06-01T23:59:30Z');
    allowAndCharge(p, usage(10, 600_000), { now: late });
    allowAndCharge(p, usage(10, 500_000), { now: late + 1 * S });
    const d = asDeny(decide(p, { now: late + 2 * S }));
    assert.equal(d.code, 'AI_BUDGET_DAILY_EXHAUSTED');
    assert.equal(d.headers?.['retry-after'], '28');
    assertEvidence(d, {
      limit_id: 'spend',
      metric: 'budget_usd_day',
      unit: 'usd',
      scope: 'consumer',
      scope_id: 'alice',
      window: 'day',
      limit: 1,
      used: 1.1,
      remaining: 0,
      window_start: '2026-06-01T00:00:00.000Z',
      reset_at: '2026-06-02T00:00:00.000Z',
    });
    asDeny(decide(p, { now: Date.parse('2026-06-01T23:59:59.999Z') }));
    asAllow(decide(p, { now: Date.parse('2026-06-02T00:00:00Z') }));
  });

  void test('a monthly budget resets on the 1st at 00:00Z', () => {
    const p = compile([{ id: 'monthly', per: 'consumer', budget_usd_month: 10 }]);
    const last = Date.parse('2026-06-30T23:00:00Z');
    allowAndCharge(p, usage(10, 4_000_000), { now: Date.parse('2026-06-02T08:00:00Z') });
    allowAndCharge(p, usage(10, 6_000_000), { now: last - 1 * S });
    const d = asDeny(decide(p, { now: last }));
    assert.equal(d.code, 'AI_BUDGET_MONTHLY_EXHAUSTED');
    assert.equal(d.headers?.['retry-after'], '3600');
    assertEvidence(d, { metric: 'budget_usd_month', window: 'month', limit: 10, used: 10, remaining: 0, window_start: '2026-06-01T00:00:00.000Z', reset_at: '2026-07-01T00:00:00.000Z' });
    asAllow(decide(p, { now: Date.parse('2026-07-01T00:00:00Z') }));
  });

  void test('the budget with the longest wait is the one named, and the run spends nothing', () => {
    const store = memory();
    const p = compile([{ id: 'both', per: 'consumer', rpm: 5, budget_usd_day: 1, budget_usd_month: 1 }], { store });
    allowAndCharge(p, usage(0, 1_000_000));
    for (let i = 0; i < 10; i++) {
      const d = asDeny(decide(p));
      assert.equal(d.code, 'AI_BUDGET_MONTHLY_EXHAUSTED');
      assertEvidence(d, { violated_limits: ['both.budget_usd_day', 'both.budget_usd_month'] });
    }
    // The refused runs took no request tokens: 4 of 5 left after the one allowed request.
    assert.equal(store.gcra('x\u0000both\u0000rpm\u0000consumer=alice', 12_000, 48_000, NOW, true).available, 4);
  });

  void test('meter windows: minute, UTC day, UTC month, leap February, year end', () => {
    const rows: readonly [string, 'tpm' | 'budget_usd_day' | 'budget_usd_month', string, string][] = [
      ['2026-06-01T12:00:10.500Z', 'tpm', '2026-06-01T12:00:00.000Z', '2026-06-01T12:01:00.000Z'],
      ['2026-06-01T23:59:59.999Z', 'tpm', '2026-06-01T23:59:00.000Z', '2026-06-02T00:00:00.000Z'],
      ['2026-06-01T00:00:00Z', 'budget_usd_day', '2026-06-01T00:00:00.000Z', '2026-06-02T00:00:00.000Z'],
      ['2026-12-31T18:00:00Z', 'budget_usd_day', '2026-12-31T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
      ['2028-02-29T12:00:00Z', 'budget_usd_month', '2028-02-01T00:00:00.000Z', '2028-03-01T00:00:00.000Z'],
      ['2026-12-15T00:00:00Z', 'budget_usd_month', '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    ];
    for (const [at, metric, start, end] of rows) {
      const w = meterWindow(metric, Date.parse(at));
      assert.deepEqual([new Date(w.start).toISOString(), new Date(w.end).toISOString()], [start, end], `${metric} of ${at}`);
    }
  });
});

void describe('teams and targeting', () => {
  void test('a team limit is one allowance shared by the consumers of the team', () => {
    const p = compile([{ id: 'acme-rate', per: 'team', rpm: 2 }]);
    runSteps(p, [
      { at: 0, expect: 'allow', identity: ALICE, headers: { 'x-ratelimit-remaining-requests': '1' } },
      { at: 0, expect: 'allow', identity: BOB, headers: { 'x-ratelimit-remaining-requests': '0' } },
      { at: 0, expect: 'AI_RPM_EXCEEDED', identity: ALICE },
      { at: 0, expect: 'AI_RPM_EXCEEDED', identity: BOB },
      // Another team has its own.
      { at: 0, expect: 'allow', identity: DAVE },
    ]);
    assertEvidence(asDeny(decide(p, { identity: BOB })), { scope: 'team', scope_id: 'acme', consumer: 'bob', limit_id: 'acme-rate' });
  });

  void test('team tokens: what alice used refuses bob', () => {
    const p = compile([{ id: 'acme-tokens', per: 'team', tpm: 500 }]);
    allowAndCharge(p, usage(500), { identity: ALICE });
    const d = asDeny(decide(p, { identity: BOB }));
    assert.equal(d.code, 'AI_TPM_EXCEEDED');
    assertEvidence(d, { scope: 'team', scope_id: 'acme', used: 500 });
  });

  void test('per: team skips a consumer without a team, and says so', () => {
    const p = compile([{ id: 'acme-rate', per: 'team', rpm: 2 }]);
    const d = decide(p, { identity: CAROL });
    assert.equal(d.outcome, 'skip');
    assert.match(d.rule, /carol has no team/);
  });

  void test('a limit that does not apply is listed in the evidence of the ones that do', () => {
    const p = compile([
      { id: 'team-rate', per: 'team', rpm: 2 },
      { id: 'own-rate', per: 'consumer', rpm: 5 },
    ]);
    const a = asAllow(decide(p, { identity: CAROL }));
    assertEvidence(a, { applied: ['own-rate: consumer carol'], not_applied: ['team-rate: per team, and consumer carol has no team'] });
    assert.equal(a.responseHeaders?.['x-ratelimit-limit-requests'], '5');
  });

  const TARGETS: readonly { name: string; limit: AiLimitConfig; applies: readonly Identity[]; skips: readonly Identity[] }[] = [
    { name: 'consumers: only those', limit: { id: 'l', per: 'consumer', rpm: 1, consumers: ['alice', 'carol'] }, applies: [ALICE, CAROL], skips: [BOB, DAVE] },
    { name: 'teams with per: consumer: each consumer of those teams', limit: { id: 'l', per: 'consumer', rpm: 1, teams: ['acme'] }, applies: [ALICE, BOB], skips: [CAROL, DAVE] },
    { name: 'teams with per: team: only those teams', limit: { id: 'l', per: 'team', rpm: 1, teams: ['zeta'] }, applies: [DAVE], skips: [ALICE, CAROL] },
    { name: 'empty lists mean everyone', limit: { id: 'l', per: 'consumer', rpm: 1, consumers: [], teams: [] }, applies: [ALICE, BOB, CAROL, DAVE], skips: [] },
  ];
  for (const c of TARGETS) {
    void test(`targeting, ${c.name}`, () => {
      const p = compile([c.limit]);
      for (const id of c.applies) {
        asAllow(decide(p, { identity: id }));
        // per: consumer, so each has its own allowance of 1.
        if (c.limit.per === 'consumer') assertEvidence(asDeny(decide(p, { identity: id })), { scope: 'consumer', scope_id: id.consumer });
      }
      for (const id of c.skips) assert.equal(decide(p, { identity: id }).outcome, 'skip', id.consumer);
    });
  }
});

void describe('no identity, dry run, monitor mode', () => {
  void test('a request without an identity is skipped and counts nothing', () => {
    const store = memory();
    const p = compile([{ id: 'chat', per: 'consumer', rpm: 1 }], { store });
    const d = decide(p, { identity: undefined });
    assert.equal(d.outcome, 'skip');
    assert.match(d.rule, /no identity/);
    assert.equal(store.stats().keys, 0);
  });

  void test('a dry run peeks: it reports what a live request would get, consumes nothing, offers no charge', () => {
    const store = memory();
    const p = compile([{ id: 'chat', per: 'consumer', rpm: 1, tpm: 100, budget_usd_day: 1 }], { store });
    for (let i = 0; i < 5; i++) {
      const a = asAllow(decide(p, { dryRun: true }));
      assert.equal(a.charge, undefined, 'no charge in a dry run');
      assert.equal(a.responseHeaders?.['x-ratelimit-remaining-requests'], '0');
    }
    assert.equal(store.stats().keys, 0);
    allowAndCharge(p, usage(100));
    // Exhausted: the dry run names the denial without moving the clock or the meters.
    for (let i = 0; i < 3; i++) {
      const d = asDeny(decide(p, { dryRun: true, now: NOW + 1 * S }));
      assert.equal(d.code, 'AI_RPM_EXCEEDED');
      assert.equal(d.headers?.['retry-after'], '59');
    }
    // Had a dry run counted, the request rate would still be refused a minute after the live one.
    asAllow(decide(p, { now: NOW + 60 * S }));
  });

  void test('monitor mode: the pipeline lets a refused request through, records it, and charges nothing for it', () => {
    const p = compile([{ id: 'chat', per: 'consumer', rpm: 1, tpm: 1000 }], { mode: 'monitor' });
    const auth: CompiledPolicy = { id: 'auth', type: 'api-key', mode: 'enforce', decide: () => ({ outcome: 'allow', rule: 'test key', identity: ALICE }) };
    const plan = [
      { policy: auth, position: 0, attachedTo: 'route' as const },
      { policy: p, position: 1, attachedTo: 'route' as const },
    ];
    const none = { get: () => undefined };
    const first = evaluateSync(plan, facts(), 'chat', none, [], { protocol: 'openai' });
    assert.equal(first.allowed, true);
    assert.equal(first.charges.length, 1);
    assert.equal(first.responseHeaders?.['x-ratelimit-remaining-requests'], '0');
    const second = evaluateSync(plan, facts(), 'chat', none, [], { protocol: 'openai' });
    assert.equal(second.allowed, true);
    assert.deepEqual(second.monitorDenied, ['x']);
    const entry = second.trace.find((t) => t.policy === 'x');
    assert.equal(entry?.outcome, 'monitor');
    assert.equal(entry?.code, 'AI_RPM_EXCEEDED');
    assert.equal(second.charges.length, 0, 'enforce would not have run it, so monitor does not count it');
  });
});

void describe('the pipeline', () => {
  void test('collects the charge and the protocol headers; a charge through the verdict meters the usage', async () => {
    const p = compile([{ id: 'chat', per: 'consumer', tpm: 100 }]);
    const auth: CompiledPolicy = { id: 'auth', type: 'api-key', mode: 'enforce', decide: () => ({ outcome: 'allow', rule: 'test key', identity: ALICE }) };
    const plan = [
      { policy: auth, position: 0, attachedTo: 'route' as const },
      { policy: p, position: 1, attachedTo: 'route' as const },
    ];
    const none = { get: () => undefined };
    const v = await evaluate(plan, facts(), 'chat', none, [], { protocol: 'anthropic' });
    assert.equal(v.responseHeaders?.['anthropic-ratelimit-tokens-remaining'], '100');
    chargeAt = NOW;
    for (const c of v.charges) c(usage(100));
    const refused = evaluateSync(plan, facts(), 'chat', none, [], { protocol: 'anthropic' });
    assert.equal(refused.deny?.code, 'AI_TPM_EXCEEDED');
    const dry = evaluateSync(plan, facts(), 'chat', none, [], { protocol: 'anthropic', dryRun: true });
    assert.equal(dry.deny?.code, 'AI_TPM_EXCEEDED');
  });
});

void describe('headers per protocol', () => {
  const TWO: AiLimitConfig[] = [{ id: 'chat', per: 'consumer', rpm: 60, tpm: 1000, budget_usd_day: 5 }];

  const ALLOWED: readonly { protocol: AiProtocol | undefined; headers: Record<string, string> }[] = [
    {
      protocol: 'openai',
      headers: {
        'x-ratelimit-limit-requests': '60',
        'x-ratelimit-remaining-requests': '59',
        'x-ratelimit-reset-requests': '1s',
        'x-ratelimit-limit-tokens': '1000',
        'x-ratelimit-remaining-tokens': '1000',
        'x-ratelimit-reset-tokens': '50s',
      },
    },
    {
      protocol: 'anthropic',
      headers: {
        'anthropic-ratelimit-requests-limit': '60',
        'anthropic-ratelimit-requests-remaining': '59',
        'anthropic-ratelimit-requests-reset': '2026-06-01T12:00:11Z',
        'anthropic-ratelimit-tokens-limit': '1000',
        'anthropic-ratelimit-tokens-remaining': '1000',
        'anthropic-ratelimit-tokens-reset': '2026-06-01T12:01:00Z',
      },
    },
    { protocol: 'prompt', headers: { 'ratelimit-policy': '"chat";q=60;w=60', ratelimit: '"chat";r=59;t=1' } },
    { protocol: undefined, headers: { 'ratelimit-policy': '"chat";q=60;w=60', ratelimit: '"chat";r=59;t=1' } },
  ];
  for (const c of ALLOWED) {
    void test(`allowed, ${c.protocol ?? 'no protocol'}: exactly these headers`, () => {
      assert.deepEqual(asAllow(decide(compile(TWO), { protocol: c.protocol })).responseHeaders, c.headers);
    });
  }

  const REFUSED: readonly { protocol: AiProtocol | undefined; headers: Record<string, string> }[] = [
    {
      protocol: 'openai',
      headers: {
        'retry-after': '1',
        'retry-after-ms': '1000',
        'x-ratelimit-limit-requests': '60',
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-reset-requests': '1m0s',
        'x-ratelimit-limit-tokens': '1000',
        'x-ratelimit-remaining-tokens': '1000',
        'x-ratelimit-reset-tokens': '50s',
      },
    },
    {
      protocol: 'anthropic',
      headers: {
        'retry-after': '1',
        'retry-after-ms': '1000',
        'anthropic-ratelimit-requests-limit': '60',
        'anthropic-ratelimit-requests-remaining': '0',
        'anthropic-ratelimit-requests-reset': '2026-06-01T12:01:10Z',
        'anthropic-ratelimit-tokens-limit': '1000',
        'anthropic-ratelimit-tokens-remaining': '1000',
        'anthropic-ratelimit-tokens-reset': '2026-06-01T12:01:00Z',
      },
    },
    { protocol: 'prompt', headers: { 'retry-after': '1', 'retry-after-ms': '1000', 'ratelimit-policy': '"chat";q=60;w=60', ratelimit: '"chat";r=0;t=1' } },
  ];
  for (const c of REFUSED) {
    void test(`refused by rpm, ${c.protocol ?? 'no protocol'}: exactly these headers`, () => {
      const p = compile(TWO);
      for (let i = 0; i < 60; i++) asAllow(decide(p, { protocol: c.protocol }));
      const d = asDeny(decide(p, { protocol: c.protocol }));
      assert.equal(d.code, 'AI_RPM_EXCEEDED');
      assert.deepEqual(d.headers, c.headers);
    });
  }

  void test('refused by tokens on a prompt route: RateLimit lists no violated request limit', () => {
    const p = compile(TWO);
    allowAndCharge(p, usage(1000), { protocol: 'prompt' });
    assert.deepEqual(asDeny(decide(p, { protocol: 'prompt' })).headers, { 'retry-after': '50', 'retry-after-ms': '50000', 'ratelimit-policy': '"chat";q=60;w=60' });
  });

  void test('several limits: each header family describes the tightest', () => {
    const p = compile([
      { id: 'own', per: 'consumer', rpm: 100, tpm: 5000 },
      { id: 'team', per: 'team', rpm: 10, tpm: 10_000 },
    ]);
    allowAndCharge(p, usage(9000), { identity: BOB });
    const a = asAllow(decide(p));
    assert.deepEqual(a.responseHeaders, {
      'x-ratelimit-limit-requests': '10',
      'x-ratelimit-remaining-requests': '8',
      'x-ratelimit-reset-requests': '12s',
      'x-ratelimit-limit-tokens': '10000',
      'x-ratelimit-remaining-tokens': '1000',
      'x-ratelimit-reset-tokens': '50s',
    });
    assertEvidence(a, { remaining: ['own.rpm=99', 'own.tpm=5000', 'team.rpm=8', 'team.tpm=1000'], applied: ['own: consumer alice', 'team: team acme'] });
  });

  void test('several limits with as much left: the headers describe the one that resets later', () => {
    const p = compile([
      { id: 'own', per: 'consumer', rpm: 2 },
      { id: 'team', per: 'team', rpm: 4 },
    ]);
    asAllow(decide(p, { identity: BOB }));
    asAllow(decide(p, { identity: BOB }));
    // alice: own 1 left, full again in 30 s; team 1 left, full again in 45 s.
    assert.deepEqual(asAllow(decide(p)).responseHeaders, { 'x-ratelimit-limit-requests': '4', 'x-ratelimit-remaining-requests': '1', 'x-ratelimit-reset-requests': '45s' });
  });

  void test('headers: false sends none; a refusal still has Retry-After and retry-after-ms', () => {
    const p = compile([{ id: 'chat', per: 'consumer', rpm: 1 }], { more: { headers: false } });
    assert.equal(asAllow(decide(p)).responseHeaders, undefined);
    assert.deepEqual(asDeny(decide(p)).headers, { 'retry-after': '60', 'retry-after-ms': '60000' });
  });

  void test('budgets only: no rate-limit header family, and the budget still refuses', () => {
    const p = compile([{ id: 'spend', per: 'consumer', budget_usd_day: 0.01 }]);
    const a = allowAndCharge(p, usage(1, 10_000));
    assert.equal(a.responseHeaders, undefined);
    assert.deepEqual(asDeny(decide(p)).headers, { 'retry-after': '43190', 'retry-after-ms': '43190000' });
  });

  void test('goDuration prints Go time.Duration text, rounded up to the millisecond', () => {
    const rows: readonly [number, string][] = [
      [0, '0s'],
      [0.0001, '0s'],
      [0.4, '1ms'],
      [12, '12ms'],
      [999.2, '1s'],
      [1000, '1s'],
      [1500, '1.5s'],
      [17_565, '17.565s'],
      [60_000, '1m0s'],
      [360_000, '6m0s'],
      [90_250, '1m30.25s'],
      [3_600_000, '1h0m0s'],
      [3_723_004, '1h2m3.004s'],
      [86_400_000, '24h0m0s'],
    ];
    for (const [ms, text] of rows) assert.equal(goDuration(ms), text, String(ms));
  });

  void test('rfc3339 rounds up to whole seconds', () => {
    assert.equal(rfc3339(Date.parse('2026-06-01T12:00:00Z')), '2026-06-01T12:00:00Z');
    assert.equal(rfc3339(Date.parse('2026-06-01T12:00:00.001Z')), '2026-06-01T12:00:01Z');
    assert.equal(rfc3339(Date.parse('2026-12-31T23:59:59.5Z')), '2027-01-01T00:00:00Z');
  });
});

void describe('codes', () => {
  const CASES: readonly { limit: AiLimitConfig; spend: AiUsage; code: Deny['code']; retryable: boolean }[] = [
    { limit: { id: 'r', per: 'consumer', rpm: 1 }, spend: usage(0), code: 'AI_RPM_EXCEEDED', retryable: true },
    { limit: { id: 't', per: 'consumer', tpm: 10 }, spend: usage(10), code: 'AI_TPM_EXCEEDED', retryable: true },
    { limit: { id: 'd', per: 'team', budget_usd_day: 2 }, spend: usage(0, 2_000_000), code: 'AI_BUDGET_DAILY_EXHAUSTED', retryable: false },
    { limit: { id: 'm', per: 'consumer', budget_usd_month: 3 }, spend: usage(0, 3_000_001), code: 'AI_BUDGET_MONTHLY_EXHAUSTED', retryable: false },
  ];

  for (const c of CASES) {
    void test(`${c.code}: 429, retryable ${c.retryable}, names limit ${c.limit.id}`, () => {
      const p = compile([c.limit]);
      allowAndCharge(p, c.spend);
      const d = asDeny(decide(p));
      assert.equal(d.code, c.code);
      assert.equal(CATALOG[d.code].status, 429);
      assert.equal(CATALOG[d.code].retryable, c.retryable);
      assert.equal(d.evidence.limit_id, c.limit.id);
      assert.equal(d.evidence.scope, c.limit.per);
      assert.match(d.headers?.['retry-after'] ?? '', /^[1-9][0-9]*$/);
      assert.match(d.headers?.['retry-after-ms'] ?? '', /^[1-9][0-9]*$/);
      const h = problemHeaders({ code: d.code, policy: 'x', requestId: 'r1', requestIdHeader: 'x-request-id', detailed: false, headers: d.headers, typeBase: 'urn:pinpoint:error:' });
      assert.equal(h['x-should-retry'], c.retryable ? undefined : 'false');
      // OpenAI clients tell a throttle from a spent quota by error.type.
      assert.equal(openaiType(429, d.code), c.retryable ? 'rate_limit_error' : 'insufficient_quota');
    });
  }

  void test('the codes are distinct', () => {
    assert.equal(new Set(CASES.map((c) => c.code)).size, CASES.length);
  });

  void test('every remediation placeholder is filled from the denial evidence', async () => {
    const denials: Deny[] = [];
    for (const c of CASES) {
      const p = compile([c.limit]);
      allowAndCharge(p, c.spend);
      denials.push(asDeny(decide(p)));
    }
    const failing = compile([{ id: 'one', per: 'consumer', rpm: 1 }], { more: { on_store_error: 'deny' }, store: BROKEN_ASYNC });
    denials.push(asDeny(await failing.decide(context({ facts: facts(), identity: ALICE }))));
    assert.deepEqual(denials.map((d) => d.code), [...CASES.map((c) => c.code), 'AI_LIMITS_STORE_UNAVAILABLE']);
    for (const d of denials) {
      for (const m of CATALOG[d.code].remediation.matchAll(/\{([a-z_]+)\}/g)) {
        const name = m[1] as string;
        // request_id is added by the problem envelope (src/errors/problem.ts), not by policies.
        if (name !== 'request_id') assert.ok(d.evidence[name] !== undefined && d.evidence[name] !== null, `${d.code}: {${name}} missing from ${JSON.stringify(d.evidence)}`);
      }
    }
  });
});

/** A store that answers later, like the cluster store. */
class AsyncStore implements MeteredCounterStore {
  readonly inner = memory();
  run(ops: readonly CounterOp[], now: number, peek: boolean): Promise<readonly OpResult[]> {
    return new Promise((resolve) => setImmediate(() => resolve(this.inner.run(ops, now, peek))));
  }
  release(key: string): void {
    this.inner.release(key);
  }
  add(key: string, amount: number, windowStart: number, windowEnd: number): void {
    this.inner.add(key, amount, windowStart, windowEnd);
  }
}

const BROKEN_SYNC: MeteredCounterStore = {
  run: () => {
    throw new Error('boom');
  },
  release: () => {},
  add: () => {},
};
const BROKEN_ASYNC: MeteredCounterStore = { run: () => Promise.reject(new Error('primary did not answer')), release: () => {}, add: () => {} };

void describe('asynchronous and failing stores', () => {
  void test('an asynchronous store makes decide a promise with the same answers', async () => {
    const p = compile([{ id: 'one', per: 'consumer', rpm: 1 }], { store: new AsyncStore() });
    const first = p.decide(context({ facts: facts(), identity: ALICE }));
    assert.equal(typeof (first as { then?: unknown }).then, 'function');
    asAllow(await first);
    assert.equal(asDeny(await p.decide(context({ facts: facts(), identity: ALICE }))).code, 'AI_RPM_EXCEEDED');
  });

  const FAILURES: readonly { name: string; store: MeteredCounterStore; onError: 'allow' | 'deny'; expect: 'allow' | Deny['code'] }[] = [
    { name: 'sync failure, fail open', store: BROKEN_SYNC, onError: 'allow', expect: 'allow' },
    { name: 'sync failure, fail closed', store: BROKEN_SYNC, onError: 'deny', expect: 'AI_LIMITS_STORE_UNAVAILABLE' },
    { name: 'async failure, fail open', store: BROKEN_ASYNC, onError: 'allow', expect: 'allow' },
    { name: 'async failure, fail closed', store: BROKEN_ASYNC, onError: 'deny', expect: 'AI_LIMITS_STORE_UNAVAILABLE' },
  ];
  for (const f of FAILURES) {
    void test(f.name, async () => {
      const p = compile([{ id: 'one', per: 'consumer', rpm: 1, tpm: 10 }], { more: { on_store_error: f.onError }, store: f.store });
      const d = await p.decide(context({ facts: facts(), identity: ALICE }));
      if (f.expect === 'allow') assert.ok(asAllow(d).charge !== undefined, 'usage is still metered when failing open');
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
  const ok: AiLimitConfig = { id: 'a', per: 'consumer', rpm: 10 };
  const NO_TEAMS: readonly ConsumerSpec[] = [{ id: 'alice' }, { id: 'bob' }];

  const REJECTED: readonly { name: string; limits: AiLimitConfig[]; consumers?: readonly ConsumerSpec[]; path: string; message: RegExp }[] = [
    { name: 'unknown consumer', limits: [ok, { id: 'b', per: 'consumer', rpm: 1, consumers: ['alice', 'mallory'] }], path: 'policies.x.config.limits[1].consumers[1]', message: /no consumer "mallory".*known: alice, bob, carol, dave/ },
    { name: 'unknown team', limits: [{ id: 'b', per: 'team', rpm: 1, teams: ['acme', 'globex'] }], path: 'policies.x.config.limits[0].teams[1]', message: /no consumer has team "globex".*acme, zeta/ },
    { name: 'no limit at all', limits: [{ id: 'b', per: 'consumer' }], path: 'policies.x.config.limits[0]', message: /at least one of rpm, tpm, budget_usd_day and budget_usd_month/ },
    { name: 'consumers on a team limit', limits: [{ id: 'b', per: 'team', rpm: 1, consumers: ['alice'] }], path: 'policies.x.config.limits[0].consumers', message: /teams/ },
    { name: 'consumers and teams together', limits: [{ id: 'b', per: 'consumer', rpm: 1, consumers: ['alice'], teams: ['acme'] }], path: 'policies.x.config.limits[0].teams', message: /not both/ },
    { name: 'duplicate id', limits: [ok, { ...ok }], path: 'policies.x.config.limits[1].id', message: /duplicate id "a" \(also limits\[0\]\)/ },
    { name: 'per: team when no consumer has a team', limits: [{ id: 'b', per: 'team', rpm: 1 }], consumers: NO_TEAMS, path: 'policies.x.config.limits[0].per', message: /no consumer has a team/ },
    { name: 'a budget below one micro-dollar', limits: [{ id: 'b', per: 'consumer', budget_usd_day: 0.0000001 }], path: 'policies.x.config.limits[0].budget_usd_day', message: /0\.000001/ },
    { name: 'rpm 0', limits: [{ id: 'b', per: 'consumer', rpm: 0 }], path: 'policies.x.config.limits[0].rpm', message: />= 1/ },
    { name: 'id unsafe for a header string', limits: [{ id: 'per "minute"', per: 'consumer', rpm: 1 }], path: 'policies.x.config.limits[0].id', message: /A-Z/ },
    { name: 'no limits', limits: [], path: 'policies.x.config.limits', message: /at least one limit/ },
  ];
  for (const c of REJECTED) {
    void test(`compile rejects: ${c.name}`, () => {
      assert.throws(
        () => compile(c.limits, c.consumers !== undefined ? { consumers: c.consumers } : {}),
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

  void test('the schema fills every default, and rejects bad values at their exact path', () => {
    const good: Record<string, unknown> = { limits: [{ id: 'a', rpm: 1 }] };
    assert.deepEqual(validate(AiLimitsSchema, good, 'policies.x.config'), []);
    assert.deepEqual(good, { limits: [{ id: 'a', per: 'consumer', rpm: 1 }], headers: true, on_store_error: 'allow' });

    const bad = { limits: [{ id: 'a', rpm: 1 }, { id: 'b', per: 'group', budget_usd_day: -1 }] };
    const paths = validate(AiLimitsSchema, bad, 'policies.x.config').map((i) => i.path);
    assert.ok(paths.includes('policies.x.config.limits[1].per'), JSON.stringify(paths));
    assert.ok(paths.includes('policies.x.config.limits[1].budget_usd_day'), JSON.stringify(paths));
  });

  void test('every schema field has a description that states its default', () => {
    const walk = (s: unknown, where: string): void => {
      if (typeof s !== 'object' || s === null) return;
      const o = s as { properties?: Record<string, { description?: string }>; items?: unknown };
      for (const [k, v] of Object.entries(o.properties ?? {})) {
        assert.ok(typeof v.description === 'string' && /Default|Required/.test(v.description), `${where}.${k} has no description with its default`);
        walk(v, `${where}.${k}`);
      }
      if (o.items !== undefined) walk(o.items, `${where}[]`);
    };
    walk(AiLimitsSchema, 'config');
  });

  void test('the compiled policy carries id, type and mode, and decides synchronously with the memory store', () => {
    const p = compile([ok], { mode: 'monitor' });
    assert.equal(p.id, 'x');
    assert.equal(p.type, 'ai-limits');
    assert.equal(p.mode, 'monitor');
    assert.equal(p.needsBody, undefined);
  });

  void test('two policy instances never share counters', () => {
    const store = memory();
    const a = compile([{ id: 'one', per: 'consumer', rpm: 1 }], { store, id: 'a' });
    const b = compile([{ id: 'one', per: 'consumer', rpm: 1 }], { store, id: 'b' });
    asAllow(decide(a));
    asAllow(decide(b));
  });
});
