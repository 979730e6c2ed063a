import { test } from 'node:test';
import assert from 'node:assert/strict';
import client from 'prom-client';
import { DURATION_BUCKETS, Metrics } from './metrics.ts';

function series(text: string, prefix: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

void test('request durations: cumulative le buckets (upper bound inclusive), sum and count per route', async () => {
  const m = new Metrics();
  m.observe('orders', 200, null, null, null, 1); // exactly 0.001 s: in le="0.001"
  m.observe('orders', 200, null, null, null, 3);
  m.observe('orders', 502, 'gateway', 'UPSTREAM_CONNECT_REFUSED', 'upstream:backend', 20_000); // past 10 s: +Inf only
  m.observe('users', 200, null, null, null, 0.2);
  const s = series(await m.registry.metrics(), 'pinpoint_request_duration_seconds');
  assert.equal(s.get('pinpoint_request_duration_seconds_bucket{le="0.001",route="orders"}'), 1);
  assert.equal(s.get('pinpoint_request_duration_seconds_bucket{le="0.0025",route="orders"}'), 1);
  assert.equal(s.get('pinpoint_request_duration_seconds_bucket{le="0.005",route="orders"}'), 2);
  assert.equal(s.get('pinpoint_request_duration_seconds_bucket{le="10",route="orders"}'), 2);
  assert.equal(s.get('pinpoint_request_duration_seconds_bucket{le="+Inf",route="orders"}'), 3);
  assert.equal(s.get('pinpoint_request_duration_seconds_count{route="orders"}'), 3);
  assert.ok(Math.abs((s.get('pinpoint_request_duration_seconds_sum{route="orders"}') ?? 0) - 20.004) < 1e-9);
  assert.equal(s.get('pinpoint_request_duration_seconds_bucket{le="0.001",route="users"}'), 1);
  assert.equal([...s.keys()].filter((k) => k.includes('route="users"') && k.includes('_bucket')).length, DURATION_BUCKETS.length + 1);
});

void test('request durations aggregate across workers as prom-client histograms do (summed per label set)', async () => {
  const a = new Metrics();
  const b = new Metrics();
  a.observe('orders', 200, null, null, null, 3);
  b.observe('orders', 200, null, null, null, 30);
  const merged = client.AggregatorRegistry.aggregate([await a.registry.getMetricsAsJSON(), await b.registry.getMetricsAsJSON()]);
  const s = series(await merged.metrics(), 'pinpoint_request_duration_seconds');
  assert.equal(s.get('pinpoint_request_duration_seconds_bucket{le="0.005",route="orders"}'), 1);
  assert.equal(s.get('pinpoint_request_duration_seconds_bucket{le="0.05",route="orders"}'), 2);
  assert.equal(s.get('pinpoint_request_duration_seconds_count{route="orders"}'), 2);
});
