/**
 * The three authorization policies through the real evaluator (src/pipeline/run.ts):
 * oauth2-introspection establishes the identity (scopes, roles, claims) asynchronously, then rbac
 * and ownership decide on it. Positions are given by hand here; the pipeline order list owns them
 * in the gateway.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { validate } from '../../config/validate.ts';
import { KeyIndex } from '../../credentials/api-keys.ts';
import type { PlannedPolicy } from '../../pipeline/plan.ts';
import { evaluate } from '../../pipeline/run.ts';
import type { CompiledPolicy, PolicyModule, RequestFacts } from '../../pipeline/types.ts';
import { ownership } from '../ownership/index.ts';
import { rbac } from '../rbac/index.ts';
import { oauth2Introspection } from './index.ts';

const NOW = Date.parse('2026-06-01T12:00:00Z');
let server: http.Server;
let calls = 0;

const TOKENS: Record<string, Record<string, unknown>> = {
  tok_alice: { active: true, sub: 'alice', scope: 'orders:read', roles: ['customer'], exp: NOW / 1000 + 600 },
  tok_root: { active: true, sub: 'root', scope: 'orders:admin', exp: NOW / 1000 + 600 },
};

before(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      calls++;
      const token = new URLSearchParams(body).get('token') ?? '';
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(TOKENS[token] ?? { active: false }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function build<M extends PolicyModule>(mod: M, id: string, raw: Record<string, unknown>): CompiledPolicy {
  const path = `policies.${id}.config`;
  assert.deepEqual(validate(mod.schema, raw, path), []);
  return mod.compile(raw, { id, mode: 'enforce' }, { consumers: [{ id: 'alice', groups: ['customers'] }], apiKeys: KeyIndex.build([], {}).index, env: { S: 'secret' }, path, baseDir: '.' });
}

function planOf(): readonly PlannedPolicy[] {
  const port = (server.address() as AddressInfo).port;
  return [
    build(oauth2Introspection, 'token', { endpoint: `http://127.0.0.1:${port}/introspect`, client_id: 'gw', client_secret_env: 'S', role_claims: ['roles'] }),
    build(rbac, 'perm', {
      levels: ['read', 'write', 'admin'],
      rules: [{ methods: ['GET'], permission: 'orders:read' }, { permission: 'orders:write' }],
      roles: { customer: ['orders:write'] },
    }),
    build(ownership, 'own', { resource: { from: 'path', name: 'customer' }, override_permissions: ['orders:admin'] }),
  ].map((policy, i) => ({ policy, position: i, attachedTo: 'route' as const }));
}

function facts(method: string, customer: string, token?: string): RequestFacts {
  return {
    method,
    path: `/customers/${customer}/orders`,
    rawQuery: '',
    host: 'api.example.com',
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    clientIp: '198.51.100.7',
    clientIpSource: 'socket',
    params: { customer },
    contentLength: undefined,
    now: NOW,
  };
}

const NO_CONSUMER_POLICIES = { get: () => undefined };

void describe('introspection → rbac → ownership', () => {
  const CASES = [
    { name: 'own resource, role grants write', method: 'POST', customer: 'alice', token: 'tok_alice', code: undefined },
    { name: 'someone else\u2019s resource', method: 'POST', customer: 'bob', token: 'tok_alice', code: 'OWNERSHIP_NOT_OWNER' },
    { name: 'admin scope: write by level, ownership overridden', method: 'DELETE', customer: 'bob', token: 'tok_root', code: undefined },
    { name: 'inactive token stops at introspection', method: 'GET', customer: 'alice', token: 'tok_dead', code: 'AUTH_INTROSPECTION_TOKEN_INACTIVE' },
    { name: 'no token', method: 'GET', customer: 'alice', token: undefined, code: 'AUTH_INTROSPECTION_TOKEN_MISSING' },
  ] as const;
  for (const c of CASES) {
    void test(c.name, async () => {
      const v = await evaluate(planOf(), facts(c.method, c.customer, c.token), 'orders', NO_CONSUMER_POLICIES);
      assert.equal(v.deny?.code, c.code, JSON.stringify(v.trace));
      if (c.code === undefined) {
        assert.equal(v.allowed, true);
        assert.deepEqual(v.trace.map((t) => t.outcome), ['allow', 'allow', 'allow']);
      }
    });
  }

  void test('the identity reaching rbac and ownership is the introspected one, groups from config', async () => {
    const v = await evaluate(planOf(), facts('GET', 'alice', 'tok_alice'), 'orders', NO_CONSUMER_POLICIES);
    assert.equal(v.identity?.consumer, 'alice');
    assert.deepEqual([...(v.identity?.groups ?? [])], ['customers']);
    assert.deepEqual(v.trace.map((t) => [t.policy, t.rule]), [
      ['token', 'token active for alice'],
      ['perm', 'rules[0]: orders:read'],
      ['own', 'owner: path parameter customer = sub'],
    ]);
  });

  void test('one plan, many requests: the endpoint is asked once per token', async () => {
    const plan = planOf();
    const before = calls;
    for (let i = 0; i < 5; i++) await evaluate(plan, facts('GET', 'alice', 'tok_alice'), 'orders', NO_CONSUMER_POLICIES);
    assert.equal(calls - before, 1);
  });
});
