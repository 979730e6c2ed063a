import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { duplicatedSingleton, endToEnd, endToEndRaw, endToEndResponse } from './headers.ts';
import { HeaderNames } from './header-names.ts';

type Headers = Record<string, string | string[] | undefined>;

const CASES: readonly { name: string; in: Headers; skip?: string[]; out: Record<string, string | string[]> }[] = [
  {
    name: 'the classic hop-by-hop set is removed',
    in: {
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'proxy-authenticate': 'Basic',
      'proxy-authorization': 'Basic Zm9vOmJhcg==',
      te: 'trailers',
      trailer: 'x-checksum',
      'transfer-encoding': 'chunked',
      upgrade: 'websocket',
      'http2-settings': 'AAMAAABkAAQAAP__',
      accept: 'application/json',
    },
    out: { accept: 'application/json' },
  },
  {
    name: 'fields named in Connection are removed (RFC 9110 §7.6.1)',
    in: { connection: 'close, X-Trace-Hop, x-other', 'x-trace-hop': '1', 'x-other': '2', 'x-keep': '3' },
    out: { 'x-keep': '3' },
  },
  {
    name: 'Connection given as several header lines',
    in: { connection: ['x-a', 'X-B ,  x-c'], 'x-a': '1', 'x-b': '2', 'x-c': '3', 'x-d': '4' },
    out: { 'x-d': '4' },
  },
  {
    name: 'empty tokens in Connection are ignored',
    in: { connection: ' , ,close,', authorization: 'Bearer t' },
    out: { authorization: 'Bearer t' },
  },
  {
    name: 'end-to-end headers are kept as they are, arrays included',
    in: { host: 'api.example.com', 'set-cookie': ['a=1', 'b=2'], 'content-length': '10', 'x-empty': '' },
    out: { host: 'api.example.com', 'set-cookie': ['a=1', 'b=2'], 'content-length': '10', 'x-empty': '' },
  },
  {
    name: 'undefined values are dropped',
    in: { accept: undefined, 'x-a': 'v' },
    out: { 'x-a': 'v' },
  },
  {
    name: 'skip removes extra fields',
    in: { host: 'h', 'x-api-key': 'secret', accept: '*/*' },
    skip: ['host', 'x-api-key'],
    out: { accept: '*/*' },
  },
  {
    name: 'no headers',
    in: {},
    out: {},
  },
];

void describe('endToEnd', () => {
  for (const c of CASES) {
    void test(c.name, () => {
      const out = endToEnd(c.in, c.skip === undefined ? undefined : new Set(c.skip));
      assert.deepEqual(out, c.out);
    });
  }

  void test('the input is not modified', () => {
    const input: Headers = { connection: 'x-a', 'x-a': '1', accept: '*/*' };
    const copy = structuredClone(input);
    endToEnd(input);
    assert.deepEqual(input, copy);
  });
});

/** `{ a: '1', b: ['2', '3'] }` → `['a', '1', 'b', '2', 'b', '3']`, as IncomingMessage.rawHeaders. */
function raw(headers: Headers): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) out.push(k, one);
  }
  return out;
}

void describe('endToEndRaw (the proxy path)', () => {
  // Raw callers pass Connection as one joined value (as IncomingMessage.headers gives it), so the
  // case with Connection as an array is for the object form only.
  for (const c of CASES.filter((x) => !Array.isArray(x.in.connection))) {
    void test(c.name, () => {
      const connection = c.in.connection as string | undefined;
      const out = endToEndRaw(raw(c.in), connection, c.skip === undefined ? undefined : new HeaderNames(c.skip));
      assert.deepEqual(out, raw(c.out));
    });
  }

  void test('names keep their case and order; matching is case-insensitive', () => {
    const out = endToEndRaw(
      ['Host', 'h', 'Connection', 'close, X-Hop', 'X-Hop', '1', 'Keep-Alive', 't=5', 'X-End', '2', 'Transfer-Encoding', 'chunked', 'x-end', '3'],
      'close, X-Hop',
    );
    assert.deepEqual(out, ['Host', 'h', 'X-End', '2', 'x-end', '3']);
  });

  void test('repeated fields stay separate lines', () => {
    assert.deepEqual(endToEndRaw(['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'], undefined), ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
  });
});

void describe('endToEndResponse', () => {
  void test('Buffers decoded, Connection found among the fields and applied', () => {
    const out = endToEndResponse([
      Buffer.from('Content-Type'),
      Buffer.from('application/json'),
      Buffer.from('Connection'),
      Buffer.from('keep-alive, X-Upstream-Hop'),
      Buffer.from('X-Upstream-Hop'),
      Buffer.from('secret'),
      Buffer.from('Keep-Alive'),
      Buffer.from('timeout=5'),
      'X-Request-Id',
      'r1',
    ]);
    assert.deepEqual(out, ['Content-Type', 'application/json', 'X-Request-Id', 'r1']);
  });
});

void describe('duplicatedSingleton', () => {
  const cases: readonly [string, readonly string[], string | undefined][] = [
    ['none', ['Host', 'a', 'Accept', 'x', 'Accept', 'y'], undefined],
    ['two Authorization, any case', ['Authorization', 'Bearer a', 'authorization', 'Bearer b'], 'authorization'],
    ['two Content-Type', ['Content-Type', 'application/json', 'content-type', 'text/plain'], 'content-type'],
    ['list fields may repeat', ['Cookie', 'a=1', 'Cookie', 'b=2', 'X-Forwarded-For', '1.1.1.1', 'X-Forwarded-For', '2.2.2.2'], undefined],
  ];
  for (const [name, raw, expect] of cases) void test(name, () => assert.equal(duplicatedSingleton(raw), expect));
});
