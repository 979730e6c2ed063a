import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../config/load.ts';
import { lint, type LintCode } from './lint.ts';

const NOW = Date.parse('2026-11-22T00:00:00Z');
const HASH = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;

function findings(extra: string): { code: LintCode; path: string }[] {
  const r = loadConfigText(`version: 1
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
${extra}`);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return lint(r.compiled, { now: NOW, expiringDays: 14 }).map((f) => ({ code: f.code, path: f.path }));
}

void test('a clean config has no findings', () => {
  assert.deepEqual(findings('routes: [{ id: r, paths: [/], upstream: u }]'), []);
});

void test('keys expired and expiring soon', () => {
  const f = findings(`consumers:
  - id: c
    credentials:
      api_keys:
        - { id: old, hash: "${HASH(1)}", expires_at: "2026-11-01T00:00:00Z" }
        - { id: soon, hash: "${HASH(2)}", expires_at: "2026-11-30T00:00:00Z" }
        - { id: later, hash: "${HASH(3)}", expires_at: "2027-06-01T00:00:00Z" }
        - { id: gone, hash: "${HASH(4)}", expires_at: "2026-01-01T00:00:00Z", revoked: true }
routes: [{ id: r, paths: [/], upstream: u }]`);
  assert.deepEqual(f, [
    { code: 'LINT_KEY_EXPIRED', path: 'consumers[0].credentials.api_keys[0].expires_at' },
    { code: 'LINT_KEY_EXPIRING', path: 'consumers[0].credentials.api_keys[1].expires_at' },
  ]);
});

void test('a required scope no key has makes the route uncallable', () => {
  const f = findings(`policies:
  w: { type: api-key, config: { required_scopes: [orders:write, orders:wrte] } }
consumers: [{ id: c, credentials: { api_keys: [{ id: k, hash: "${HASH(5)}", scopes: [orders:write] }] } }]
routes: [{ id: r, paths: [/], upstream: u, policies: [w] }]`);
  assert.deepEqual(f, [{ code: 'LINT_SCOPE_UNGRANTED', path: 'policies.w.config.required_scopes[1]' }]);
});

void test('trusted_proxies that trust everyone', () => {
  assert.deepEqual(findings('trusted_proxies: ["0.0.0.0/0", "10.0.0.0/8", "::/0", "10.1.0.0/16"]\nroutes: [{ id: r, paths: [/], upstream: u }]').map((f) => f.path), [
    'trusted_proxies[0]',
    'trusted_proxies[1]',
    'trusted_proxies[2]',
  ]);
});

void test('a CORS origin the origin policy refuses, and a policy attached nowhere', () => {
  const f = findings(`policies:
  web: { type: cors, config: { allow_origins: ["https://app.example.com", "https://admin.example.com"] } }
  writes: { type: origin, config: { allowed_origins: ["https://app.example.com"] } }
  spare: { type: ip-rules, config: { deny: ["192.0.2.1"] } }
routes: [{ id: r, paths: [/], upstream: u, policies: [web, writes] }]`);
  assert.deepEqual(f, [
    { code: 'LINT_CORS_ORIGIN_BLOCKED', path: 'policies.web.config.allow_origins' },
    { code: 'LINT_POLICY_UNUSED', path: 'policies.spare' },
  ]);
});
