/**
 * Config rejection: each bad config names the exact path and a stable part of the message.
 * Everything runs in memory (loadConfigText) except the two file tests.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { ConfigIssue } from '../pipeline/types.ts';
import { parseDuration } from './compile.ts';
import { loadConfigFile, loadConfigText, type LoadResult } from './load.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

const UPSTREAMS = `upstreams:
  orders:
    targets: [{ url: "http://127.0.0.1:9101" }]
`;

const ROUTES = `routes:
  - id: orders-list
    paths: [/orders]
    methods: [GET]
    upstream: orders
`;

/** A valid config, with `extra` YAML inserted before routes (or routes replaced). */
function yaml(extra = '', routes = ROUTES, upstreams = UPSTREAMS): string {
  return `version: 1\n${upstreams}${extra}${routes}`;
}

function load(text: string, env: Record<string, string | undefined> = {}): LoadResult {
  return loadConfigText(text, { file: 'pinpoint.yaml', env });
}

function issuesOf(text: string, env?: Record<string, string | undefined>): readonly ConfigIssue[] {
  const r = load(text, env);
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : r.issues;
}

interface Rejection {
  readonly name: string;
  readonly text: string;
  readonly env?: Record<string, string | undefined>;
  /** The issue that must be present: exact path, stable part of the message. */
  readonly path: string;
  readonly message: RegExp;
  /** When set, the number of issues reported in all. */
  readonly count?: number;
}

const REJECTIONS: readonly Rejection[] = [
  {
    name: 'unknown top-level field, with did-you-mean',
    text: yaml('trusted_proxy: ["10.0.0.0/8"]\n'),
    path: '(root)',
    message: /unknown field "trusted_proxy" \(did you mean "trusted_proxies"\?\)/,
    count: 1,
  },
  {
    name: 'unknown nested field, with did-you-mean',
    text: yaml('listen: { prot: 8080 }\n'),
    path: 'listen',
    message: /unknown field "prot" \(did you mean "port"\?\)/,
  },
  {
    name: 'wrong enum value (balance)',
    text: yaml('', ROUTES, `upstreams:\n  orders:\n    targets: [{ url: "http://127.0.0.1:9101" }]\n    balance: random\n`),
    path: 'upstreams.orders.balance',
    message: /must be one of "round_robin", "weighted"/,
    count: 1,
  },
  {
    name: 'wrong enum value (call_log.overload)',
    text: yaml('call_log: { overload: drop }\n'),
    path: 'call_log.overload',
    message: /must be one of "block", "drop_oldest", "sample"/,
  },
  {
    name: 'wrong type',
    text: yaml('listen: { port: "eighty" }\n'),
    path: 'listen.port',
    message: /must be integer/,
  },
  {
    name: 'missing required field',
    text: 'version: 1\n' + UPSTREAMS,
    path: '(root)',
    message: /required property 'routes'/,
    count: 1,
  },
  {
    name: 'wrong version',
    text: yaml().replace('version: 1', 'version: 2'),
    path: 'version',
    message: /must be equal to constant/,
  },
  {
    name: 'route with an unknown upstream',
    text: yaml('', `routes:\n  - id: r\n    paths: [/x]\n    upstream: billing\n`),
    path: 'routes[0].upstream',
    message: /no upstream "billing".*known: orders/,
    count: 1,
  },
  {
    name: 'unknown policy ref in a route',
    text: yaml('', `routes:\n  - id: r\n    paths: [/x]\n    upstream: orders\n    policies: [ghost]\n`),
    path: 'routes[0].policies[0]',
    message: /no policy with id "ghost"/,
    count: 1,
  },
  {
    name: 'unknown policy ref in global',
    text: yaml('global: { policies: [ghost] }\n'),
    path: 'global.policies[0]',
    message: /no policy with id "ghost"/,
  },
  {
    name: 'unknown policy ref in a consumer',
    text: yaml('consumers:\n  - id: acme\n    policies: [ghost]\n'),
    path: 'consumers[0].policies[0]',
    message: /no policy with id "ghost"/,
  },
  {
    name: 'unknown policy type',
    text: yaml('policies:\n  limiter: { type: rate-limiter }\n'),
    path: 'policies.limiter.type',
    message: /unknown policy type "rate-limiter".*api-key/,
    count: 1,
  },
  {
    name: 'policy config schema error: api-key in[0].from',
    text: yaml('policies:\n  key:\n    type: api-key\n    config:\n      in: [{ from: cookie, name: sid }]\n'),
    path: 'policies.key.config.in[0].from',
    message: /./,
  },
  {
    name: 'policy config schema error: unknown field in a policy config',
    text: yaml('policies:\n  key:\n    type: api-key\n    config:\n      required_scope: [a]\n'),
    path: 'policies.key.config',
    message: /unknown field "required_scope" \(did you mean "required_scopes"\?\)/,
  },
  {
    name: 'policy config schema error: required field missing',
    text: yaml('policies:\n  size:\n    type: request-size\n'),
    path: 'policies.size.config',
    message: /required property 'max_bytes'/,
  },
  {
    name: 'policy compile error: ip-rules bad CIDR',
    text: yaml('policies:\n  ip:\n    type: ip-rules\n    config: { deny: ["10.0.0.0/8", "10.0.0.0/99"] }\n'),
    path: 'policies.ip.config.deny[1]',
    message: /"10.0.0.0\/99" has an invalid prefix length/,
    count: 1,
  },
  {
    name: 'duplicate route ids',
    text: yaml('', `routes:\n  - id: r\n    paths: [/a]\n    upstream: orders\n  - id: r\n    paths: [/b]\n    upstream: orders\n`),
    path: 'routes[1].id',
    message: /duplicate id "r" \(also routes\[0\]\)/,
    count: 1,
  },
  {
    name: 'duplicate consumer ids',
    text: yaml('consumers:\n  - id: acme\n  - id: acme\n'),
    path: 'consumers[1].id',
    message: /duplicate id "acme"/,
  },
  {
    name: 'bad CIDR in trusted_proxies',
    text: yaml('trusted_proxies: ["10.0.0.0/8", "10.0.0.0/33"]\n'),
    path: 'trusted_proxies[1]',
    message: /invalid prefix length \(0-32\)/,
    count: 1,
  },
  {
    name: 'not an address in trusted_proxies',
    text: yaml('trusted_proxies: [loadbalancer]\n'),
    path: 'trusted_proxies[0]',
    message: /"loadbalancer" is not an IP address or CIDR/,
  },
  {
    name: 'target URL with credentials',
    text: yaml('', ROUTES, `upstreams:\n  orders:\n    targets: [{ url: "http://user:secret@127.0.0.1:9101" }]\n`),
    path: 'upstreams.orders.targets[0].url',
    message: /credentials in a target URL/,
    count: 1,
  },
  {
    name: 'target URL with a query',
    text: yaml('', ROUTES, `upstreams:\n  orders:\n    targets: [{ url: "http://127.0.0.1:9101/?a=1" }]\n`),
    path: 'upstreams.orders.targets[0].url',
    message: /query or fragment/,
  },
  {
    name: 'target URL that is not http(s)',
    text: yaml('', ROUTES, `upstreams:\n  orders:\n    targets: [{ url: "ftp://127.0.0.1" }]\n`),
    path: 'upstreams.orders.targets[0].url',
    message: /must match pattern "\^https\?:\/\/"/,
  },
  {
    name: 'duplicate route (same method + path)',
    text: yaml('', `routes:\n  - id: a\n    paths: [/orders]\n    methods: [GET]\n    upstream: orders\n  - id: b\n    paths: [/orders]\n    methods: [POST, GET]\n    upstream: orders\n`),
    path: 'routes[1].paths[0]',
    message: /GET \/orders is already served by route "a"/,
    count: 1,
  },
  {
    name: 'bad path template',
    text: yaml('', `routes:\n  - id: a\n    paths: ["/orders/:id"]\n    upstream: orders\n`),
    path: 'routes[0].paths[0]',
    message: /use \{name\}/,
  },
  {
    name: 'credential problem (key_env unset)',
    text: yaml('consumers:\n  - id: acme\n    credentials:\n      api_keys: [{ id: k1, key_env: ACME_KEY }]\n'),
    path: 'consumers[0].credentials.api_keys[0].key_env',
    message: /ACME_KEY is not set/,
  },
  {
    name: 'subscription with an unknown status',
    text: yaml('consumers:\n  - id: acme\n    subscriptions: [{ api: orders, status: approved }]\n'),
    path: 'consumers[0].subscriptions[0].status',
    message: /must be one of "active", "pending", "rejected", "expired", "suspended"/,
    count: 1,
  },
  {
    name: 'subscription end that is not an RFC 3339 time',
    text: yaml('consumers:\n  - id: acme\n    subscriptions: [{ api: orders, status: active, expires_at: "next year" }]\n'),
    path: 'consumers[0].subscriptions[0].expires_at',
    message: /must match format "date-time"/,
    count: 1,
  },
  {
    // Two subscription policies for one API find the same problem; it is reported once.
    name: 'two subscriptions of one consumer to one API, reported once',
    text: yaml(
      'policies:\n  subs: { type: subscription, config: { api: orders } }\n  subs-watch: { type: subscription, mode: monitor, config: { api: orders } }\nconsumers:\n  - id: acme\n    subscriptions: [{ api: orders, status: active }, { api: orders, status: pending }]\n',
    ),
    path: 'consumers[0].subscriptions[1].api',
    message: /acme already has a subscription to API orders/,
    count: 1,
  },
  {
    name: 'tenant policy with a bad from',
    text: yaml('policies:\n  team:\n    type: tenant\n    config: { tenant: { from: cookie, name: tenant } }\n'),
    path: 'policies.team.config.tenant.from',
    message: /must be one of "param", "header", "query"/,
    count: 1,
  },
  {
    name: 'subscription policy without an api',
    text: yaml('policies:\n  subs: { type: subscription }\n'),
    path: 'policies.subs.config',
    message: /required property 'api'/,
    count: 1,
  },
  {
    name: 'YAML syntax error: path is file:line:col',
    text: 'version: 1\nupstreams:\n  orders: [\n',
    path: 'pinpoint.yaml:4:1',
    message: /./,
  },
  {
    name: 'YAML bad indentation',
    text: 'version: 1\nroutes:\n  - id: a\n   paths: x\n',
    path: 'pinpoint.yaml:4:1',
    message: /./,
  },
  {
    name: 'YAML duplicate key',
    text: 'version: 1\nversion: 1\n',
    path: 'pinpoint.yaml:2:1',
    message: /unique/i,
  },
  { name: 'non-mapping document: a list', text: '- a\n- b\n', path: '(root)', message: /must be a YAML mapping/, count: 1 },
  { name: 'non-mapping document: a scalar', text: 'hello\n', path: '(root)', message: /must be a YAML mapping/, count: 1 },
  { name: 'non-mapping document: empty', text: '', path: '(root)', message: /must be a YAML mapping/, count: 1 },
];

void describe('config rejections', () => {
  for (const c of REJECTIONS) {
    void test(c.name, () => {
      const issues = issuesOf(c.text, c.env);
      const hit = issues.find((i) => i.path === c.path && c.message.test(i.message));
      assert.ok(hit !== undefined, `no issue at ${c.path} matching ${String(c.message)}; got ${JSON.stringify(issues)}`);
      if (c.count !== undefined) assert.equal(issues.length, c.count, JSON.stringify(issues));
    });
  }

  void test('several problems are all reported at once', () => {
    const issues = issuesOf(
      yaml(
        'trusted_proxies: [nope]\nglobal: { policies: [ghost] }\n',
        `routes:\n  - id: r\n    paths: [/x]\n    upstream: billing\n`,
      ),
    );
    assert.deepEqual(issues.map((i) => i.path).sort(), ['global.policies[0]', 'routes[0].upstream', 'trusted_proxies[0]']);
  });


  void test('a policy config error shows in the same run as a structural one', () => {
    const issues = issuesOf(
      yaml(
        'listen: { hots: 127.0.0.1 }\npolicies:\n  ipr: { type: ip-rules, config: { alow: [10.0.0.0/8] } }\n  rs: { type: request-size, config: { max_bytes: big } }\n  odd: { type: no-such-type }\n  broken: 7\n',
      ),
    );
    assert.deepEqual(issues.map((i) => i.path).sort(), ['listen', 'policies.broken', 'policies.ipr.config', 'policies.odd.type', 'policies.rs.config.max_bytes']);
    assert.match(issues.find((i) => i.path === 'policies.ipr.config')?.message ?? '', /unknown field "alow" \(did you mean "allow"\?\)/);
  });
  void test('a policy enum error names the allowed values and no misleading field', () => {
    // api-key `in` is a union of location shapes; `from: cookie` should say which `from` values exist,
    // not "must be equal to constant", and not blame `name` (valid for header and query locations).
    const issues = issuesOf(yaml('policies:\n  key:\n    type: api-key\n    config:\n      in: [{ from: cookie, name: sid }]\n'));
    const atFrom = issues.filter((i) => i.path === 'policies.key.config.in[0].from');
    assert.ok(
      atFrom.some((i) => /"header"/.test(i.message) && /"bearer"/.test(i.message) && /"query"/.test(i.message)),
      `allowed values not named: ${JSON.stringify(issues)}`,
    );
    assert.ok(!issues.some((i) => /unknown field "name"/.test(i.message)), `misleading issue: ${JSON.stringify(issues)}`);
  });

  void test('a path template conflict the router cannot hold is an issue, not a crash', () => {
    let result: LoadResult | undefined;
    assert.doesNotThrow(() => {
      result = load(yaml('', `routes:\n  - id: a\n    paths: ["/orders/{id}"]\n    upstream: orders\n  - id: b\n    paths: ["/orders/{order_id}"]\n    upstream: orders\n`));
    });
    assert.equal(result?.ok, false);
    assert.ok(result !== undefined && !result.ok && result.issues.some((i) => i.path === 'routes[1].paths[0]'), JSON.stringify(result));
  });
});

void describe('valid configs', () => {
  void test('a minimal config compiles, with defaults filled', () => {
    const r = load(yaml());
    assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
    const s = r.compiled.source;
    assert.equal(s.listen.port, 8080);
    assert.equal(s.listen.host, '0.0.0.0');
    assert.equal(s.admin.enabled, true);
    assert.equal(s.admin.host, '127.0.0.1');
    assert.equal(s.admin.port, 9180);
    assert.equal(s.admin.token_env, 'PINPOINT_ADMIN_TOKEN');
    assert.deepEqual(s.trusted_proxies, []);
    assert.equal(s.errors.mode, 'public');
    assert.equal(s.errors.type_base, 'urn:pinpoint:error:');
    assert.equal(s.request_id.header, 'x-request-id');
    assert.equal(s.request_id.trust_incoming, 'trusted_proxies');
    assert.equal(s.call_log.enabled, true);
    assert.equal(s.call_log.overload, 'block');
    assert.equal(s.call_log.retention, '7d');
    assert.equal(s.call_log.batch_size, 500);
    assert.equal(s.call_log.queue_limit, 100000);
    assert.deepEqual(s.policies, {});
    assert.deepEqual(s.global.policies, []);
    assert.deepEqual(s.consumers, []);
    const up = s.upstreams.orders;
    assert.ok(up !== undefined);
    assert.equal(up.balance, 'round_robin');
    assert.equal(up.targets[0]?.weight, 1);
    assert.deepEqual(up.timeouts, { connect_ms: 5000, response_ms: 60000, idle_ms: 60000 });
    assert.deepEqual(up.retries, { attempts: 1, on_status: [502, 503, 504] });
    assert.deepEqual(up.health, { max_fails: 3, fail_timeout_ms: 10000 });
    assert.equal(up.connections, 128);
    const route = s.routes[0];
    assert.ok(route !== undefined);
    assert.deepEqual(route.hosts, []);
    assert.deepEqual(route.policies, []);
    assert.equal(route.preserve_host, false);

    assert.equal(r.compiled.routes.length, 1);
    assert.equal(r.compiled.routes[0]?.upstreamId, 'orders');
    assert.equal(r.compiled.file, path.resolve('pinpoint.yaml'));
    assert.equal(r.compiled.callLogPath, path.resolve('var/pinpoint-calls.db'));
    assert.equal(r.compiled.router.match('GET', '/orders', 'h').kind, 'found');
  });

  void test('policy config defaults are filled too (api-key in / realm)', () => {
    const r = load(
      yaml(
        'policies:\n  key: { type: api-key }\nconsumers:\n  - id: acme\n    credentials:\n      api_keys: [{ id: k1, key_env: ACME_KEY }]\n',
        `routes:\n  - id: r\n    paths: [/x]\n    upstream: orders\n    policies: [key]\n`,
      ),
      { ACME_KEY: 'pp_acme_0123456789' },
    );
    assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
    assert.equal(r.compiled.source.policies.key?.mode, 'enforce');
    const plan = r.compiled.routes[0]?.plan ?? [];
    assert.deepEqual(
      plan.map((p) => p.policy.id),
      ['key'],
    );
    assert.equal(r.compiled.apiKeys.find('pp_acme_0123456789')?.id, 'k1');
  });

  void test('the demo config loads', () => {
    const file = path.join(ROOT, 'examples/demo/pinpoint.yaml');
    const r = loadConfigFile(file, {});
    assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
    assert.equal(r.compiled.file, file);
    assert.deepEqual(
      r.compiled.routes.map((x) => [x.id, x.kind]),
      [['orders-list', 'proxy'], ['orders-create', 'proxy'], ['ai', 'ai']],
    );
    assert.equal(r.compiled.ai.resolve('gpt-4o-mini')?.name, 'demo-echo');
    assert.deepEqual(
      r.compiled.routes[1]?.plan.map((p) => p.policy.id),
      ['no-known-abusers', 'orders-body-limit', 'orders-write-key'],
    );
    assert.equal(r.compiled.apiKeys.find('pp_demo_read_7f3a9c2e41b8d605')?.id, 'k_demo_read');
    assert.equal(r.compiled.callLogPath, path.join(ROOT, 'var/demo/calls.db'));
  });

  void test('a missing file fails, naming the file', () => {
    const file = path.join(ROOT, 'examples/demo/no-such-config.yaml');
    const r = loadConfigFile(file, {});
    assert.equal(r.ok, false);
    assert.ok(!r.ok);
    assert.equal(r.issues.length, 1);
    assert.equal(r.issues[0]?.path, file);
    assert.match(r.issues[0]?.message ?? '', /cannot read config file: ENOENT/);
  });
});

void describe('parseDuration', () => {
  const GOOD: readonly [string, number][] = [
    ['0ms', 0],
    ['500ms', 500],
    ['1s', 1000],
    ['30s', 30_000],
    ['15m', 900_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
    ['0d', 0],
  ];
  for (const [text, ms] of GOOD) void test(`${text} = ${ms} ms`, () => assert.equal(parseDuration(text), ms));

  const BAD = ['', '5', 's', '1.5s', '-1s', '10 s', '1w', '1S', ' 1s', '1s ', '1h30m', 'ms'];
  for (const text of BAD) {
    void test(`${JSON.stringify(text)} is refused`, () => assert.throws(() => parseDuration(text), /not a duration/));
  }
});
