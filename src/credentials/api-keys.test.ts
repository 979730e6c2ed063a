import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ApiKeySpec, ConfigIssue, ConsumerSpec } from '../pipeline/types.ts';
import { hashKey, KeyIndex, sha256 } from './api-keys.ts';

const K1 = 'pp_unit_one_0123456789abcdef';
const K2 = 'pp_unit_two_fedcba9876543210';

function consumer(id: string, keys: ApiKeySpec[]): ConsumerSpec {
  return { id, credentials: { api_keys: keys } };
}

interface IssueCase {
  readonly name: string;
  readonly consumers: readonly ConsumerSpec[];
  readonly env?: Record<string, string | undefined>;
  readonly issues: readonly { path: string; message: RegExp }[];
}

const ISSUE_CASES: readonly IssueCase[] = [
  {
    name: 'duplicate key id across consumers',
    consumers: [consumer('acme', [{ id: 'k1', hash: hashKey(K1) }]), consumer('globex', [{ id: 'k1', hash: hashKey(K2) }])],
    issues: [{ path: 'consumers[1].credentials.api_keys[0].id', message: /"k1".*already used by consumer "acme"/ }],
  },
  {
    name: 'duplicate key id inside one consumer',
    consumers: [consumer('acme', [{ id: 'k1', hash: hashKey(K1) }, { id: 'k1', hash: hashKey(K2) }])],
    issues: [{ path: 'consumers[0].credentials.api_keys[1].id', message: /"k1".*already used by consumer "acme"/ }],
  },
  {
    name: 'the same key configured twice under two ids',
    consumers: [consumer('acme', [{ id: 'k1', hash: hashKey(K1) }]), consumer('globex', [{ id: 'k2', key_env: 'K' }])],
    env: { K: K1 },
    issues: [{ path: 'consumers[1].credentials.api_keys[0]', message: /same key.*"k1"/ }],
  },
  {
    name: 'hash and key_env both set',
    consumers: [consumer('acme', [{ id: 'k1', hash: hashKey(K1), key_env: 'K' }])],
    env: { K: K1 },
    issues: [{ path: 'consumers[0].credentials.api_keys[0]', message: /not both/ }],
  },
  {
    name: 'key_env names an unset variable',
    consumers: [consumer('acme', [{ id: 'k1', key_env: 'PINPOINT_TEST_UNSET' }])],
    issues: [{ path: 'consumers[0].credentials.api_keys[0].key_env', message: /PINPOINT_TEST_UNSET/ }],
  },
  {
    name: 'key_env names an empty variable',
    consumers: [consumer('acme', [{ id: 'k1', key_env: 'EMPTY' }])],
    env: { EMPTY: '' },
    issues: [{ path: 'consumers[0].credentials.api_keys[0].key_env', message: /EMPTY/ }],
  },
  {
    name: 'neither hash nor key_env',
    consumers: [consumer('acme', [{ id: 'k1' }])],
    issues: [{ path: 'consumers[0].credentials.api_keys[0]', message: /hash.*key_env/ }],
  },
  {
    name: 'issues in several places are all reported, each with its own path',
    consumers: [
      consumer('acme', [{ id: 'k1', hash: hashKey(K1) }, { id: 'k2' }]),
      consumer('globex', [{ id: 'k3', key_env: 'NOPE' }, { id: 'k1', hash: hashKey(K2) }]),
    ],
    issues: [
      { path: 'consumers[0].credentials.api_keys[1]', message: /hash.*key_env/ },
      { path: 'consumers[1].credentials.api_keys[0].key_env', message: /NOPE/ },
      { path: 'consumers[1].credentials.api_keys[1].id', message: /already used/ },
    ],
  },
];

function assertIssues(actual: readonly ConfigIssue[], expected: readonly { path: string; message: RegExp }[]): void {
  assert.deepEqual(
    actual.map((i) => i.path),
    expected.map((e) => e.path),
    `issues: ${JSON.stringify(actual)}`,
  );
  expected.forEach((e, i) => assert.match(actual[i]?.message ?? '', e.message));
}

void describe('KeyIndex.build issues', () => {
  for (const c of ISSUE_CASES) {
    void test(c.name, () => {
      const { issues } = KeyIndex.build(c.consumers, c.env ?? {});
      assertIssues(issues, c.issues);
    });
  }

  void test('no consumers, or consumers without credentials: no issues', () => {
    assert.deepEqual(KeyIndex.build([], {}).issues, []);
    assert.deepEqual(KeyIndex.build([{ id: 'a' }, { id: 'b', credentials: {} }], {}).issues, []);
  });

  void test('valid keys stay usable when a sibling key has an issue', () => {
    const { index, issues } = KeyIndex.build([consumer('acme', [{ id: 'k1', hash: hashKey(K1) }, { id: 'k2' }])], {});
    assert.equal(issues.length, 1);
    assert.equal(index.find(K1)?.id, 'k1');
  });

  void test('an expires_at the schema accepts but Date.parse cannot read fails closed', () => {
    // RFC 3339 allows a leap second (ajv-formats' date-time accepts it); Date.parse returns NaN for it,
    // and NaN compares false with every `now`, so such a key would never expire.
    const { index, issues } = KeyIndex.build([consumer('acme', [{ id: 'k1', hash: hashKey(K1), expires_at: '2016-12-31T23:59:60Z' }])], {});
    const rec = index.find(K1);
    const flagged = issues.some((i) => i.path === 'consumers[0].credentials.api_keys[0].expires_at');
    assert.ok(flagged || (rec !== undefined && Number.isFinite(rec.expiresAt)), `expiresAt=${String(rec?.expiresAt)}, issues=${JSON.stringify(issues)}`);
  });
});

void describe('hashKey', () => {
  void test('format is sha256:<64 lower-case hex>', () => {
    for (const k of ['', 'a', K1, 'ключ-🔑']) assert.match(hashKey(k), /^sha256:[0-9a-f]{64}$/);
  });

  void test('known vectors (FIPS 180-2 "abc"; the README demo key)', () => {
    assert.equal(hashKey('abc'), 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.equal(hashKey('pp_demo_read_7f3a9c2e41b8d605'), 'sha256:f4b3c05565dc4c462bcd74f78997507cd33cd7de2c955544c6218483e77ad66f');
  });

  void test('agrees with sha256()', () => {
    assert.equal(hashKey(K1), `sha256:${sha256(K1).toString('hex')}`);
  });
});

void describe('KeyIndex.find', () => {
  const { index, issues } = KeyIndex.build(
    [
      consumer('acme', [{ id: 'k1', hash: hashKey(K1), scopes: ['a', 'b'], expires_at: '2030-01-01T00:00:00Z' }]),
      consumer('globex', [{ id: 'k2', key_env: 'K2', revoked: true }]),
    ],
    { K2 },
  );

  void test('builds without issues', () => assert.deepEqual(issues, []));

  void test('a configured key (by hash) is found with its record', () => {
    const r = index.find(K1);
    assert.ok(r !== undefined);
    assert.equal(r.id, 'k1');
    assert.equal(r.consumer, 'acme');
    assert.deepEqual([...r.scopes], ['a', 'b']);
    assert.equal(r.expiresAt, Date.parse('2030-01-01T00:00:00Z'));
    assert.equal(r.revoked, false);
    assert.deepEqual(r.hash, sha256(K1));
  });

  void test('a key from key_env is found; only its hash is kept', () => {
    const r = index.find(K2);
    assert.ok(r !== undefined);
    assert.equal(r.id, 'k2');
    assert.equal(r.consumer, 'globex');
    assert.equal(r.revoked, true);
    assert.equal(r.expiresAt, null);
    assert.deepEqual([...r.scopes], []);
    assert.ok(!JSON.stringify(r).includes(K2));
  });

  const UNKNOWN = ['', ' ', K1.slice(0, -1), `${K1}x`, ` ${K1}`, `${K1} `, K1.toUpperCase(), hashKey(K1), sha256(K1).toString('hex'), 'x'.repeat(10_000), '\u0000'];
  for (const k of UNKNOWN) {
    void test(`unknown key → undefined (${JSON.stringify(k.length > 24 ? `${k.slice(0, 24)}…` : k)})`, () => {
      assert.equal(index.find(k), undefined);
    });
  }

  void test('unknown keys all give the same result', () => {
    const results = new Set(UNKNOWN.map((k) => index.find(k)));
    assert.deepEqual([...results], [undefined]);
  });
});
