/** `pinpoint monitor-report` over a real call log written by a running gateway. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import { send, startGateway, startUpstream } from '../helpers/harness.ts';

void test('groups would-be denials by policy and code, with routes, consumers and examples', async () => {
  const up = await startUpstream();
  const key = 'pp_mon_0001';
  const gw = await startGateway({
    version: 1,
    upstreams: { u: { targets: [{ url: up.url }] } },
    policies: {
      office: { type: 'ip-rules', mode: 'monitor', config: { allow: ['10.0.0.0/8'] } },
      key: { type: 'api-key', mode: 'monitor', config: {} },
    },
    consumers: [{ id: 'shop', credentials: { api_keys: [{ id: 'k1', hash: `sha256:${createHash('sha256').update(key).digest('hex')}` }] } }],
    routes: [
      { id: 'a', paths: ['/a'], upstream: 'u', policies: ['office', 'key'] },
      { id: 'b', paths: ['/b'], upstream: 'u', policies: ['office'] },
    ],
  });
  try {
    const ids: string[] = [];
    for (const [p, h] of [['/a', {}], ['/a', { 'x-api-key': key }], ['/b', {}]] as const) {
      const r = await send(`${gw.url}${p}`, { headers: h });
      assert.equal(r.status, 200); // monitor mode: every request goes on
      ids.push(String(r.headers['x-request-id']));
    }
    await gw.waitForLog({}, 3);
    const bin = path.resolve(import.meta.dirname, '../../bin/pinpoint.js');
    const out = spawnSync(process.execPath, [bin, 'monitor-report', '--db', gw.dbFile, '--json'], { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    const report = JSON.parse(out.stdout) as { would_deny: number; groups: { policy: string; code: string; count: number; routes: Record<string, number>; consumers: Record<string, number> }[] };
    assert.equal(report.would_deny, 3);
    const byKey = Object.fromEntries(report.groups.map((g) => [`${g.policy} ${g.code}`, g]));
    assert.equal(byKey['office IP_NOT_ALLOWED']?.count, 3);
    assert.deepEqual(byKey['office IP_NOT_ALLOWED']?.routes, { a: 2, b: 1 });
    assert.equal(byKey['key AUTH_KEY_MISSING']?.count, 1);
    assert.deepEqual(byKey['key AUTH_KEY_MISSING']?.consumers, { '(anonymous)': 1 });
  } finally {
    await gw.close();
    await up.close();
  }
});
