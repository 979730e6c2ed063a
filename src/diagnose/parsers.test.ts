import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCurl, shellWords } from './curl.ts';
import { parseHar } from './har.ts';
import { parseRawHttp } from './raw.ts';

void describe('curl command lines', () => {
  void test('shell quoting', () => {
    assert.deepEqual(shellWords(`curl -H 'a: b c' "x\\"y" $'l1\\nl2' plain\\ word`), ['curl', '-H', 'a: b c', 'x"y', 'l1\nl2', 'plain word']);
    assert.throws(() => shellWords("curl 'open"), /unterminated/);
  });

  void test('method, URL, headers and a JSON body', () => {
    const r = parseCurl(`curl -X POST 'https://api.example.com/orders?x=1' -H 'X-Api-Key: k1' --json '{"a":1}'`);
    assert.equal(r.method, 'POST');
    assert.equal(r.target, '/orders?x=1');
    assert.equal(r.headers.host, 'api.example.com');
    assert.equal(r.headers['x-api-key'], 'k1');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.body?.toString(), '{"a":1}');
  });

  void test('-d implies POST and a form body; -G moves data to the query; -u is Basic', () => {
    const post = parseCurl(`curl http://h/p -d a=1 -d b=2`);
    assert.deepEqual([post.method, post.headers['content-type'], post.body?.toString()], ['POST', 'application/x-www-form-urlencoded', 'a=1&b=2']);
    const get = parseCurl(`curl -G http://h/p -d a=1`);
    assert.deepEqual([get.method, get.target, get.body], ['GET', '/p?a=1', undefined]);
    const basic = parseCurl(`curl -u alice:pw http://h/`);
    assert.equal(basic.headers.authorization, `Basic ${Buffer.from('alice:pw').toString('base64')}`);
  });

  void test('errors', () => {
    assert.throws(() => parseCurl('wget http://h/'), /curl/);
    assert.throws(() => parseCurl('curl -H'), /needs a value/);
    assert.throws(() => parseCurl('curl -s'), /no URL/);
  });
});

void describe('raw HTTP and HAR', () => {
  void test('a raw request message', () => {
    const r = parseRawHttp('POST /orders HTTP/1.1\nHost: h\nContent-Type: application/json\n\n{"a":1}');
    assert.deepEqual([r.method, r.target, r.headers.host, r.body?.toString()], ['POST', '/orders', 'h', '{"a":1}']);
    assert.throws(() => parseRawHttp('nonsense'), /request line/);
  });

  void test('HAR entries, HTTP/2 pseudo-headers mapped', () => {
    const har = JSON.stringify({
      log: {
        entries: [
          { request: { method: 'GET', url: 'https://api.example.com/a?b=1', headers: [{ name: ':authority', value: 'api.example.com' }, { name: 'Origin', value: 'https://app.example.com' }] } },
          { request: { method: 'post', url: 'https://api.example.com/o', headers: [], postData: { mimeType: 'application/json', text: '{}' } } },
        ],
      },
    });
    const [a, b] = parseHar(har);
    assert.deepEqual([a?.target, a?.headers.host, a?.headers.origin, a?.headers[':authority']], ['/a?b=1', 'api.example.com', 'https://app.example.com', undefined]);
    assert.deepEqual([b?.method, b?.headers['content-type'], b?.body?.toString()], ['POST', 'application/json', '{}']);
    assert.throws(() => parseHar('{}'), /log.entries/);
  });
});

void describe('implied CORS preflight', async () => {
  const { impliedPreflight } = await import('./diagnose.ts');
  void test('a cross-origin JSON POST is preflighted with its method and custom headers', () => {
    const pre = impliedPreflight({ method: 'POST', target: '/o', headers: { host: 'api:1', origin: 'https://app', 'content-type': 'application/json', 'x-api-key': 'k', accept: '*/*' } });
    assert.deepEqual(pre?.headers, { host: 'api:1', origin: 'https://app', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-api-key' });
  });
  void test('simple, same-origin or origin-less requests are not', () => {
    assert.equal(impliedPreflight({ method: 'POST', target: '/o', headers: { host: 'api', origin: 'https://app', 'content-type': 'text/plain' } }), undefined);
    assert.equal(impliedPreflight({ method: 'PUT', target: '/o', headers: { host: 'app', origin: 'https://app' } }), undefined);
    assert.equal(impliedPreflight({ method: 'PUT', target: '/o', headers: { host: 'api' } }), undefined);
  });
});
