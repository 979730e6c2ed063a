/**
 * The pipeline without any real policy: stub policies of the registered types record that they ran
 * and return a scripted decision, so plan() and evaluateSync() are tested on their own.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { POLICY_MODULES } from '../policies/index.ts';
import { ORDER_INDEX, PIPELINE_ORDER } from './order.ts';
import { plan } from './plan.ts';
import { evaluateSync, type ConsumerPolicies } from './run.ts';
import type { CompiledPolicy, Decision, Identity, Mode, RequestFacts } from './types.ts';

type StageType = 'ip-rules' | 'request-size' | 'api-key';

const FACTS: RequestFacts = {
  method: 'POST',
  path: '/orders',
  rawQuery: '',
  host: 'api.example.com',
  headers: {},
  clientIp: '198.51.100.1',
  clientIpSource: 'socket',
  params: {},
  contentLength: 10,
  now: 0,
};

const ACME: Identity = { consumer: 'acme', credentialId: 'k_acme', credentialType: 'api-key', scopes: new Set(['orders:read']) };

const ALLOW: Decision = { outcome: 'allow', rule: 'ok' };

/** A run log shared by the stubs of one test. */
class Log {
  readonly ran: string[] = [];
  readonly identities: (string | undefined)[] = [];

  stub(id: string, type: StageType, decision: Decision = ALLOW, opts: { mode?: Mode; bodyLimit?: number } = {}): CompiledPolicy {
    return {
      id,
      type,
      mode: opts.mode ?? 'enforce',
      ...(opts.bodyLimit !== undefined ? { bodyLimit: opts.bodyLimit } : {}),
      decide: (ctx) => {
        this.ran.push(id);
        this.identities.push(ctx.identity?.consumer);
        return decision;
      },
    };
  }
}

function consumers(map: Record<string, readonly CompiledPolicy[]> = {}): ConsumerPolicies {
  return { get: (c) => map[c] };
}

function ids(p: ReturnType<typeof plan>): string[] {
  return p.map((x) => x.policy.id);
}

/** Every ordering of a list (small lists only). */
function permutations<T>(list: readonly T[]): T[][] {
  if (list.length <= 1) return [[...list]];
  return list.flatMap((x, i) => permutations([...list.slice(0, i), ...list.slice(i + 1)]).map((rest) => [x, ...rest]));
}

void describe('PIPELINE_ORDER', () => {
  void test('every registered policy type has exactly one place', () => {
    for (const m of POLICY_MODULES) {
      const places = PIPELINE_ORDER.filter((s) => s.type === m.type).length;
      assert.equal(places, 1, `policy type ${m.type} has ${places} places in PIPELINE_ORDER`);
    }
  });

  void test('every stage is a registered policy type (no stale entries)', () => {
    const registered = new Set(POLICY_MODULES.map((m) => m.type));
    for (const s of PIPELINE_ORDER) assert.ok(registered.has(s.type), `stage ${s.type} is not in POLICY_MODULES`);
    assert.equal(new Set(PIPELINE_ORDER.map((s) => s.type)).size, PIPELINE_ORDER.length, 'a type appears twice');
    assert.equal(PIPELINE_ORDER.length, POLICY_MODULES.length);
  });

  void test('every stage says why it is where it is', () => {
    for (const s of PIPELINE_ORDER) assert.ok(s.reason.trim().length > 0, `stage ${s.type} has no reason`);
  });

  void test('registered types are unique', () => {
    assert.equal(new Set(POLICY_MODULES.map((m) => m.type)).size, POLICY_MODULES.length);
  });

  void test('ORDER_INDEX agrees with PIPELINE_ORDER', () => {
    PIPELINE_ORDER.forEach((s, i) => assert.equal(ORDER_INDEX.get(s.type), i));
  });

  void test('at least one stage authenticates, and the IP check comes before it', () => {
    const auth = PIPELINE_ORDER.findIndex((s) => s.authenticates === true);
    assert.ok(auth >= 0);
    assert.ok((ORDER_INDEX.get('ip-rules') ?? Infinity) < auth);
  });
});

void describe('plan', () => {
  void test('sorts by PIPELINE_ORDER whatever the attach order', () => {
    const log = new Log();
    const all = [log.stub('key', 'api-key'), log.stub('size', 'request-size'), log.stub('ip', 'ip-rules')];
    for (const order of permutations(all)) {
      for (let split = 0; split <= order.length; split++) {
        const p = plan(order.slice(0, split), order.slice(split));
        assert.deepEqual(ids(p), ['ip', 'size', 'key'], `global=${ids(plan(order.slice(0, split), [])).join(',')}`);
        assert.deepEqual(
          p.map((x) => x.position),
          [ORDER_INDEX.get('ip-rules'), ORDER_INDEX.get('request-size'), ORDER_INDEX.get('api-key')],
        );
      }
    }
  });

  void test('records where each policy was attached', () => {
    const log = new Log();
    const p = plan([log.stub('key', 'api-key')], [log.stub('ip', 'ip-rules')]);
    assert.deepEqual(
      p.map((x) => [x.policy.id, x.attachedTo]),
      [
        ['ip', 'route'],
        ['key', 'global'],
      ],
    );
  });

  void test('a policy attached globally and on the route runs once, as global', () => {
    const log = new Log();
    const ip = log.stub('ip', 'ip-rules');
    const key = log.stub('key', 'api-key');
    const p = plan([ip], [key, ip]);
    assert.deepEqual(ids(p), ['ip', 'key']);
    assert.equal(p[0]?.attachedTo, 'global');
  });

  void test('a policy listed twice in one list runs once', () => {
    const log = new Log();
    const ip = log.stub('ip', 'ip-rules');
    assert.deepEqual(ids(plan([], [ip, ip])), ['ip']);
  });

  void test('same type: global before route (stable sort)', () => {
    const log = new Log();
    const p = plan([log.stub('ip-global', 'ip-rules')], [log.stub('ip-route', 'ip-rules'), log.stub('ip-route-2', 'ip-rules')]);
    assert.deepEqual(ids(p), ['ip-global', 'ip-route', 'ip-route-2']);
  });

  void test('the plan is frozen', () => {
    assert.ok(Object.isFrozen(plan([], [])));
  });

  void test('a type without a place in PIPELINE_ORDER is refused, naming it', () => {
    const odd: CompiledPolicy = { id: 'x', type: 'no-such-type', mode: 'enforce', decide: () => ALLOW };
    assert.throws(() => plan([odd], []), /no-such-type/);
  });
});

void describe('evaluate', () => {
  void test('all allow: allowed, full trace in order, no identity', () => {
    const log = new Log();
    const p = plan([log.stub('ip', 'ip-rules')], [log.stub('size', 'request-size'), log.stub('key', 'api-key')]);
    const v = evaluateSync(p, FACTS, 'orders', consumers());
    assert.equal(v.allowed, true);
    assert.equal(v.deny, undefined);
    assert.equal(v.denyPolicy, undefined);
    assert.equal(v.identity, undefined);
    assert.deepEqual(log.ran, ['ip', 'size', 'key']);
    assert.deepEqual(
      v.trace.map((t) => [t.policy, t.type, t.outcome]),
      [
        ['ip', 'ip-rules', 'allow'],
        ['size', 'request-size', 'allow'],
        ['key', 'api-key', 'allow'],
      ],
    );
    assert.deepEqual(v.monitorDenied, []);
    for (const t of v.trace) assert.ok(Number.isInteger(t.us) && t.us >= 0);
  });

  void test('a denial stops the pipeline, with the trace so far', () => {
    const log = new Log();
    const deny: Decision = { outcome: 'deny', code: 'BODY_TOO_LARGE', rule: 'too big', evidence: { limit_bytes: 5, received_bytes: 10 } };
    const size = log.stub('size', 'request-size', deny);
    const p = plan([log.stub('ip', 'ip-rules')], [size, log.stub('key', 'api-key')]);
    const v = evaluateSync(p, FACTS, 'orders', consumers());
    assert.equal(v.allowed, false);
    assert.equal(v.deny, deny);
    assert.equal(v.denyPolicy, size);
    assert.deepEqual(log.ran, ['ip', 'size']);
    assert.deepEqual(
      v.trace.map((t) => [t.policy, t.outcome, t.code]),
      [
        ['ip', 'allow', undefined],
        ['size', 'deny', 'BODY_TOO_LARGE'],
      ],
    );
    assert.deepEqual(v.trace[1]?.evidence, { limit_bytes: 5, received_bytes: 10 });
  });

  void test('skip decisions are traced and the pipeline goes on', () => {
    const log = new Log();
    const p = plan([], [log.stub('ip', 'ip-rules', { outcome: 'skip', rule: 'n/a' }), log.stub('key', 'api-key')]);
    const v = evaluateSync(p, FACTS, 'orders', consumers());
    assert.equal(v.allowed, true);
    assert.deepEqual(
      v.trace.map((t) => [t.policy, t.outcome, t.rule]),
      [
        ['ip', 'skip', 'n/a'],
        ['key', 'allow', 'ok'],
      ],
    );
  });

  void test('monitor mode: outcome "monitor", listed in monitorDenied, the request goes on', () => {
    const log = new Log();
    const ipDeny: Decision = { outcome: 'deny', code: 'IP_DENIED', rule: 'deny 198.51.100.0/24', evidence: { client_ip: '198.51.100.1' } };
    const sizeDeny: Decision = { outcome: 'deny', code: 'BODY_TOO_LARGE', rule: 'too big', evidence: {} };
    const p = plan(
      [log.stub('ip', 'ip-rules', ipDeny, { mode: 'monitor' })],
      [log.stub('size', 'request-size', sizeDeny, { mode: 'monitor', bodyLimit: 5 }), log.stub('key', 'api-key')],
    );
    const v = evaluateSync(p, FACTS, 'orders', consumers());
    assert.equal(v.allowed, true);
    assert.equal(v.deny, undefined);
    assert.deepEqual(log.ran, ['ip', 'size', 'key']);
    assert.deepEqual(v.monitorDenied, ['ip', 'size']);
    assert.deepEqual(
      v.trace.map((t) => [t.policy, t.outcome, t.code]),
      [
        ['ip', 'monitor', 'IP_DENIED'],
        ['size', 'monitor', 'BODY_TOO_LARGE'],
        ['key', 'allow', undefined],
      ],
    );
    assert.deepEqual(v.trace[0]?.evidence, { client_ip: '198.51.100.1' });
    assert.equal(v.bodyLimit, undefined, 'a monitor-mode limit is not enforced');
  });

  void test('an enforcing denial after a monitor denial still denies, and both are reported', () => {
    const log = new Log();
    const p = plan(
      [log.stub('ip', 'ip-rules', { outcome: 'deny', code: 'IP_DENIED', rule: 'r', evidence: {} }, { mode: 'monitor' })],
      [log.stub('key', 'api-key', { outcome: 'deny', code: 'AUTH_KEY_MISSING', rule: 'r', evidence: {} })],
    );
    const v = evaluateSync(p, FACTS, 'orders', consumers());
    assert.equal(v.allowed, false);
    assert.equal(v.denyPolicy?.id, 'key');
    assert.deepEqual(v.monitorDenied, ['ip']);
  });

  void test('the route id and the identity so far reach each policy', () => {
    const seen: (string | undefined)[] = [];
    const probe: CompiledPolicy = {
      id: 'probe',
      type: 'api-key',
      mode: 'enforce',
      decide: (ctx) => {
        seen.push(ctx.routeId, ctx.facts.path);
        return ALLOW;
      },
    };
    evaluateSync(plan([], [probe]), FACTS, 'orders', consumers());
    assert.deepEqual(seen, ['orders', '/orders']);
  });

  void test('identity from authentication runs the consumer policies, earlier positions right after authentication', () => {
    const log = new Log();
    const base = plan(
      [log.stub('ip-global', 'ip-rules')],
      [log.stub('size', 'request-size'), log.stub('key', 'api-key', { outcome: 'allow', rule: 'key k_acme', identity: ACME })],
    );
    const own = [log.stub('acme-size', 'request-size'), log.stub('acme-ip', 'ip-rules')];
    const v = evaluateSync(base, FACTS, 'orders', consumers({ acme: own, other: [log.stub('other-ip', 'ip-rules')] }));
    assert.equal(v.allowed, true);
    assert.equal(v.identity, ACME);
    assert.deepEqual(log.ran, ['ip-global', 'size', 'key', 'acme-ip', 'acme-size']);
    assert.deepEqual(log.identities, [undefined, undefined, undefined, 'acme', 'acme']);
    assert.deepEqual(
      v.trace.map((t) => t.policy),
      ['ip-global', 'size', 'key', 'acme-ip', 'acme-size'],
    );
  });

  void test('a consumer ip-rules policy can deny after authentication; the verdict keeps the identity', () => {
    const log = new Log();
    const acmeIp = log.stub('acme-ip', 'ip-rules', { outcome: 'deny', code: 'IP_NOT_ALLOWED', rule: 'not in allow list', evidence: {} });
    const base = plan([], [log.stub('key', 'api-key', { outcome: 'allow', rule: 'k', identity: ACME })]);
    const v = evaluateSync(base, FACTS, 'orders', consumers({ acme: [acmeIp] }));
    assert.equal(v.allowed, false);
    assert.equal(v.denyPolicy, acmeIp);
    assert.equal(v.deny?.code, 'IP_NOT_ALLOWED');
    assert.equal(v.identity, ACME);
    assert.deepEqual(log.ran, ['key', 'acme-ip']);
  });

  void test('a consumer policy also attached to the route runs once', () => {
    const log = new Log();
    const shared = log.stub('shared-ip', 'ip-rules');
    const base = plan([shared], [log.stub('key', 'api-key', { outcome: 'allow', rule: 'k', identity: ACME })]);
    evaluateSync(base, FACTS, 'orders', consumers({ acme: [shared, log.stub('acme-ip', 'ip-rules')] }));
    assert.deepEqual(log.ran, ['shared-ip', 'key', 'acme-ip']);
  });

  void test('a consumer without own policies changes nothing', () => {
    const log = new Log();
    const base = plan([], [log.stub('key', 'api-key', { outcome: 'allow', rule: 'k', identity: ACME }), log.stub('ip', 'ip-rules')]);
    const v = evaluateSync(base, FACTS, 'orders', consumers({ acme: [] }));
    assert.equal(v.allowed, true);
    assert.deepEqual(log.ran, ['ip', 'key']);
  });

  void test('consumer policies do not run when no one is identified', () => {
    const log = new Log();
    const base = plan([], [log.stub('key', 'api-key', { outcome: 'deny', code: 'AUTH_KEY_MISSING', rule: 'r', evidence: {} })]);
    evaluateSync(base, FACTS, 'orders', consumers({ acme: [log.stub('acme-ip', 'ip-rules')] }));
    assert.deepEqual(log.ran, ['key']);
  });

  void test('an identified caller that is denied (scope missing) is in the verdict', () => {
    const log = new Log();
    const base = plan([], [log.stub('key', 'api-key', { outcome: 'deny', code: 'AUTH_KEY_SCOPE_MISSING', rule: 'r', evidence: {}, identity: ACME })]);
    const v = evaluateSync(base, FACTS, 'orders', consumers({ acme: [log.stub('acme-ip', 'ip-rules')] }));
    assert.equal(v.allowed, false);
    assert.equal(v.identity, ACME);
    assert.deepEqual(log.ran, ['key']);
  });

  void test('monitor-mode authentication that identified the caller still applies the consumer policies', () => {
    // A would-be denial in monitor mode lets the request go on as if allowed. When the denial names
    // the caller (a valid key lacking a scope), the caller is known: its own enforce-mode policies
    // must run, and the call log must show who it was.
    const log = new Log();
    const base = plan(
      [],
      [log.stub('key', 'api-key', { outcome: 'deny', code: 'AUTH_KEY_SCOPE_MISSING', rule: 'r', evidence: {}, identity: ACME }, { mode: 'monitor' })],
    );
    const acmeIp = log.stub('acme-ip', 'ip-rules', { outcome: 'deny', code: 'IP_NOT_ALLOWED', rule: 'r', evidence: {} });
    const v = evaluateSync(base, FACTS, 'orders', consumers({ acme: [acmeIp] }));
    assert.deepEqual(v.monitorDenied, ['key']);
    assert.equal(v.identity, ACME, 'the identified caller is lost in monitor mode');
    assert.deepEqual(log.ran, ['key', 'acme-ip'], 'the consumer\u2019s own policies were skipped');
    assert.equal(v.allowed, false);
  });

  void test('evaluating the same plan again gives the same result (merged plans are cached)', () => {
    const log = new Log();
    const base = plan([log.stub('ip', 'ip-rules')], [log.stub('key', 'api-key', { outcome: 'allow', rule: 'k', identity: ACME })]);
    const cp = consumers({ acme: [log.stub('acme-ip', 'ip-rules')] });
    const a = evaluateSync(base, FACTS, 'orders', cp).trace.map((t) => t.policy);
    const b = evaluateSync(base, FACTS, 'orders', cp).trace.map((t) => t.policy);
    assert.deepEqual(a, ['ip', 'key', 'acme-ip']);
    assert.deepEqual(b, a);
  });

  void describe('bodyLimit', () => {
    void test('the smallest enforce-mode limit among the policies that ran', () => {
      const log = new Log();
      const small = log.stub('route-size', 'request-size', ALLOW, { bodyLimit: 500 });
      const p = plan(
        [log.stub('global-size', 'request-size', ALLOW, { bodyLimit: 1000 })],
        [small, log.stub('monitor-size', 'request-size', ALLOW, { bodyLimit: 10, mode: 'monitor' })],
      );
      const v = evaluateSync(p, FACTS, 'orders', consumers());
      assert.equal(v.bodyLimit, 500);
      assert.equal(v.bodyLimitPolicy, small);
    });

    void test('undefined when no enforce-mode limit ran', () => {
      const log = new Log();
      const v = evaluateSync(plan([], [log.stub('ip', 'ip-rules')]), FACTS, 'orders', consumers());
      assert.equal(v.bodyLimit, undefined);
      assert.equal(v.bodyLimitPolicy, undefined);
    });

    void test('a limit of 0 counts (not treated as absent)', () => {
      const log = new Log();
      const zero = log.stub('zero', 'request-size', ALLOW, { bodyLimit: 0 });
      const v = evaluateSync(plan([log.stub('big', 'request-size', ALLOW, { bodyLimit: 100 })], [zero]), FACTS, 'orders', consumers());
      assert.equal(v.bodyLimit, 0);
      assert.equal(v.bodyLimitPolicy, zero);
    });

    void test('a consumer\u2019s own limit counts once the consumer is known', () => {
      const log = new Log();
      const acmeSize = log.stub('acme-size', 'request-size', ALLOW, { bodyLimit: 200 });
      const base = plan(
        [log.stub('global-size', 'request-size', ALLOW, { bodyLimit: 1000 })],
        [log.stub('key', 'api-key', { outcome: 'allow', rule: 'k', identity: ACME })],
      );
      const v = evaluateSync(base, FACTS, 'orders', consumers({ acme: [acmeSize] }));
      assert.equal(v.bodyLimit, 200);
      assert.equal(v.bodyLimitPolicy, acmeSize);
    });

    void test('limits of policies that never ran (after a denial) do not count', () => {
      const log = new Log();
      const base = plan(
        [log.stub('global-size', 'request-size', ALLOW, { bodyLimit: 1000 })],
        [log.stub('key', 'api-key', { outcome: 'allow', rule: 'k', identity: ACME })],
      );
      const v = evaluateSync(
        base,
        FACTS,
        'orders',
        consumers({
          acme: [
            log.stub('acme-ip', 'ip-rules', { outcome: 'deny', code: 'IP_DENIED', rule: 'r', evidence: {} }),
            log.stub('acme-size', 'request-size', ALLOW, { bodyLimit: 10 }),
          ],
        }),
      );
      assert.equal(v.allowed, false);
      assert.equal(v.bodyLimit, 1000);
    });
  });
});
