/**
 * `basic-auth` in a replay (`pinpoint impact`): the password was not recorded, the user name was.
 * No scrypt check runs; whether the password was right comes from the replay context.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { KeyIndex } from '../../credentials/api-keys.ts';
import { hashPassword } from '../../credentials/password.ts';
import { context } from '../../pipeline/testing.ts';
import type { CompiledPolicy, Decision, ReplayContext, RequestFacts } from '../../pipeline/types.ts';
import { compileBasicAuth } from './index.ts';
import { BasicAuthSchema, type BasicAuthConfig } from './schema.ts';

const HASH = hashPassword('pw');
let verifications = 0;
const policy: CompiledPolicy = compileBasicAuth(
  Value.Default(BasicAuthSchema, {}) as BasicAuthConfig,
  { id: 'basic', mode: 'enforce' },
  { consumers: [{ id: 'bob-co', credentials: { basic_auth: [{ username: 'bob', password_hash: HASH }] } }], apiKeys: KeyIndex.build([], {}).index, env: {}, path: 'policies.basic.config', baseDir: '.' },
  {
    verify: () => {
      verifications++;
      return Promise.resolve(true);
    },
  },
);

function replay(correct: boolean | string): ReplayContext {
  const stop = (reason: string): never => {
    throw new Error(`unreplayable: ${reason}`);
  };
  return {
    identity: null,
    claims: null,
    apiKey: () => stop('not a key'),
    basicCredentials: (v) => {
      const m = /^Basic \[redacted#\d+ (user|malformed)=([^\]]*)\]$/.exec(v);
      if (m === null) return undefined;
      return m[1] === 'user' ? { username: decodeURIComponent(m[2] as string) } : { malformed: decodeURIComponent(m[2] as string) };
    },
    basicPasswordCorrect: () => (typeof correct === 'string' ? stop(correct) : correct),
    verifiedToken: () => stop('not a token'),
    unreplayable: stop,
  };
}

async function decide(authorization: string, r: ReplayContext): Promise<Decision> {
  const facts: RequestFacts = { method: 'GET', path: '/', rawQuery: '', host: 'h', headers: { authorization }, clientIp: '192.0.2.1', clientIpSource: 'socket', params: {}, contentLength: undefined, now: 0 };
  return policy.decide(context({ facts, dryRun: true, replay: r }));
}

const code = (d: Decision): string => (d.outcome === 'deny' ? d.code : d.outcome);

void describe('basic-auth replay', () => {
  void test('a user still configured: the recorded verdict on the password stands; no scrypt runs', async () => {
    const ok = await decide('Basic [redacted#1 user=bob]', replay(true));
    assert.equal(code(ok), 'allow');
    assert.equal(ok.outcome === 'allow' ? ok.identity?.consumer : null, 'bob-co');
    const wrong = await decide('Basic [redacted#1 user=bob]', replay(false));
    assert.equal(code(wrong), 'BASIC_AUTH_INVALID');
    assert.equal(wrong.outcome === 'deny' ? wrong.internal?.reason : null, 'wrong_password');
    assert.equal(verifications, 0);
  });

  void test('a user no longer configured is refused whatever the password was', async () => {
    const d = await decide('Basic [redacted#1 user=alice]', replay('never asked'));
    assert.equal(code(d), 'BASIC_AUTH_INVALID');
    assert.equal(d.outcome === 'deny' ? d.internal?.reason : null, 'unknown_user');
  });

  void test('unreadable credentials, another scheme, and a password the record cannot judge', async () => {
    assert.equal(code(await decide('Basic [redacted#1 malformed=not%20base64]', replay(true))), 'BASIC_AUTH_MALFORMED');
    assert.equal(code(await decide('Bearer [redacted#1]', replay(true))), 'BASIC_AUTH_WRONG_SCHEME');
    await assert.rejects(() => decide('Basic [redacted#1 user=bob]', replay('password changed')), /unreplayable: password changed/);
  });
});
