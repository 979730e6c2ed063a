import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConfigIssue } from '../pipeline/types.ts';
import { Router, toRouterPath, type HttpMethod, type Match, type RouteSpec } from './router.ts';

function route(id: string, paths: string[], methods: HttpMethod[] = [], hosts: string[] = []): RouteSpec<string> {
  return { id, paths, methods, hosts, value: id };
}

function build(routes: RouteSpec<string>[]): { router: Router<string>; issues: ConfigIssue[] } {
  return Router.build(routes, (i) => `routes[${i}]`);
}

function router(routes: RouteSpec<string>[]): Router<string> {
  const b = build(routes);
  assert.deepEqual(b.issues, [], 'test routes must build cleanly');
  return b.router;
}

function found(m: Match<string>): { value: string; params: Record<string, string | undefined>; template: string } {
  assert.equal(m.kind, 'found', `expected a match, got ${JSON.stringify(m)}`);
  return m;
}

const API = router([
  route('orders-list', ['/orders', '/orders/{id}'], ['GET']),
  route('orders-create', ['/orders'], ['POST']),
  route('order-items', ['/orders/{order_id}/items/{item_id}'], ['GET', 'DELETE']),
  route('files', ['/files/*']),
  route('health', ['/healthz'], ['GET', 'HEAD']),
  route('status', ['/status'], ['GET']),
]);

void describe('Router.match: found', () => {
  const CASES: readonly { method: string; path: string; value: string; template: string; params: Record<string, string> }[] = [
    { method: 'GET', path: '/orders', value: 'orders-list', template: '/orders', params: {} },
    { method: 'POST', path: '/orders', value: 'orders-create', template: '/orders', params: {} },
    { method: 'GET', path: '/orders/42', value: 'orders-list', template: '/orders/{id}', params: { id: '42' } },
    { method: 'GET', path: '/orders/a%20b', value: 'orders-list', template: '/orders/{id}', params: { id: 'a b' } },
    { method: 'GET', path: '/orders/7/items/3', value: 'order-items', template: '/orders/{order_id}/items/{item_id}', params: { order_id: '7', item_id: '3' } },
    { method: 'DELETE', path: '/orders/7/items/3', value: 'order-items', template: '/orders/{order_id}/items/{item_id}', params: { order_id: '7', item_id: '3' } },
    { method: 'GET', path: '/files/a', value: 'files', template: '/files/*', params: { '*': 'a' } },
    { method: 'PUT', path: '/files/a/b/c.txt', value: 'files', template: '/files/*', params: { '*': 'a/b/c.txt' } },
    { method: 'HEAD', path: '/orders', value: 'orders-list', template: '/orders', params: {} },
    { method: 'HEAD', path: '/healthz', value: 'health', template: '/healthz', params: {} },
  ];
  for (const c of CASES) {
    void test(`${c.method} ${c.path}`, () => {
      const m = found(API.match(c.method, c.path, 'api.example.com'));
      assert.equal(m.value, c.value);
      assert.equal(m.template, c.template);
      assert.deepEqual({ ...m.params }, c.params);
    });
  }

  void test('a parameter matches one segment only', () => {
    assert.notEqual(API.match('GET', '/orders/1/2', 'h').kind, 'found');
  });

  void test('a prefix route does not match its bare prefix', () => {
    assert.notEqual(API.match('GET', '/files', 'h').kind, 'found');
  });

  void test('routes with no methods accept every method', () => {
    for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE']) {
      assert.equal(found(API.match(m, '/files/x', 'h')).value, 'files', m);
    }
  });
});

void describe('Router.match: hosts', () => {
  const r = router([
    route('exact', ['/o'], ['GET'], ['api.example.com']),
    route('wild', ['/o'], ['GET'], ['*.example.com']),
    route('other', ['/only-other'], ['GET'], ['other.org']),
    route('any', ['/o'], ['GET']),
  ]);
  const CASES: readonly { host: string; expect: string }[] = [
    { host: 'api.example.com', expect: 'exact' },
    { host: 'shop.example.com', expect: 'wild' },
    { host: 'example.com', expect: 'any' },
    { host: 'api.example.com.evil.org', expect: 'any' },
    { host: 'notexample.com', expect: 'any' },
    { host: 'unrelated.net', expect: 'any' },
    { host: '', expect: 'any' },
  ];
  for (const c of CASES) {
    void test(`GET /o on host "${c.host}" → ${c.expect}`, () => {
      assert.equal(found(r.match('GET', '/o', c.host)).value, c.expect);
    });
  }

  void test('a host-only route is not served on other hosts', () => {
    assert.equal(found(r.match('GET', '/only-other', 'other.org')).value, 'other');
    assert.equal(r.match('GET', '/only-other', 'api.example.com').kind, 'none');
  });

  void test('configured host names are case-insensitive (the caller lower-cases the request host)', () => {
    const mixed = router([route('mixed', ['/m'], ['GET'], ['API.Example.COM']), route('wild', ['/w'], ['GET'], ['*.Example.com'])]);
    assert.equal(found(mixed.match('GET', '/m', 'api.example.com')).value, 'mixed');
    assert.equal(found(mixed.match('GET', '/w', 'shop.example.com')).value, 'wild');
  });
});

void describe('Router.match: 405', () => {
  void test('lists the methods the path accepts, with HEAD implied by GET', () => {
    const m = API.match('DELETE', '/orders', 'h');
    assert.equal(m.kind, 'method');
    assert.deepEqual([...(m as { allow: readonly string[] }).allow].sort(), ['GET', 'HEAD', 'POST']);
  });

  void test('a parameterised path lists its own methods', () => {
    const m = API.match('POST', '/orders/7/items/3', 'h');
    assert.equal(m.kind, 'method');
    assert.deepEqual([...(m as { allow: readonly string[] }).allow].sort(), ['DELETE', 'GET', 'HEAD']);
  });

  void test('an explicit HEAD is listed once', () => {
    const m = API.match('POST', '/healthz', 'h');
    assert.equal(m.kind, 'method');
    assert.deepEqual([...(m as { allow: readonly string[] }).allow].sort(), ['GET', 'HEAD']);
  });

  void test('methods of a route on another host are not offered', () => {
    const r = router([route('a', ['/x'], ['GET'], ['a.example.com']), route('b', ['/x'], ['POST'], ['b.example.com'])]);
    const m = r.match('PUT', '/x', 'a.example.com');
    assert.equal(m.kind, 'method');
    assert.deepEqual([...(m as { allow: readonly string[] }).allow].sort(), ['GET', 'HEAD']);
  });
});

void describe('Router.match: 404 with the nearest routes', () => {
  const CASES: readonly { name: string; path: string; nearest: string }[] = [
    { name: 'letter case', path: '/Orders', nearest: '/orders' },
    { name: 'trailing slash', path: '/status/', nearest: '/status' },
    { name: 'typo', path: '/ordrs', nearest: '/orders' },
    { name: 'typo in a prefix route', path: '/fils/a', nearest: '/files/*' },
    { name: 'case of a parameterised path', path: '/ORDERS/42', nearest: '/orders/{id}' },
  ];
  for (const c of CASES) {
    void test(c.name, () => {
      const m = API.match('GET', c.path, 'h');
      assert.equal(m.kind, 'none', JSON.stringify(m));
      const nearest = (m as { nearest: readonly string[] }).nearest;
      assert.ok(nearest.length <= 3);
      assert.equal(nearest[0], c.nearest, JSON.stringify(nearest));
    });
  }

  void test('nothing near: empty list', () => {
    const m = API.match('GET', '/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz', 'h');
    assert.deepEqual(m, { kind: 'none', nearest: [] });
  });

  void test('trailing slash after a path that also has a {param} child is still a miss', () => {
    // `/orders/{id}` is one segment: an empty id is not a segment, so GET /orders/ must not reach
    // the upstream as "order ''".
    const m = API.match('GET', '/orders/', 'h');
    assert.equal(m.kind, 'none', JSON.stringify(m));
    assert.equal((m as { nearest: readonly string[] }).nearest[0], '/orders');
  });
});

void describe('Router.build issues', () => {
  void test('the same method + path in two routes names both', () => {
    const { issues } = build([route('a', ['/orders'], ['GET']), route('b', ['/x', '/orders'], ['POST', 'GET'])]);
    assert.deepEqual(
      issues.map((i) => i.path),
      ['routes[1].paths[1]'],
    );
    assert.match(issues[0]?.message ?? '', /GET \/orders/);
    assert.match(issues[0]?.message ?? '', /"a"/);
  });

  void test('two routes with no methods on the same path conflict', () => {
    const { issues } = build([route('a', ['/x']), route('b', ['/x'])]);
    assert.ok(issues.length > 0);
    assert.ok(issues.every((i) => i.path === 'routes[1].paths[0]' && /"a"/.test(i.message)));
  });

  void test('same path on different hosts is not a conflict', () => {
    assert.deepEqual(build([route('a', ['/x'], ['GET'], ['a.example.com']), route('b', ['/x'], ['GET'], ['b.example.com'])]).issues, []);
  });

  void test('same host given twice, in different letter case, is a conflict reported as an issue', () => {
    let result: { issues: ConfigIssue[] } | undefined;
    assert.doesNotThrow(() => {
      result = build([route('a', ['/x'], ['GET'], ['API.example.com']), route('b', ['/x'], ['GET'], ['api.example.com'])]);
    });
    assert.deepEqual(
      result?.issues.map((i) => i.path),
      ['routes[1].paths[0]'],
    );
    assert.match(result?.issues[0]?.message ?? '', /"a"/);
  });

  void test('the same path with a different parameter name is a conflict reported as an issue', () => {
    let result: { issues: ConfigIssue[] } | undefined;
    assert.doesNotThrow(() => {
      result = build([route('a', ['/orders/{id}'], ['GET']), route('b', ['/orders/{order_id}'], ['GET'])]);
    });
    assert.deepEqual(
      result?.issues.map((i) => i.path),
      ['routes[1].paths[0]'],
    );
    assert.match(result?.issues[0]?.message ?? '', /"a"/);
  });

  void test('GET implies HEAD without conflicting with another GET route\u2019s HEAD', () => {
    assert.deepEqual(build([route('a', ['/x'], ['GET']), route('b', ['/x'], ['POST'])]).issues, []);
  });

  void test('an explicit HEAD route wins over the HEAD implied by GET, declared first', () => {
    const b = build([route('head', ['/x'], ['HEAD']), route('get', ['/x'], ['GET'])]);
    assert.deepEqual(b.issues, []);
    assert.equal(found(b.router.match('HEAD', '/x', 'h')).value, 'head');
    assert.equal(found(b.router.match('GET', '/x', 'h')).value, 'get');
  });

  void test('an explicit HEAD route wins over the HEAD implied by GET, declared after', () => {
    const b = build([route('get', ['/x'], ['GET']), route('head', ['/x'], ['HEAD'])]);
    assert.deepEqual(b.issues, []);
    assert.equal(found(b.router.match('HEAD', '/x', 'h')).value, 'head');
    assert.equal(found(b.router.match('GET', '/x', 'h')).value, 'get');
  });

  const BAD: readonly { template: string; message: RegExp }[] = [
    { template: '/files/*/x', message: /"\*" is only allowed as the last segment/ },
    { template: '/fi*les', message: /"\*" is only allowed as the last segment/ },
    { template: '/orders/:id', message: /use \{name\}/ },
    { template: '/orders/(\\d+)', message: /use \{name\}/ },
    { template: '/orders/{1d}', message: /parameter name "1d"/ },
    { template: '/orders/{}', message: /parameter name ""/ },
    { template: '/orders/{order-id}', message: /parameter name "order-id"/ },
    { template: '/orders/{id', message: /unbalanced/ },
    { template: '/orders/id}', message: /unbalanced/ },
  ];
  for (const c of BAD) {
    void test(`bad template ${c.template}`, () => {
      const { issues } = build([route('ok', ['/ok']), route('bad', ['/fine', c.template], ['GET'])]);
      assert.deepEqual(
        issues.map((i) => i.path),
        ['routes[1].paths[1]'],
      );
      assert.match(issues[0]?.message ?? '', c.message);
    });
  }

  void test('toRouterPath converts good templates', () => {
    const table: readonly [string, string][] = [
      ['/orders', '/orders'],
      ['/orders/{id}', '/orders/:id'],
      ['/a/{x}/b/{y_2}', '/a/:x/b/:y_2'],
      ['/files/*', '/files/*'],
    ];
    for (const [t, out] of table) assert.equal(toRouterPath(t), out);
  });
});
