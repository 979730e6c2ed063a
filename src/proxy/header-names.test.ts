import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HeaderNames, startsWithIgnoringCase } from './header-names.ts';

void describe('HeaderNames', () => {
  const set = new HeaderNames(['Content-Length', 'host', 'http2-settings', 'x_trace_id', 'te']);
  const CASES: readonly [string, string | undefined][] = [
    ['content-length', 'content-length'],
    ['Content-Length', 'content-length'],
    ['CONTENT-LENGTH', 'content-length'],
    ['cOnTeNt-LeNgTh', 'content-length'],
    ['HOST', 'host'],
    ['HTTP2-Settings', 'http2-settings'],
    ['X_Trace_ID', 'x_trace_id'],
    ['TE', 'te'],
    // Same length, another name.
    ['content-lengtx', undefined],
    ['hose', undefined],
    // Only letters fold: these differ from a member by 0x20 in a non-letter position.
    ['http\u0012-settings', undefined], // '2' - 0x20
    ['x\u007ftrace_id', undefined], // '_' | 0x20
    ['content\u000dlength', undefined], // '-' - 0x20
    ['', undefined],
    ['upgrade', undefined],
  ];
  for (const [name, want] of CASES) {
    void test(`${JSON.stringify(name)} → ${String(want)}`, () => {
      assert.equal(set.find(name), want);
      assert.equal(set.has(name), want !== undefined);
      assert.equal(set.index(name), want === undefined ? -1 : set.names.indexOf(want));
    });
  }
  void test('names are kept lower-case, once each, in the order given', () => {
    assert.deepEqual(new HeaderNames(['B', 'a', 'b']).names, ['b', 'a']);
  });
});

void describe('startsWithIgnoringCase', () => {
  const CASES: readonly [string, boolean][] = [
    ['Access-Control-Allow-Origin', true],
    ['access-control-max-age', true],
    ['ACCESS-CONTROL-', true],
    ['Access-Control', false],
    ['X-Access-Control-Allow-Origin', false],
    ['content-type', false],
  ];
  for (const [name, want] of CASES) {
    void test(`${name} → ${String(want)}`, () => assert.equal(startsWithIgnoringCase(name, 'access-control-'), want));
  }
});
