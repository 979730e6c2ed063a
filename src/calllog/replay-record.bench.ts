/**
 * Micro-benchmark of the replay record's cost per logged request:
 *   node src/calllog/replay-record.bench.ts
 * Builds the record of a typical API request (API key, forwarded client, ten headers) and
 * serialises it, as the gateway does when the response closes and when the batch is written.
 */
import { performance } from 'node:perf_hooks';
import { hashKey } from '../credentials/api-keys.ts';
import { loadConfigText } from '../config/load.ts';
import type { Identity } from '../pipeline/types.ts';
import { buildReplayRecord, type ReplaySource } from './replay-record.ts';

const KEY = 'pp_bench_key_0123456789abcdef0123';
const r = loadConfigText(`version: 1
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
trusted_proxies: ["10.0.0.0/8"]
policies: { key: { type: api-key } }
consumers: [{ id: alice, credentials: { api_keys: [{ id: k_alice, hash: "${hashKey(KEY)}", scopes: [orders:read] }] } }]
routes: [{ id: r, paths: ['/*'], upstream: u, policies: [key] }]
`);
if (!r.ok) throw new Error(JSON.stringify(r.issues));
const identity: Identity = { consumer: 'alice', credentialId: 'k_alice', credentialType: 'api-key', scopes: new Set(['orders:read']) };

function source(withKey: boolean): ReplaySource {
  return {
    config: r.ok ? r.compiled : (undefined as never),
    headers: {
      host: 'api.example.com',
      'user-agent': 'curl/8.5.0',
      accept: 'application/json',
      'accept-encoding': 'gzip, br',
      'content-type': 'application/json',
      'x-forwarded-for': '198.51.100.7',
      'x-forwarded-proto': 'https',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      connection: 'keep-alive',
      ...(withKey ? { 'x-api-key': KEY } : {}),
    },
    query: 'limit=20&cursor=abc',
    peer: '10.0.0.5',
    ipSource: 'x-forwarded-for',
    identity: withKey ? identity : undefined,
    body: undefined,
  };
}

function measure(label: string, fn: () => unknown, n = 200_000): void {
  for (let i = 0; i < 20_000; i++) fn();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  const us = ((performance.now() - t0) * 1000) / n;
  process.stdout.write(`${label.padEnd(48)} ${us.toFixed(2)} µs/request\n`);
}

const withKey = source(true);
const anonymous = source(false);
measure('build (API key, 10 headers, trusted proxy)', () => buildReplayRecord(withKey));
measure('build (no credential, 9 headers)', () => buildReplayRecord(anonymous));
const rec = buildReplayRecord(withKey);
measure('JSON.stringify at batch write', () => JSON.stringify(rec));
process.stdout.write(`record size: ${JSON.stringify(rec).length} bytes\n`);
