/**
 * `basic-auth` driven the way the gateway drives it: compile() over consumers, then decide().
 * Assertions are on codes, evidence fields and headers, never on prose.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { scryptSync } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { hashPassword, verifyPasswordAsync, type PasswordHash } from '../../credentials/password.ts';
import { CATALOG } from '../../errors/catalog.ts';
import { evaluate } from '../../pipeline/run.ts';
import { context } from '../../pipeline/testing.ts';
import { ConfigError, type CompiledPolicy, type ConsumerSpec, type Decision, type Deny, type Mode, type RequestFacts } from '../../pipeline/types.ts';
import { PASSWORD_CHECKS, PasswordCheckAdmission } from './admission.ts';
import { basicAuth, compileBasicAuth, type BasicAuthDeps } from './index.ts';
import { BasicAuthSchema, type BasicAuthConfig } from './schema.ts';

const NOW = Date.parse('2026-06-01T12:00:00Z');

/** A cheap hash in the real format (N=1024 unless told) so the many test checks stay fast. */
function cheapHash(password: string, N = 1024, r = 8, p = 1): string {
  const salt = Buffer.from('0123456789abcdef');
  const hash = scryptSync(Buffer.from(password.normalize('NFC'), 'utf8'), salt, 32, { N, r, p });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

const PASSWORDS = {
  alice: 'wonderland',
  bob: 'b0b:has:colons',
  zoe: 'caf\u00e9', // "café" precomposed (NFC)
} as const;

const CONSUMERS: readonly ConsumerSpec[] = [
  // One user with the real default cost, to prove the production path end to end.
  { id: 'alice-co', groups: ['staff', 'ops'], credentials: { basic_auth: [{ username: 'alice', password_hash: hashPassword(PASSWORDS.alice) }] } },
  { id: 'bob-co', credentials: { basic_auth: [{ username: 'bob', password_hash: cheapHash(PASSWORDS.bob) }] } },
  { id: 'zoe-co', credentials: { basic_auth: [{ username: 'zo\u00eb', password_hash: cheapHash(PASSWORDS.zoe) }] } },
];

const BASE: BasicAuthConfig = { realm: 'pinpoint', scopes: [], cache: { max_entries: 1000, ttl_seconds: 60 }, checks: { max_concurrent: 2, max_queued: 64 } };

function ctxFor(consumers: readonly ConsumerSpec[] = CONSUMERS, path = 'policies.login.config') {
  return { consumers, apiKeys: KeyIndex.build([], {}).index, env: {}, path, baseDir: process.cwd() };
}

/** Each compile gets an admission of its own unless the test passes one: tests never share counts. */
function compile(config: Partial<BasicAuthConfig> = {}, deps: BasicAuthDeps = {}, mode: Mode = 'enforce'): CompiledPolicy {
  return compileBasicAuth({ ...BASE, ...config }, { id: 'login', mode }, ctxFor(), { admission: new PasswordCheckAdmission(), ...deps });
}

function facts(headers: Record<string, string | undefined> = {}, now = NOW): RequestFacts {
  return { method: 'POST', path: '/orders', rawQuery: '', host: 'api.example.com', headers, clientIp: '198.51.100.7', clientIpSource: 'socket', params: {}, contentLength: undefined, now };
}

function basic(userPass: string | Buffer): string {
  return `Basic ${Buffer.from(userPass).toString('base64')}`;
}

async function decide(p: CompiledPolicy, f: RequestFacts, dryRun = false): Promise<Decision> {
  return p.decide(context({ facts: f, routeId: 'orders', dryRun }));
}

function asDeny(d: Decision): Deny {
  assert.equal(d.outcome, 'deny', `expected a denial, got ${JSON.stringify(d)}`);
  return d;
}

function assertNoSecret(d: Decision): void {
  const text = JSON.stringify(d, (_k, v: unknown) => (v instanceof Set ? [...(v as Set<unknown>)] : v));
  for (const secret of [...Object.values(PASSWORDS), 'wrong-password-123', 'dXNlcjpwYXNz']) assert.ok(!text.includes(secret), `decision leaks a secret: ${text}`);
}

/** Counts scrypt checks while still doing them for real. */
function counting(): { deps: BasicAuthDeps; calls: () => number } {
  let n = 0;
  return {
    deps: {
      verify: (pw: string, h: PasswordHash) => {
        n++;
        return verifyPasswordAsync(pw, h);
      },
    },
    calls: () => n,
  };
}

const CHALLENGE = 'Basic realm="pinpoint", charset="UTF-8"';

interface Case {
  readonly name: string;
  readonly authorization?: string;
  readonly config?: Partial<BasicAuthConfig>;
  readonly expect: 'allow' | Deny['code'];
  readonly evidence?: Record<string, unknown>;
  readonly challenge?: string;
  readonly identity?: { consumer: string; credentialId: string; scopes: string[]; groups: string[] };
}

const CASES: readonly Case[] = [
  {
    name: 'correct user and password (default scrypt cost)',
    authorization: basic(`alice:${PASSWORDS.alice}`),
    expect: 'allow',
    evidence: { username: 'alice', consumer: 'alice-co', cached: false },
    identity: { consumer: 'alice-co', credentialId: 'alice', scopes: [], groups: ['staff', 'ops'] },
  },
  {
    name: 'scopes come from the policy config',
    authorization: basic(`alice:${PASSWORDS.alice}`),
    config: { scopes: ['orders:read'] },
    expect: 'allow',
    identity: { consumer: 'alice-co', credentialId: 'alice', scopes: ['orders:read'], groups: ['staff', 'ops'] },
  },
  {
    name: 'password containing colons: only the first colon splits (RFC 7617 §2)',
    authorization: basic(`bob:${PASSWORDS.bob}`),
    expect: 'allow',
    identity: { consumer: 'bob-co', credentialId: 'bob', scopes: [], groups: [] },
  },
  {
    name: 'scheme name is case-insensitive (RFC 9110 §11.1)',
    authorization: `bAsIc ${Buffer.from(`bob:${PASSWORDS.bob}`).toString('base64')}`,
    expect: 'allow',
  },
  {
    name: 'missing padding is tolerated',
    authorization: `Basic ${Buffer.from(`bob:${PASSWORDS.bob}`).toString('base64').replace(/=+$/, '')}`,
    expect: 'allow',
  },
  {
    name: 'UTF-8 user and password, sent decomposed (NFD), match the NFC config (RFC 7617 §2.1)',
    authorization: basic(`zo\u00eb:${PASSWORDS.zoe}`.normalize('NFD')),
    expect: 'allow',
    identity: { consumer: 'zoe-co', credentialId: 'zo\u00eb', scopes: [], groups: [] },
  },

  { name: 'no Authorization header', expect: 'BASIC_AUTH_MISSING', evidence: { expected: 'Authorization: Basic' }, challenge: CHALLENGE },
  { name: 'empty Authorization header', authorization: '', expect: 'BASIC_AUTH_MISSING', challenge: CHALLENGE },
  {
    name: 'custom realm, quoted (RFC 9110 §5.6.4)',
    config: { realm: 'Orders "EU"' },
    expect: 'BASIC_AUTH_MISSING',
    challenge: 'Basic realm="Orders \\"EU\\"", charset="UTF-8"',
  },

  {
    name: 'a Bearer token where Basic is expected',
    authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln',
    expect: 'BASIC_AUTH_WRONG_SCHEME',
    evidence: { found_scheme: 'Bearer', expected: 'Authorization: Basic' },
    challenge: CHALLENGE,
  },
  { name: 'bearer in lower case is named canonically', authorization: 'bearer abc', expect: 'BASIC_AUTH_WRONG_SCHEME', evidence: { found_scheme: 'Bearer' } },
  { name: 'Digest', authorization: 'Digest username="alice", realm="x"', expect: 'BASIC_AUTH_WRONG_SCHEME', evidence: { found_scheme: 'Digest' } },
  { name: 'an unregistered scheme is not echoed', authorization: 'Sekrit abc', expect: 'BASIC_AUTH_WRONG_SCHEME', evidence: { found_scheme: 'an unregistered' } },

  { name: 'a bare credential without a scheme', authorization: 'dXNlcjpwYXNz', expect: 'BASIC_AUTH_MALFORMED', evidence: { reason: 'no authentication scheme' }, challenge: CHALLENGE },
  { name: 'Basic without credentials', authorization: 'Basic', expect: 'BASIC_AUTH_MALFORMED', evidence: { reason: 'no credentials after Basic' } },
  { name: 'not base64', authorization: 'Basic alice:wonderland', expect: 'BASIC_AUTH_MALFORMED', evidence: { reason: 'not base64' } },
  { name: 'base64 with an impossible length', authorization: 'Basic YWJjZA=X', expect: 'BASIC_AUTH_MALFORMED', evidence: { reason: 'not base64' } },
  { name: 'not UTF-8', authorization: basic(Buffer.from([0x61, 0x3a, 0xff, 0xfe])), expect: 'BASIC_AUTH_MALFORMED', evidence: { reason: 'not UTF-8' } },
  { name: 'no colon', authorization: basic('alicewonderland'), expect: 'BASIC_AUTH_MALFORMED', evidence: { reason: 'no colon between user name and password' } },
  { name: 'empty user name', authorization: basic(':wonderland'), expect: 'BASIC_AUTH_MALFORMED', evidence: { reason: 'empty user name' } },
  { name: 'control character (RFC 7617 §2)', authorization: basic('alice:wonder\u0007land'), expect: 'BASIC_AUTH_MALFORMED', evidence: { reason: 'control characters' } },

  {
    name: 'unknown user',
    authorization: basic('mallory:wrong-password-123'),
    expect: 'BASIC_AUTH_INVALID',
    evidence: { username: 'mallory', reason: 'unknown_user', consumer: null },
    challenge: CHALLENGE,
  },
  {
    name: 'wrong password',
    authorization: basic('alice:wrong-password-123'),
    expect: 'BASIC_AUTH_INVALID',
    evidence: { username: 'alice', reason: 'wrong_password', consumer: 'alice-co' },
    challenge: CHALLENGE,
  },
  { name: 'user names are case-sensitive', authorization: basic(`Alice:${PASSWORDS.alice}`), expect: 'BASIC_AUTH_INVALID', evidence: { reason: 'unknown_user' } },
  { name: 'empty password is just wrong', authorization: basic('bob:'), expect: 'BASIC_AUTH_INVALID', evidence: { reason: 'wrong_password' } },
];

void describe('basic-auth decide', () => {
  for (const c of CASES) {
    void test(c.name, async () => {
      const d = await decide(compile(c.config), facts({ authorization: c.authorization }));
      if (c.expect === 'allow') assert.equal(d.outcome, 'allow', JSON.stringify(d));
      else assert.equal(asDeny(d).code, c.expect);
      if (c.evidence !== undefined) {
        assert.ok(d.outcome !== 'skip' && d.evidence !== undefined, 'decision has evidence');
        // Operator-only facts (`internal`) count as evidence here; they reach the trace, not the client.
        const all: Record<string, unknown> = { ...d.evidence, ...(d.outcome === 'deny' ? d.internal : undefined) };
        for (const [k, v] of Object.entries(c.evidence)) assert.deepEqual(all[k], v, `evidence.${k}`);
      }
      if (c.challenge !== undefined) assert.deepEqual(asDeny(d).headers, { 'www-authenticate': c.challenge });
      if (c.identity !== undefined) {
        assert.ok(d.outcome === 'allow' && d.identity !== undefined, 'identity is set');
        assert.equal(d.identity.consumer, c.identity.consumer);
        assert.equal(d.identity.credentialId, c.identity.credentialId);
        assert.equal(d.identity.credentialType, 'basic-auth');
        assert.deepEqual([...d.identity.scopes], c.identity.scopes);
        assert.deepEqual([...(d.identity.groups ?? [])], c.identity.groups);
      }
      if (d.outcome === 'deny') assert.equal(d.identity, undefined, 'an unauthenticated caller gets no identity');
      assertNoSecret(d);
    });
  }
});

void describe('basic-auth contract', () => {
  // BASIC_AUTH_BUSY is the one exception, a 503: it checked nothing (see the admission tests).
  void test('every denial about the credentials is a 401 with the Basic challenge (RFC 9110 §11.6.1)', async () => {
    for (const c of CASES) {
      if (c.expect === 'allow') continue;
      const d = asDeny(await decide(compile(c.config), facts({ authorization: c.authorization })));
      assert.equal(CATALOG[d.code].status, 401, c.name);
      assert.match(d.headers?.['www-authenticate'] ?? '', /^Basic realm=".*", charset="UTF-8"$/, c.name);
    }
  });

  void test('unknown user and wrong password share one public code', async () => {
    const p = compile();
    const unknown = asDeny(await decide(p, facts({ authorization: basic('nobody:x') })));
    const wrong = asDeny(await decide(p, facts({ authorization: basic('bob:x') })));
    assert.equal(unknown.code, wrong.code);
    assert.deepEqual(unknown.headers, wrong.headers);
    // The client sees the same rule and evidence for both; only the operator-only part differs.
    assert.deepEqual([unknown.rule.replace('nobody', 'bob'), Object.keys(unknown.evidence)], [wrong.rule, Object.keys(wrong.evidence)]);
    assert.equal(unknown.evidence.reason, undefined);
    assert.notEqual(unknown.internal?.reason, wrong.internal?.reason);
  });

  void test('missing, malformed and wrong-scheme answers are synchronous; password checks are not', async () => {
    const p = compile();
    for (const authorization of [undefined, 'Bearer abc', 'Basic !!']) {
      const d = p.decide(context({ facts: facts({ authorization }) }));
      assert.equal(typeof (d as { then?: unknown }).then, 'undefined', String(authorization));
    }
    const pending = p.decide(context({ facts: facts({ authorization: basic(`bob:${PASSWORDS.bob}`) }) }));
    assert.equal(typeof (pending as { then?: unknown }).then, 'function');
    assert.equal((await pending).outcome, 'allow');
  });

  void test('scrypt runs off the event loop: other work proceeds while a password is checked', async () => {
    const p = compile({ cache: { max_entries: 0, ttl_seconds: 0 } });
    let settled = false;
    const pending = Promise.resolve(p.decide(context({ facts: facts({ authorization: basic(`alice:${PASSWORDS.alice}`) }) }))).then((d) => {
      settled = true;
      return d;
    });
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(settled, false, 'the default-cost check finished within one event-loop turn: it ran synchronously');
    assert.equal((await pending).outcome, 'allow');
  });

  void test('the compiled policy carries id, type and mode', () => {
    const p = compile({}, {}, 'monitor');
    assert.deepEqual([p.id, p.type, p.mode, p.bodyLimit, p.needsBody], ['login', 'basic-auth', 'monitor', undefined, undefined]);
    const viaModule = basicAuth.compile(BASE, { id: 'm', mode: 'enforce' }, ctxFor());
    assert.equal(viaModule.type, 'basic-auth');
  });

  void test('runs in the real pipeline: async decision, identity adopted', async () => {
    const p = compile({ scopes: ['orders:write'] });
    const v = await evaluate([{ policy: p, position: 0, attachedTo: 'route' }], facts({ authorization: basic(`bob:${PASSWORDS.bob}`) }), 'orders', { get: () => undefined });
    assert.equal(v.allowed, true);
    assert.equal(v.identity?.consumer, 'bob-co');
    assert.deepEqual([...(v.identity?.scopes ?? [])], ['orders:write']);
    const denied = await evaluate([{ policy: p, position: 0, attachedTo: 'route' }], facts({ authorization: basic('bob:nope') }), 'orders', { get: () => undefined });
    assert.equal(denied.deny?.code, 'BASIC_AUTH_INVALID');
    assert.equal(denied.trace[0]?.evidence?.reason, 'wrong_password');
  });
});

void describe('basic-auth verification cache', () => {
  const BOB = basic(`bob:${PASSWORDS.bob}`);

  void test('a verified pair is accepted again without scrypt, synchronously', async () => {
    const { deps, calls } = counting();
    const p = compile({}, deps);
    assert.equal((await decide(p, facts({ authorization: BOB }))).outcome, 'allow');
    assert.equal(calls(), 1);
    const again = p.decide(context({ facts: facts({ authorization: BOB }, NOW + 1000) }));
    assert.equal(typeof (again as { then?: unknown }).then, 'undefined', 'a cache hit needs no promise');
    assert.equal((again as Decision).outcome, 'allow');
    assert.equal((again as { evidence?: { cached?: boolean } }).evidence?.cached, true);
    assert.equal(calls(), 1);
  });

  void test('wrong passwords are never cached: each guess pays scrypt', async () => {
    const { deps, calls } = counting();
    const p = compile({}, deps);
    for (let i = 0; i < 3; i++) assert.equal(asDeny(await decide(p, facts({ authorization: basic('bob:guess') }))).code, 'BASIC_AUTH_INVALID');
    assert.equal(calls(), 3);
  });

  void test('a cached pair does not admit another password for the same user', async () => {
    const { deps } = counting();
    const p = compile({}, deps);
    await decide(p, facts({ authorization: BOB }));
    const d = asDeny(await decide(p, facts({ authorization: basic('bob:b0b:has:colon') })));
    assert.equal(d.internal?.reason, 'wrong_password');
  });

  void test('unknown users pay scrypt too (against a decoy), so timing does not reveal user names', async () => {
    const { deps, calls } = counting();
    const p = compile({}, deps);
    await decide(p, facts({ authorization: basic('ghost:whatever') }));
    assert.equal(calls(), 1);
  });

  void test('entries expire after ttl_seconds', async () => {
    const { deps, calls } = counting();
    const p = compile({ cache: { max_entries: 10, ttl_seconds: 60 } }, deps);
    await decide(p, facts({ authorization: BOB }, NOW));
    await decide(p, facts({ authorization: BOB }, NOW + 59_999));
    assert.equal(calls(), 1);
    await decide(p, facts({ authorization: BOB }, NOW + 60_000 + 59_999));
    assert.equal(calls(), 2, 'expired at the ttl from the first check');
  });

  void test('bounded: the least recently used pair is evicted', async () => {
    const { deps, calls } = counting();
    const p = compile({ cache: { max_entries: 2, ttl_seconds: 60 } }, deps);
    const zoe = basic(`zo\u00eb:${PASSWORDS.zoe}`);
    const alice = basic(`alice:${PASSWORDS.alice}`);
    await decide(p, facts({ authorization: BOB }));
    await decide(p, facts({ authorization: zoe }));
    await decide(p, facts({ authorization: BOB })); // bob is now the most recent
    assert.equal(calls(), 2);
    await decide(p, facts({ authorization: alice })); // evicts zoe
    assert.equal(calls(), 3);
    await decide(p, facts({ authorization: BOB }));
    assert.equal(calls(), 3, 'bob stayed');
    await decide(p, facts({ authorization: zoe }));
    assert.equal(calls(), 4, 'zoe was evicted');
  });

  void test('max_entries 0 disables the cache', async () => {
    const { deps, calls } = counting();
    const p = compile({ cache: { max_entries: 0, ttl_seconds: 60 } }, deps);
    await decide(p, facts({ authorization: BOB }));
    await decide(p, facts({ authorization: BOB }));
    assert.equal(calls(), 2);
  });

  void test('concurrent identical requests run scrypt once', async () => {
    const { deps, calls } = counting();
    const p = compile({ cache: { max_entries: 0, ttl_seconds: 0 } }, deps);
    const ds = await Promise.all([1, 2, 3, 4].map(() => decide(p, facts({ authorization: BOB }))));
    assert.deepEqual(
      ds.map((d) => d.outcome),
      ['allow', 'allow', 'allow', 'allow'],
    );
    assert.equal(calls(), 1);
  });

  void test('a dry run decides the same way, without warming the cache', async () => {
    const { deps, calls } = counting();
    const p = compile({}, deps);
    assert.equal((await decide(p, facts({ authorization: BOB }), true)).outcome, 'allow');
    assert.equal(asDeny(await decide(p, facts({ authorization: basic('bob:x') }), true)).code, 'BASIC_AUTH_INVALID');
    assert.equal(calls(), 2);
    await decide(p, facts({ authorization: BOB }));
    assert.equal(calls(), 3, 'the dry run left nothing in the cache');
  });
});

/**
 * A verify that is as slow as the test wants: every check waits until open(), then runs the real
 * scrypt; checks started after open() run at once.
 */
function slow(): { deps: BasicAuthDeps; calls: () => number; open: () => void; close: () => void } {
  let opened = false;
  const waiting: (() => void)[] = [];
  let calls = 0;
  return {
    deps: {
      verify: (pw: string, h: PasswordHash) => {
        calls++;
        const gate = opened ? Promise.resolve() : new Promise<void>((resolve) => waiting.push(resolve));
        return gate.then(() => verifyPasswordAsync(pw, h));
      },
    },
    calls: () => calls,
    open: () => {
      opened = true;
      waiting.splice(0).forEach((resolve) => resolve());
    },
    close: () => {
      opened = false;
    },
  };
}

function pending(d: Decision | Promise<Decision>): d is Promise<Decision> {
  return typeof (d as { then?: unknown }).then === 'function';
}

void describe('basic-auth admission of password checks', () => {
  const TINY = { checks: { max_concurrent: 1, max_queued: 1 } } as const;
  const nocache = { cache: { max_entries: 0, ttl_seconds: 0 } } as const;

  function busy(d: Decision | Promise<Decision>): Deny {
    assert.ok(!pending(d), 'a refusal is synchronous: it waits for nothing');
    const deny = asDeny(d);
    assert.equal(deny.code, 'BASIC_AUTH_BUSY');
    assert.match(deny.headers?.['retry-after'] ?? '', /^[1-9][0-9]*$/, 'Retry-After in delay-seconds (RFC 9110 §10.2.3)');
    assert.equal(deny.headers?.['retry-after'], String(deny.evidence.retry_after_s));
    return deny;
  }

  void test('the catalog entry: a retryable 503 from the gateway', () => {
    const e = CATALOG.BASIC_AUTH_BUSY;
    assert.deepEqual([e.status, e.layer, e.retryable, e.proxyStatus], [503, 'gateway', true, 'destination_unavailable']);
    assert.match(e.remediation, /\{retry_after_s\}/);
  });

  void test('1 running, 1 waiting: the third concurrent check is refused with Retry-After; after the burst a login passes', async () => {
    const s = slow();
    const p = compile({ ...TINY, ...nocache }, s.deps);
    const d1 = p.decide(context({ facts: facts({ authorization: basic('bob:guess-1') }) }));
    const d2 = p.decide(context({ facts: facts({ authorization: basic('bob:guess-2') }) }));
    const d3 = p.decide(context({ facts: facts({ authorization: basic('bob:guess-3') }) }));
    const refused = busy(d3);
    assert.equal(refused.identity, undefined);
    assert.equal(s.calls(), 1, 'one check runs, one waits, the refused one never reaches scrypt');
    s.open();
    assert.deepEqual(
      (await Promise.all([d1, d2])).map((d) => asDeny(d).code),
      ['BASIC_AUTH_INVALID', 'BASIC_AUTH_INVALID'],
    );
    const after = p.decide(context({ facts: facts({ authorization: basic(`bob:${PASSWORDS.bob}`) }) }));
    assert.ok(pending(after));
    assert.equal((await after).outcome, 'allow');
    assert.equal(s.calls(), 3);
  });

  void test('unknown users count against the same bound and get the same refusal as known ones', async () => {
    const s = slow();
    const p = compile({ ...TINY, ...nocache }, s.deps);
    const held = [p.decide(context({ facts: facts({ authorization: basic('ghost:a') }) })), p.decide(context({ facts: facts({ authorization: basic('bob:b') }) }))];
    const unknown = busy(p.decide(context({ facts: facts({ authorization: basic('ghost:c') }) })));
    const known = busy(p.decide(context({ facts: facts({ authorization: basic('bob:d') }) })));
    assert.deepEqual([unknown.rule, unknown.evidence, unknown.headers], [known.rule, known.evidence, known.headers]);
    s.open();
    await Promise.all(held.map(async (d) => Promise.resolve(d)));
  });

  void test('a flood never queues more than max_queued, and all admitted checks finish', async () => {
    const admission = new PasswordCheckAdmission();
    const s = slow();
    const p = compile({ checks: { max_concurrent: 2, max_queued: 3 }, ...nocache }, { ...s.deps, admission });
    const ds = Array.from({ length: 40 }, (_, i) => p.decide(context({ facts: facts({ authorization: basic(`nobody${i}:guess${i}`) }) })));
    const admitted = ds.filter(pending);
    assert.equal(admitted.length, 5);
    for (const d of ds.filter((x) => !pending(x))) busy(d);
    assert.deepEqual([admission.running, admission.queued], [2, 3]);
    s.open();
    assert.deepEqual(
      new Set((await Promise.all(admitted)).map((d) => asDeny(d).code)),
      new Set(['BASIC_AUTH_INVALID']),
    );
    assert.deepEqual([admission.peakQueued, admission.queued], [3, 0]);
  });

  void test('pairs verified recently need no check: they pass while checks are saturated', async () => {
    const s = slow();
    const p = compile(TINY, s.deps);
    s.open();
    const first = p.decide(context({ facts: facts({ authorization: basic(`bob:${PASSWORDS.bob}`) }) }));
    assert.equal((await first).outcome, 'allow');
    s.close();
    const held = [p.decide(context({ facts: facts({ authorization: basic('bob:x1') }) })), p.decide(context({ facts: facts({ authorization: basic('bob:x2') }) }))];
    busy(p.decide(context({ facts: facts({ authorization: basic('bob:x3') }) })));
    const cached = p.decide(context({ facts: facts({ authorization: basic(`bob:${PASSWORDS.bob}`) }) }));
    assert.ok(!pending(cached));
    assert.equal(cached.outcome, 'allow');
    s.open();
    await Promise.all(held.map(async (d) => Promise.resolve(d)));
  });

  void test('identical concurrent requests join the running check and take no slot of their own', async () => {
    const s = slow();
    const p = compile({ checks: { max_concurrent: 1, max_queued: 0 }, ...nocache }, s.deps);
    const ds = [1, 2, 3].map(() => p.decide(context({ facts: facts({ authorization: basic(`bob:${PASSWORDS.bob}`) }) })));
    assert.ok(ds.every(pending));
    s.open();
    assert.deepEqual(
      (await Promise.all(ds)).map((d) => d.outcome),
      ['allow', 'allow', 'allow'],
    );
    assert.equal(s.calls(), 1);
  });

  void test('the bound is per process: policies compiled without their own admission share one', async () => {
    // Hold the process-wide slot from outside any policy; a policy allowing one check must refuse.
    let finish: () => void = () => undefined;
    const held = PASSWORD_CHECKS.run({ maxConcurrent: 1, maxQueued: 0 }, () => new Promise<void>((resolve) => (finish = resolve)));
    try {
      const p = compileBasicAuth({ ...BASE, ...nocache, checks: { max_concurrent: 1, max_queued: 0 } }, { id: 'login', mode: 'enforce' }, ctxFor());
      busy(p.decide(context({ facts: facts({ authorization: basic('bob:guess') }) })));
    } finally {
      finish();
      await held;
    }
  });

  void test('schema: defaults leave libuv threads free and bound the queue; out-of-range values are refused', () => {
    const d = Value.Default(BasicAuthSchema, {}) as BasicAuthConfig;
    assert.deepEqual(d.checks, { max_concurrent: 2, max_queued: 64 });
    assert.equal(Value.Check(BasicAuthSchema, d), true);
    for (const checks of [{ max_concurrent: 0 }, { max_queued: -1 }, { max_concurrent: 1.5 }, { other: 1 }]) {
      assert.equal(Value.Check(BasicAuthSchema, { ...d, checks: { ...d.checks, ...checks } }), false, JSON.stringify(checks));
    }
  });
});

void describe('basic-auth decoy for unknown users', () => {
  function decoyFor(consumers: readonly ConsumerSpec[]): Promise<PasswordHash | undefined> {
    let seen: PasswordHash | undefined;
    const p = compileBasicAuth(BASE, { id: 'login', mode: 'enforce' }, ctxFor(consumers), {
      admission: new PasswordCheckAdmission(),
      verify: (_pw, h) => {
        seen = h;
        return Promise.resolve(false);
      },
    });
    return Promise.resolve(p.decide(context({ facts: facts({ authorization: basic('nobody-here:pw') }) }))).then((d) => {
      assert.equal(asDeny(d).internal?.reason, 'unknown_user');
      return seen;
    });
  }
  const user = (name: string, hash: string): ConsumerSpec => ({ id: `${name}-co`, credentials: { basic_auth: [{ username: name, password_hash: hash }] } });
  const params = (h: PasswordHash | undefined) => (h === undefined ? undefined : { N: h.N, r: h.r, p: h.p, salt: h.salt.length, key: h.hash.length });

  void test('has the parameters of the configured users, not the defaults', async () => {
    const h = await decoyFor([user('a', cheapHash('x', 2048, 4, 2)), user('b', cheapHash('y', 2048, 4, 2))]);
    assert.deepEqual(params(h), { N: 2048, r: 4, p: 2, salt: 16, key: 32 });
  });

  void test('with mixed parameters: the most common ones (the most users hidden)', async () => {
    const h = await decoyFor([user('a', cheapHash('x', 1024)), user('b', cheapHash('y', 4096)), user('c', cheapHash('z', 1024))]);
    assert.deepEqual(params(h), { N: 1024, r: 8, p: 1, salt: 16, key: 32 });
  });

  void test('without users: the defaults', async () => {
    assert.deepEqual(params(await decoyFor([])), { N: 16384, r: 8, p: 1, salt: 16, key: 32 });
  });

  void test('computed once per config: every instance and request use the same decoy', async () => {
    const consumers = [user('a', cheapHash('x', 2048))];
    const [h1, h2] = await Promise.all([decoyFor(consumers), decoyFor(consumers)]);
    assert.ok(h1 !== undefined && h1 === h2);
  });
});

interface ErrorCase {
  readonly name: string;
  readonly consumers: readonly ConsumerSpec[];
  readonly config?: Partial<BasicAuthConfig>;
  readonly issues: readonly { path: string; message: RegExp }[];
}

const GOOD = cheapHash('pw');

const ERROR_CASES: readonly ErrorCase[] = [
  {
    name: 'duplicate user name across consumers',
    consumers: [
      { id: 'a', credentials: { basic_auth: [{ username: 'ops', password_hash: GOOD }] } },
      { id: 'b', credentials: { basic_auth: [{ username: 'ops', password_hash: GOOD }] } },
    ],
    issues: [{ path: 'consumers[1].credentials.basic_auth[0].username', message: /"ops".*consumers\[0\]\.credentials\.basic_auth\[0\]\.username \(consumer "a"\)/ }],
  },
  {
    name: 'duplicate user name within one consumer, and after NFC normalisation',
    consumers: [{ id: 'a', credentials: { basic_auth: [{ username: 'zo\u00eb', password_hash: GOOD }, { username: 'zoe\u0308', password_hash: GOOD }] } }],
    issues: [{ path: 'consumers[0].credentials.basic_auth[1].username', message: /already used/ }],
  },
  {
    name: 'user name with a colon (RFC 7617 §2)',
    consumers: [{ id: 'a', credentials: { basic_auth: [{ username: 'a:b', password_hash: GOOD }] } }],
    issues: [{ path: 'consumers[0].credentials.basic_auth[0].username', message: /colon/ }],
  },
  {
    name: 'malformed hashes, each at its own path',
    consumers: [
      {
        id: 'a',
        credentials: {
          basic_auth: [
            { username: 'u0', password_hash: GOOD },
            { username: 'u1', password_hash: 'scrypt$16384$8$1$onlyfive' },
            { username: 'u2', password_hash: 'scrypt$1000$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$' + 'A'.repeat(44) },
            { username: 'u3', password_hash: 'scrypt$16384$8$1$not*base64$' + 'A'.repeat(44) },
            { username: 'u4', password_hash: 'scrypt$16384$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$QUJD' },
            { username: 'u5', password_hash: 'scrypt$1048576$32$1$MDEyMzQ1Njc4OWFiY2RlZg==$' + 'A'.repeat(44) },
          ],
        },
      },
    ],
    issues: [
      { path: 'consumers[0].credentials.basic_auth[1].password_hash', message: /scrypt\$N\$r\$p/ },
      { path: 'consumers[0].credentials.basic_auth[2].password_hash', message: /power of two/ },
      { path: 'consumers[0].credentials.basic_auth[3].password_hash', message: /salt/ },
      { path: 'consumers[0].credentials.basic_auth[4].password_hash', message: /hash is not base64 of 16/ },
      { path: 'consumers[0].credentials.basic_auth[5].password_hash', message: /MiB/ },
    ],
  },
  {
    name: 'realm with a control character',
    consumers: [],
    config: { realm: 'a\nb' },
    issues: [{ path: 'policies.login.config.realm', message: /control/ }],
  },
];

void describe('basic-auth compile errors', () => {
  for (const c of ERROR_CASES) {
    void test(c.name, () => {
      let caught: unknown;
      try {
        basicAuth.compile({ ...BASE, ...c.config }, { id: 'login', mode: 'enforce' }, ctxFor(c.consumers));
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof ConfigError, `expected ConfigError, got ${String(caught)}`);
      assert.deepEqual(
        caught.issues.map((i) => i.path),
        c.issues.map((i) => i.path),
      );
      c.issues.forEach((e, i) => assert.match(caught.issues[i]?.message ?? '', e.message));
    });
  }
});
