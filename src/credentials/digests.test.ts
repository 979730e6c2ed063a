/** The per-request digest memo: the same digests as hashing each time, each value hashed once. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildReplayRecord } from '../calllog/replay-record.ts';
import { loadConfigText } from '../config/load.ts';
import { hashKey } from './api-keys.ts';
import { Digests, sha256Hex, sha256HexOf } from './digests.ts';

const KEY = 'pp_digest_key_0123456789abcdef';
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW5vdC1jaGVja2VkLWhlcmU';

void describe('Digests', () => {
  void test('each distinct value is hashed once, to the same hex as hashing directly', () => {
    const d = new Digests();
    assert.equal(d.of(KEY), sha256Hex(KEY));
    assert.equal(d.of(TOKEN), sha256Hex(TOKEN));
    assert.equal(d.of(KEY), sha256Hex(KEY));
    assert.equal(d.hashed, 2);
    assert.equal(sha256HexOf(KEY, undefined), sha256Hex(KEY));
    assert.notEqual(d.of(`${KEY}x`), d.of(KEY));
    assert.equal(d.hashed, 3);
  });

  void test('the key index and the replay record share one request memo: the key and the token are hashed once each', () => {
    const r = loadConfigText(
      `version: 1
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
policies:
  key: { type: api-key, config: { in: [{ from: header, name: x-api-key }] } }
consumers:
  - id: alice
    credentials: { api_keys: [{ id: k_alice, hash: "${hashKey(KEY)}" }] }
routes: [{ id: r, paths: ['/*'], upstream: u, policies: [key] }]
`,
    );
    assert.ok(r.ok);
    const keys = r.compiled.apiKeys;
    const d = new Digests();
    // What the api-key policy does on the way in, then the bearer token a jwt policy would hash.
    const rec = keys.find(KEY, d);
    assert.equal(rec?.id, 'k_alice');
    d.of(TOKEN);
    assert.equal(d.hashed, 2);
    // Two secret values: the replay record cannot tell which was the key, so it looks both up.
    const replay = buildReplayRecord({
      config: r.compiled,
      headers: { host: 'api.example.com', 'x-api-key': KEY, authorization: `Bearer ${TOKEN}` },
      query: '',
      peer: '127.0.0.1',
      ipSource: 'socket',
      identity: rec?.identity,
      body: undefined,
      digests: d,
    });
    assert.equal(d.hashed, 2, 'no value was hashed a second time');
    // The record does go through the memo: on its own (a fresh one) it hashes both values there.
    const fresh = new Digests();
    buildReplayRecord({ config: r.compiled, headers: { 'x-api-key': KEY, authorization: `Bearer ${TOKEN}` }, query: '', peer: '127.0.0.1', ipSource: 'socket', identity: rec?.identity, body: undefined, digests: fresh });
    assert.equal(fresh.hashed, 2);
    assert.equal(replay?.headers['x-api-key'], '[redacted#1 key=k_alice]');
    assert.equal(replay?.headers.authorization, 'Bearer [redacted#2]');
  });
});
