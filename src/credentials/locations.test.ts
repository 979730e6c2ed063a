import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestFacts } from '../pipeline/types.ts';
import { readCredential, repeatedCredential, type CredentialLocation } from './locations.ts';

function facts(rawQuery: string, cookie?: string): RequestFacts {
  return {
    method: 'GET',
    path: '/',
    rawQuery,
    host: 'a',
    headers: cookie === undefined ? {} : { cookie },
    clientIp: '127.0.0.1',
    clientIpSource: 'socket',
    params: {},
    contentLength: undefined,
    now: 0,
  };
}

const QUERY: CredentialLocation = { from: 'query', name: 'key' };
const COOKIE: CredentialLocation = { from: 'cookie', name: 'session' };

void test('repeatedCredential: a query or cookie credential sent twice is refused; once, or another name twice, is not', () => {
  const cases: [RequestFacts, CredentialLocation, number | undefined][] = [
    [facts('key=a'), QUERY, undefined],
    [facts('key=a&other=1&other=2'), QUERY, undefined],
    [facts('key=a&key=b'), QUERY, 2],
    [facts('key=a&key=a&key=c'), QUERY, 3],
    [facts('', 'session=a; theme=dark'), COOKIE, undefined],
    [facts('', 'session=a; session=b'), COOKIE, 2],
    [facts('', ' session=a;session=b ;x=1'), COOKIE, 2],
    [facts('', 'sessionx=a; session=b'), COOKIE, undefined],
  ];
  for (const [f, loc, count] of cases) {
    const d = repeatedCredential(f, loc);
    if (count === undefined) assert.equal(d, undefined, `${f.rawQuery} ${String(f.headers.cookie)}`);
    else {
      assert.equal(d?.code, 'AUTH_CREDENTIAL_REPEATED');
      assert.equal(d?.evidence?.count, count);
    }
  }
  // What the policies read is the first value; the refusal is what keeps the upstream from reading another.
  assert.equal(readCredential(facts('key=a&key=b'), QUERY), 'a');
});
