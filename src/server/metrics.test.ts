import { test } from 'node:test';
import assert from 'node:assert/strict';
import client from 'prom-client';
import { AI_MODEL_SERIES_MAX, DURATION_BUCKETS, Metrics, OTHER_MODEL } from './metrics.ts';

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

void test('AI usage: tokens by direction, cost in USD and time to first token per provider and model', async () => {
  const m = new Metrics();
  m.observeAi('openai', 'gpt-4o', 10, 5, 150, 40);
  m.observeAi('openai', 'gpt-4o', 3, 2, 0, null); // no cost, not streamed
  m.observeAi('anthropic', 'claude', 7, 1, 0, 2_000);
  const text = await m.registry.metrics();
  const tokens = series(text, 'pinpoint_ai_tokens_total');
  assert.equal(tokens.get('pinpoint_ai_tokens_total{provider="openai",model="gpt-4o",direction="prompt"}'), 13);
  assert.equal(tokens.get('pinpoint_ai_tokens_total{provider="openai",model="gpt-4o",direction="completion"}'), 7);
  assert.equal(tokens.get('pinpoint_ai_tokens_total{provider="anthropic",model="claude",direction="prompt"}'), 7);
  const cost = series(text, 'pinpoint_ai_cost_usd_total');
  assert.ok(Math.abs((cost.get('pinpoint_ai_cost_usd_total{provider="openai",model="gpt-4o"}') ?? 0) - 0.00015) < 1e-12);
  assert.equal(cost.has('pinpoint_ai_cost_usd_total{provider="anthropic",model="claude"}'), false);
  const ttft = series(text, 'pinpoint_ai_time_to_first_token_seconds');
  assert.equal(ttft.get('pinpoint_ai_time_to_first_token_seconds_bucket{le="0.05",provider="openai",model="gpt-4o"}'), 1);
  assert.equal(ttft.get('pinpoint_ai_time_to_first_token_seconds_count{provider="openai",model="gpt-4o"}'), 1);
  assert.equal(ttft.get('pinpoint_ai_time_to_first_token_seconds_bucket{le="1",provider="anthropic",model="claude"}'), 0);
  assert.equal(ttft.get('pinpoint_ai_time_to_first_token_seconds_bucket{le="2",provider="anthropic",model="claude"}'), 1);
  // Scraped twice, the counters are not doubled (collect() rebuilds them from the maps).
  const again = series(await m.registry.metrics(), 'pinpoint_ai_tokens_total');
  assert.equal(again.get('pinpoint_ai_tokens_total{provider="openai",model="gpt-4o",direction="prompt"}'), 13);
});

void test('AI usage: past AI_MODEL_SERIES_MAX provider/model pairs, new models count under (other)', async () => {
  const m = new Metrics();
  for (let i = 0; i < AI_MODEL_SERIES_MAX; i++) m.observeAi('local', `model-${i}`, 1, 1, 0, null);
  m.observeAi('local', 'model-0', 2, 0, 0, null); // a known pair keeps its own series
  m.observeAi('local', 'one-more', 5, 0, 0, 10);
  m.observeAi('local', 'and-another', 7, 0, 0, null);
  const tokens = series(await m.registry.metrics(), 'pinpoint_ai_tokens_total');
  assert.equal(tokens.get('pinpoint_ai_tokens_total{provider="local",model="model-0",direction="prompt"}'), 3);
  assert.equal(tokens.get(`pinpoint_ai_tokens_total{provider="local",model="${OTHER_MODEL}",direction="prompt"}`), 12);
  assert.equal(tokens.has('pinpoint_ai_tokens_total{provider="local",model="one-more",direction="prompt"}'), false);
  const ttft = series(await m.registry.metrics(), 'pinpoint_ai_time_to_first_token_seconds');
  assert.equal(ttft.get(`pinpoint_ai_time_to_first_token_seconds_count{provider="local",model="${OTHER_MODEL}"}`), 1);
});

void test('call-log queue depth and written total are read from the writer at scrape time; zero without a writer', async () => {
  const m = new Metrics();
  assert.equal(series(await m.registry.metrics(), 'pinpoint_call_log_').get('pinpoint_call_log_written_total'), 0);
  let stats = { queued: 7, written: 40 };
  m.callLogStats = () => stats;
  let s = series(await m.registry.metrics(), 'pinpoint_call_log_');
  assert.equal(s.get('pinpoint_call_log_queued'), 7);
  assert.equal(s.get('pinpoint_call_log_written_total'), 40);
  stats = { queued: 0, written: 47 };
  s = series(await m.registry.metrics(), 'pinpoint_call_log_');
  assert.equal(s.get('pinpoint_call_log_queued'), 0);
  assert.equal(s.get('pinpoint_call_log_written_total'), 47, 'the total is copied, not added to');
});

void test('request counts: one series per route, status and layer, counted across routes and scrapes', async () => {
  const m = new Metrics();
  m.observe('orders', 200, null, null, null, 1);
  m.observe('orders', 200, null, null, null, 1);
  m.observe('orders', 403, 'gateway', 'RBAC_PERMISSION_MISSING', 'scope', 1);
  m.observe('orders', 403, null, null, null, 1); // the upstream's own 403
  m.observe('users', 200, null, null, null, 1);
  m.observe('users', 499, 'client', 'CLIENT_CLOSED_REQUEST', 'gateway', 1);
  for (let scrape = 0; scrape < 2; scrape++) {
    const s = series(await m.registry.metrics(), 'pinpoint_requests_total');
    assert.deepEqual(
      [...s.entries()].sort(),
      [
        ['pinpoint_requests_total{route="orders",status="200",layer="upstream"}', 2],
        ['pinpoint_requests_total{route="orders",status="403",layer="gateway"}', 1],
        ['pinpoint_requests_total{route="orders",status="403",layer="upstream"}', 1],
        ['pinpoint_requests_total{route="users",status="200",layer="upstream"}', 1],
        ['pinpoint_requests_total{route="users",status="499",layer="client"}', 1],
      ].sort(),
    );
  }
});
