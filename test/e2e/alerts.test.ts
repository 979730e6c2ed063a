/** Denial spike alerts delivered to a real local webhook receiver. */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { send, startGateway, startUpstream } from '../helpers/harness.ts';

void test('a burst of denials is POSTed to the webhook with the code, route and example request ids', async () => {
  const received: Record<string, unknown>[] = [];
  let gotOne!: () => void;
  const arrived = new Promise<void>((r) => (gotOne = r));
  const hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      res.end();
      gotOne();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  const up = await startUpstream();
  const gw = await startGateway({
    version: 1,
    alerts: { denial_spikes: { enabled: true, window: '1s', factor: 3, min_count: 5, cooldown: '1m', webhook_url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alerts` } },
    upstreams: { u: { targets: [{ url: up.url }] } },
    policies: { key: { type: 'api-key', config: {} } },
    routes: [{ id: 'orders', paths: ['/orders'], upstream: 'u', policies: ['key'] }],
  });
  try {
    const ids: string[] = [];
    // 12 denials: even split across two windows, one side still reaches min_count 5.
    for (let i = 0; i < 12; i++) ids.push(String((await send(`${gw.url}/orders`)).headers['x-request-id']));
    await Promise.race([arrived, new Promise((_r, reject) => setTimeout(() => reject(new Error('no alert within 4 s')), 4000))]);
    const alert = received[0] as { type: string; code: string; route: string; count: number; examples: string[] };
    assert.deepEqual([alert.type, alert.code, alert.route], ['pinpoint.denial_spike', 'AUTH_KEY_MISSING', 'orders']);
    assert.ok(alert.count >= 5 && alert.count <= 12, String(alert.count));
    for (const e of alert.examples) assert.ok(ids.includes(e), e);
  } finally {
    await gw.close();
    await up.close();
    hook.close();
  }
});
