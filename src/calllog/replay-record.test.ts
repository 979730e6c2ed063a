/** The replay record: what is kept, what is replaced, and that no secret survives in any form. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hashKey } from '../credentials/api-keys.ts';
import { Digests } from '../credentials/digests.ts';
import type { CompiledConfig } from '../config/compile.ts';
import { loadConfigText } from '../config/load.ts';
import type { Identity } from '../pipeline/types.ts';
import { authorizationPlaceholder, buildReplayRecord, formatPlaceholder, OTHER_SCHEME, parsePlaceholder, type ReplaySource } from './replay-record.ts';

const KEY = 'pp_record_key_0123456789abcdef';
const OTHER = 'pp_record_unknown_zzzzzzzzzzzzzz';
const CSRF = 'csrf-token-value-42';
const PASSWORD = 's3cret-pass-word';

function config(extra = ''): CompiledConfig {
  const r = loadConfigText(
    `version: 1
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
trusted_proxies: ["10.0.0.0/8"]
policies:
  key: { type: api-key, config: { in: [{ from: header, name: X-Custom-Key }, { from: query, name: sig }, { from: bearer }] } }
  csrf: { type: csrf, config: { header_name: X-Xsrf } }
  tok:
    type: jwt
    config: { algorithms: [HS256], keys: [{ secret_env: JWT_SECRET }], consumer_claim: client, required_claims: [tenant] }
consumers:
  - id: alice
    credentials: { api_keys: [{ id: k_alice, hash: "${hashKey(KEY)}" }] }
routes: [{ id: r, paths: ['/*'], upstream: u, policies: [key] }]
${extra}`,
    { env: { JWT_SECRET: 'x'.repeat(32) } },
  );
  assert.ok(r.ok, JSON.stringify(r.ok ? null : r.issues));
  return r.compiled;
}

const CFG = config();

/** A config with a Basic user `bob` (the hash is never checked here: only the name is read). */
const BASIC_CFG = (() => {
  const r = loadConfigText(
    `version: 1
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
policies:
  key: { type: api-key, config: { in: [{ from: header, name: x-api-key }, { from: query, name: apikey }] } }
  basic: { type: basic-auth }
consumers:
  - id: alice
    credentials: { api_keys: [{ id: k_alice, hash: "${hashKey(KEY)}" }] }
  - id: bob
    credentials: { basic_auth: [{ username: bob, password_hash: "scrypt$16384$8$1$wTBW20vPO7QgDXGVvzE8Qw==$20TvCuVu/41PZzz37ANtx7vC7JQVFsy9I2HrEfnUWlE=" }] }
routes: [{ id: r, paths: ['/*'], upstream: u, policies: [key] }]
`,
    { env: {} },
  );
  assert.ok(r.ok, JSON.stringify(r.ok ? null : r.issues));
  return r.compiled;
})();

function source(over: Partial<ReplaySource> = {}): ReplaySource {
  return { config: CFG, headers: { host: 'api.example.com' }, query: '', peer: '203.0.113.5', ipSource: 'socket', identity: undefined, body: undefined, ...over };
}

void describe('replay record', () => {
  void test('every credential location is replaced; equal values share a number; API keys are named by id', () => {
    const rec = buildReplayRecord(
      source({
        headers: {
          host: 'api.example.com',
          authorization: `Bearer ${KEY}`,
          'x-api-key': KEY,
          'x-custom-key': OTHER,
          cookie: `session=abc123; xsrf=${CSRF}`,
          'x-xsrf': CSRF,
          accept: 'application/json',
          'x-multi': ['a', 'b'],
        },
        query: `page=2&sig=${KEY}&api_key=${encodeURIComponent(OTHER)}&q=a+b%20c`,
      }),
    );
    assert.ok(rec !== null);
    const h = rec.headers;
    assert.equal(h.authorization, 'Bearer [redacted#1 key=k_alice]');
    assert.equal(h['x-api-key'], '[redacted#1 key=k_alice]');
    assert.equal(h['x-custom-key'], '[redacted#2]');
    // Cookie names stay; the CSRF cookie and its header repeat one value, so they share a number.
    assert.equal(h.cookie, 'session=[redacted#3]; xsrf=[redacted#4]');
    assert.equal(h['x-xsrf'], '[redacted#4]');
    assert.equal(h.accept, 'application/json');
    assert.deepEqual(h['x-multi'], ['a', 'b']);
    // Other parameters stay byte for byte; secret ones decode to their placeholder.
    const q = new URLSearchParams(rec.query);
    assert.equal(q.get('sig'), '[redacted#1 key=k_alice]');
    assert.equal(q.get('api_key'), '[redacted#2]');
    assert.ok(rec.query.startsWith('page=2&'));
    assert.ok(rec.query.endsWith('&q=a+b%20c'));
    const text = JSON.stringify(rec);
    for (const secret of [KEY, OTHER, CSRF, 'abc123']) assert.ok(!text.includes(secret), secret);
  });

  void test('an API-key identity names the single candidate value without a second lookup; with several, each is looked up', () => {
    const identity: Identity = { consumer: 'alice', credentialId: 'k_alice', credentialType: 'api-key', scopes: new Set() };
    // The value the api-key policy accepted is the only candidate: it is that key.
    const single = buildReplayRecord(source({ identity, headers: { 'x-api-key': KEY } }));
    assert.equal(single?.headers['x-api-key'], '[redacted#1 key=k_alice]');
    // Two different candidates: which one the policy accepted is not known here, so both are looked up.
    const two = buildReplayRecord(source({ identity, headers: { 'x-api-key': KEY, authorization: `Bearer ${OTHER}` } }));
    assert.equal(two?.headers['x-api-key'], '[redacted#1 key=k_alice]');
    assert.equal(two?.headers.authorization, 'Bearer [redacted#2]');
    const same = buildReplayRecord(source({ identity, headers: { 'x-api-key': KEY, authorization: `Bearer ${KEY}` }, query: `sig=${KEY}` }));
    assert.equal(same?.headers.authorization, 'Bearer [redacted#1 key=k_alice]');
  });

  void test('Authorization keeps a known scheme and a configured Basic user name, never the password or an unknown first word', () => {
    const basic = (value: string): string => String(buildReplayRecord(source({ config: BASIC_CFG, headers: { authorization: value } }))?.headers.authorization);
    const ok = basic(`Basic ${Buffer.from(`bob:${PASSWORD}`).toString('base64')}`);
    assert.equal(ok, 'Basic [redacted#1 user=bob]');
    assert.deepEqual(authorizationPlaceholder(ok), { scheme: 'Basic', placeholder: { n: 1, user: 'bob' } });
    assert.equal(basic('Basic !!!'), 'Basic [redacted#1 malformed=not%20base64]');
    assert.equal(basic(`Basic ${Buffer.from('nocolon').toString('base64')}`), 'Basic [redacted#1 malformed=no%20colon%20between%20user%20name%20and%20password]');
    // A first word that is no registered scheme may itself be a secret.
    assert.equal(basic('supersecretword rest'), `${OTHER_SCHEME} [redacted#1]`);
    assert.equal(basic('loneSecretValue'), '[redacted#1]');
    assert.equal(basic('Digest username="x", response="y"'), 'Digest [redacted#1]');
    assert.ok(!ok.includes(PASSWORD));
  });

  void test('identity and the claims policies read are kept; other claims by name only', () => {
    const identity: Identity = {
      consumer: 'svc-a',
      credentialId: 'jti-1',
      credentialType: 'jwt',
      scopes: new Set(['a']),
      claims: { sub: 'u1', client: 'svc-a', tenant: 't9', aud: 'api', email: 'someone@example.com', exp: 1 },
    };
    const rec = buildReplayRecord(source({ identity }));
    assert.deepEqual(rec?.identity, { consumer: 'svc-a', credentialType: 'jwt', credentialId: 'jti-1' });
    // client (consumer_claim) and tenant (required_claims) are named by the config; email is not.
    assert.deepEqual(rec?.claims, { sub: 'u1', client: 'svc-a', tenant: 't9', aud: 'api', exp: 1 });
    assert.deepEqual(rec?.otherClaims, ['email']);
    assert.equal(buildReplayRecord(source())?.claims, null);
  });

  void test('bodies: none by default; with replay_body_bytes, the first N bytes and the full length', () => {
    const body = Buffer.from('{"name":"a long enough body"}');
    assert.equal(buildReplayRecord(source({ body }))?.body, undefined);
    const cfg = config('call_log: { replay_body_bytes: 8 }');
    const rec = buildReplayRecord(source({ config: cfg, body }));
    assert.deepEqual(rec?.body, { base64: body.subarray(0, 8).toString('base64'), bytes: body.length });
  });

  void test('call_log.replay false keeps no record', () => {
    assert.equal(buildReplayRecord(source({ config: config('call_log: { replay: false }') })), null);
  });

  // The gateway decides the client IP once, on arrival (src/proxy/forwarded.ts); the record keeps
  // its answer and the peer, so a replay under other trusted_proxies can decide again.
  void test('the peer and where the client IP came from', () => {
    const direct = buildReplayRecord(source({ headers: { 'x-forwarded-for': '198.51.100.7' } }));
    assert.deepEqual([direct?.peer, direct?.ipSource], ['203.0.113.5', 'socket']);
    const proxied = buildReplayRecord(source({ peer: '10.1.2.3', ipSource: 'x-forwarded-for', headers: { 'x-forwarded-for': '198.51.100.7' } }));
    assert.deepEqual([proxied?.peer, proxied?.ipSource, proxied?.headers['x-forwarded-for']], ['10.1.2.3', 'x-forwarded-for', '198.51.100.7']);
  });

  // (a) Query names are case-sensitive (RFC 3986), but redaction errs on the safe side.
  void test('a secret query parameter is redacted whatever the case of its name, and named by key id', () => {
    for (const name of ['apiKey', 'APIKEY', 'Sig', 'API_KEY', 'Access_Token']) {
      const cfg = name === 'Sig' ? CFG : BASIC_CFG;
      const rec = buildReplayRecord(source({ config: cfg, query: `page=1&${name}=${encodeURIComponent(KEY)}` }));
      assert.ok(rec !== null);
      assert.ok(!JSON.stringify(rec).includes(KEY), name);
      assert.equal(new URLSearchParams(rec.query).get(name), '[redacted#1 key=k_alice]', name);
      assert.ok(rec.query.startsWith('page=1&'), name);
    }
  });

  // (b) A configured key outside the credential locations, and values shaped like credentials.
  void test('a header or query value that is a configured key is redacted wherever it is, and named by key id', () => {
    const identity: Identity = { consumer: 'alice', credentialId: 'k_alice', credentialType: 'api-key', scopes: new Set() };
    const rec = buildReplayRecord(
      source({
        identity,
        headers: { host: 'api.example.com', 'x-goog-api-key': KEY, 'private-token': KEY, 'x-whatever': ` ${KEY} `, accept: 'application/json' },
        query: `q=shoes&callback_key=${KEY}`,
      }),
    );
    assert.ok(rec !== null);
    const text = JSON.stringify(rec);
    assert.ok(!text.includes(KEY));
    assert.equal(rec.headers['x-goog-api-key'], '[redacted#1 key=k_alice]');
    assert.equal(rec.headers['private-token'], '[redacted#1 key=k_alice]');
    assert.equal(rec.headers['x-whatever'], '[redacted#1 key=k_alice]');
    assert.equal(new URLSearchParams(rec.query).get('callback_key'), '[redacted#1 key=k_alice]');
    assert.equal(rec.headers.accept, 'application/json');
    assert.ok(rec.query.startsWith('q=shoes&'));
  });

  void test('the key lookup outside the credential locations reuses the request digest memo', () => {
    const digests = new Digests();
    digests.of(KEY); // what the api-key policy hashed
    const rec = buildReplayRecord(source({ digests, headers: { 'x-goog-api-key': KEY, 'user-agent': 'curl/8.5.0', 'x-request-id': 'abc' } }));
    assert.equal(rec?.headers['x-goog-api-key'], '[redacted#1 key=k_alice]');
    assert.equal(digests.hashed, 1, 'the key is not hashed again, short ordinary values are not hashed at all');
  });

  void test('credential-shaped values in other headers and parameters are redacted; ordinary values stay', () => {
    const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const jwt = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'user-42', exp: 1900000000 })}.c2lnbmF0dXJlLXZhbHVlLXh5eg`;
    const gh = `ghp_${'a1B2c3D4e5'.repeat(4)}`;
    const random = 'Zq8mN3vR7tK1pW5xL9sD2fH6';
    const ua = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
    const rec = buildReplayRecord(
      source({
        headers: {
          'x-session-jwt': jwt,
          'x-upstream-token': gh,
          'private-token': random,
          'x-request-id': '9b2f6c1e-4d3a-4f8e-a1b2-c3d4e5f60718',
          referer: `https://app.example.com/cb?access=${gh}&page=2`,
          'user-agent': ua,
          'x-tenant': 'acme-corp',
        },
        query: `id_token=${jwt}&signature=${random}&color=blue&trace=9b2f6c1e4d3a4f8ea1b2c3d4e5f60718`,
      }),
    );
    assert.ok(rec !== null);
    const text = JSON.stringify(rec);
    for (const secret of [jwt, gh, random]) assert.ok(!text.includes(secret), secret);
    assert.match(String(rec.headers['x-session-jwt']), /^\[redacted#\d+\]$/);
    assert.match(String(rec.headers['x-upstream-token']), /^\[redacted#\d+\]$/);
    assert.match(String(rec.headers['private-token']), /^\[redacted#\d+\]$/);
    // The credential inside a longer value is replaced in place, the rest kept.
    assert.match(String(rec.headers.referer), /^https:\/\/app\.example\.com\/cb\?access=\[redacted#\d+\]&page=2$/);
    // Equal values share a number wherever they were.
    assert.equal(new URLSearchParams(rec.query).get('id_token'), rec.headers['x-session-jwt']);
    assert.equal(new URLSearchParams(rec.query).get('signature'), rec.headers['private-token']);
    // Not secret: ids under names that do not say secret, text, words.
    assert.equal(rec.headers['x-request-id'], '9b2f6c1e-4d3a-4f8e-a1b2-c3d4e5f60718');
    assert.equal(rec.headers['user-agent'], ua);
    assert.equal(rec.headers['x-tenant'], 'acme-corp');
    assert.equal(new URLSearchParams(rec.query).get('color'), 'blue');
    assert.equal(new URLSearchParams(rec.query).get('trace'), '9b2f6c1e4d3a4f8ea1b2c3d4e5f60718');
  });

  // (c) The Stripe scheme: the API key as the Basic user name, no password.
  void test('a Basic user name is kept only when it is a configured user; an API key sent as the user name is named by key id', () => {
    const basic = (user: string, password: string): string =>
      String(buildReplayRecord(source({ config: BASIC_CFG, headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } }))?.headers.authorization);
    assert.equal(basic('bob', PASSWORD), 'Basic [redacted#1 user=bob]');
    const stripe = basic(KEY, '');
    assert.equal(stripe, 'Basic [redacted#1 key=k_alice]');
    assert.ok(!stripe.includes(KEY));
    const unknown = basic(OTHER, '');
    assert.equal(unknown, 'Basic [redacted#1]');
    assert.ok(!unknown.includes(OTHER));
    assert.equal(basic('mallory', PASSWORD), 'Basic [redacted#1]');
    // The placeholder still reads as a Basic credential with no user name.
    assert.deepEqual(authorizationPlaceholder(stripe), { scheme: 'Basic', placeholder: { n: 1, key: 'k_alice' } });
  });

  void test('placeholders round-trip annotations with any characters', () => {
    const p = { n: 12, key: 'k a]b', user: 'ü ser=1', malformed: 'x' };
    assert.deepEqual(parsePlaceholder(formatPlaceholder(p)), p);
    assert.equal(parsePlaceholder('[redacted#x]'), undefined);
    assert.equal(parsePlaceholder('plain value'), undefined);
  });
});
