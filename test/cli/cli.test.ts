/**
 * The `pinpoint` command as a user runs it: a real process, real files, real sockets.
 * Asserts exit codes and JSON output (docs/cli.md), never prose.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SqliteCallLogStore } from '../../src/calllog/sqlite.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/pinpoint.js');
const READ_KEY = 'pp_demo_read_7f3a9c2e41b8d605';
const READ_HASH = 'sha256:f4b3c05565dc4c462bcd74f78997507cd33cd7de2c955544c6218483e77ad66f';

function run(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function config(upstreamPort: number, db = 'calls.db'): string {
  return `version: 1
listen: { host: 127.0.0.1, port: 0 }
admin: { enabled: false }
errors: { mode: detailed }
call_log: { path: ${db}, flush_interval_ms: 20 }
upstreams:
  up: { targets: [{ url: "http://127.0.0.1:${upstreamPort}" }] }
policies:
  write-key:
    type: api-key
    config: { required_scopes: [orders:write] }
consumers:
  - id: reader
    credentials: { api_keys: [{ id: k_read, hash: "${READ_HASH}", scopes: [orders:read] }] }
routes:
  - { id: create, paths: [/orders], methods: [POST], upstream: up, policies: [write-key] }
`;
}

interface Started {
  proc: ChildProcess;
  port: number;
  lines: Record<string, unknown>[];
}

/** Starts `pinpoint start` and resolves once it logs that it listens (JSON log lines on stdout). */
function start(args: string[]): Promise<Started> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    let buf = '';
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const o = JSON.parse(line) as Record<string, unknown>;
          lines.push(o);
          if (o.msg === 'pinpoint listening') resolve({ proc, port: o.port as number, lines });
        } catch {
          /* not a log line */
        }
      }
    });
    proc.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
}

function stop(s: Started): Promise<number | null> {
  return new Promise((resolve) => {
    s.proc.once('exit', (code) => resolve(code));
    s.proc.kill('SIGTERM');
  });
}

async function waitFor(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not met in time');
}

let upstream: Server;
let upstreamPort: number;
let dir: string;

before(async () => {
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  upstreamPort = (upstream.address() as AddressInfo).port;
  dir = mkdtempSync(path.join(tmpdir(), 'pinpoint-cli-'));
});

after(() => upstream.close());

void describe('pinpoint validate', () => {
  void test('a valid file: exit 0 and a JSON summary', () => {
    const f = path.join(dir, 'valid.yaml');
    writeFileSync(f, config(upstreamPort));
    const r = run(['validate', f, '--json']);
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout) as { valid: boolean; routes: number; policies: number };
    assert.deepEqual([out.valid, out.routes, out.policies], [true, 1, 1]);
  });

  void test('an invalid file: exit 1 and every issue with its path', () => {
    const f = path.join(dir, 'invalid.yaml');
    writeFileSync(f, config(upstreamPort).replace('upstream: up, policies: [write-key]', 'upstream: nope, policies: [write-key, ghost]').replace('port: 0 }', 'port: 0, hots: x }'));
    const r = run(['validate', f, '--json']);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout) as { valid: boolean; issues: { path: string }[] };
    assert.equal(out.valid, false);
    const paths = out.issues.map((i) => i.path);
    assert.ok(paths.includes('listen'), paths.join());
    assert.equal(r.stderr, '');
  });

  void test('cross-reference errors name route and policy paths', () => {
    const f = path.join(dir, 'refs.yaml');
    writeFileSync(f, config(upstreamPort).replace('upstream: up, policies: [write-key]', 'upstream: nope, policies: [write-key, ghost]'));
    const r = run(['validate', f, '--json']);
    assert.equal(r.code, 1);
    const paths = (JSON.parse(r.stdout) as { issues: { path: string }[] }).issues.map((i) => i.path).sort();
    assert.deepEqual(paths, ['routes[0].policies[1]', 'routes[0].upstream']);
  });

  void test('a missing file: exit 1', () => {
    assert.equal(run(['validate', path.join(dir, 'missing.yaml'), '--json']).code, 1);
  });

  void test('usage errors exit 2', () => {
    assert.equal(run(['frobnicate']).code, 2);
    assert.equal(run(['validate', '--no-such-flag']).code, 2);
    assert.equal(run(['explain']).code, 2);
  });
});

void describe('pinpoint hash-key and errors', () => {
  void test('hash-key prints the sha256 form, from argv or stdin', () => {
    assert.equal(run(['hash-key', READ_KEY]).stdout.trim(), READ_HASH);
    assert.equal(run(['hash-key'], `${READ_KEY}\n`).stdout.trim(), READ_HASH);
  });

  void test('hash-password reads standard input and prints a verifiable scrypt hash', async () => {
    const r = run(['hash-password', '--json'], 's3cret\n');
    assert.equal(r.code, 0, r.stderr);
    const hash = (JSON.parse(r.stdout) as { password_hash: string }).password_hash;
    const { verifyPassword } = await import('../../src/credentials/password.ts');
    assert.equal(verifyPassword('s3cret', hash), true);
    assert.equal(verifyPassword('s3cret\n', hash), false);
    assert.equal(run(['hash-password'], '').code, 2);
  });

  void test('errors --json lists the catalog', () => {
    const r = run(['errors', 'AUTH_KEY_SCOPE_MISSING', '--json']);
    assert.equal(r.code, 0);
    assert.equal((JSON.parse(r.stdout) as Record<string, { status: number }>).AUTH_KEY_SCOPE_MISSING?.status, 403);
    assert.equal(run(['errors', 'NOPE']).code, 1);
  });

  void test('version, --version and -V print the package and runtime versions', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const j = run(['version', '--json']);
    assert.equal(j.code, 0);
    assert.deepEqual(
      { ...(JSON.parse(j.stdout) as Record<string, unknown>), v8: undefined, sqlite: undefined },
      { pinpoint: pkg.version, node: process.versions.node, v8: undefined, sqlite: undefined },
    );
    for (const flag of ['--version', '-V']) {
      const r = run([flag]);
      assert.equal(r.code, 0);
      assert.ok(r.stdout.startsWith(`pinpoint ${pkg.version} (node ${process.versions.node}`), r.stdout);
    }
  });

  void test('the log of a config that does not compile in this shell is still found from its call_log.path', () => {
    const d = mkdtempSync(path.join(tmpdir(), 'pinpoint-cli-env-'));
    const f = path.join(d, 'gw.yaml');
    // The upstream credential comes from a variable the operator's shell does not have.
    const text = config(9).replace(
      'policies:\n',
      'policies:\n  inject:\n    type: request-transform\n    config: { set_headers: { authorization: "Bearer ${env:PINPOINT_TEST_UNSET_TOKEN}" } }\n',
    );
    writeFileSync(f, text);
    const store = new SqliteCallLogStore(path.join(d, 'calls.db'));
    store.close();
    const r = run(['logs', '--config', f, '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), []);
    // explain's hints for an id not in the log read the same settings (retention's default is 7d).
    const miss = run(['explain', '01900000-0000-7000-8000-000000000000', '--config', f, '--json']);
    assert.equal(miss.code, 1, miss.stdout + miss.stderr);
    const could = (JSON.parse(miss.stdout) as { could_have_answered: { cause: string; setting?: unknown }[] }).could_have_answered;
    assert.deepEqual(could.find((c) => c.cause === 'retention')?.setting, { retention: '7d' });
    assert.deepEqual(could.find((c) => c.cause === 'proxy_in_front')?.setting, { trusted_proxies: [] });
    // A file that is not even well-formed says why, naming the field.
    writeFileSync(f, text.replace('call_log: {', 'call_log: { pathh: x,'));
    const bad = run(['logs', '--config', f, '--json']);
    assert.equal(bad.code, 3);
    assert.match((JSON.parse(bad.stdout) as { error: string }).error, /call_log: unknown field "pathh"/);
    // explain still answers from the log named by --db; the settings it cannot read are null, not guessed.
    const unread = run(['explain', '01900000-0000-7000-8000-000000000000', '--config', f, '--db', path.join(d, 'calls.db'), '--json']);
    assert.equal(unread.code, 1, unread.stdout + unread.stderr);
    const hints = (JSON.parse(unread.stdout) as { could_have_answered: { cause: string; setting?: unknown }[] }).could_have_answered;
    assert.deepEqual(hints.filter((c) => c.setting !== undefined).map((c) => [c.cause, c.setting]), [['proxy_in_front', null], ['retention', null]]);
  });

  void test('--json: a command that cannot run still answers JSON on stdout, with its exit code', () => {
    const cases: { args: string[]; input?: string; code: number; command: string }[] = [
      { args: ['errors', 'NOPE', '--json'], code: 1, command: 'errors' },
      { args: ['hash-key', '--json'], input: '', code: 2, command: 'hash-key' },
      { args: ['hash-password', '--json'], input: '', code: 2, command: 'hash-password' },
      { args: ['explain', '--json'], code: 2, command: 'explain' },
      { args: ['explain', '01900000-0000-7000-8000-000000000000', '--db', path.join(tmpdir(), 'pinpoint-no-such-log.db'), '--json'], code: 3, command: 'explain' },
      { args: ['logs', '--limit', 'many', '--json'], code: 2, command: 'logs' },
      { args: ['diagnose', '--config', 'examples/demo/pinpoint.yaml', '--json'], code: 2, command: 'diagnose' },
      { args: ['monitor-report', '--limit', '0', '--json'], code: 2, command: 'monitor-report' },
    ];
    for (const c of cases) {
      const r = run(c.args, c.input);
      assert.equal(r.code, c.code, `${c.args.join(' ')}: ${r.stderr}`);
      const out = JSON.parse(r.stdout) as { ok: boolean; command: string; error: string };
      assert.equal(out.ok, false, c.args.join(' '));
      assert.equal(out.command, c.command);
      assert.ok(out.error.length > 0);
    }
  });
});

void describe('pinpoint start, explain, reload', () => {
  void test('a denial is explained from the call log by its request id', async () => {
    const f = path.join(dir, 'explain.yaml');
    writeFileSync(f, config(upstreamPort, 'explain.db'));
    const s = await start(['--config', f]);
    const res = await fetch(`http://127.0.0.1:${s.port}/orders`, { method: 'POST', headers: { 'x-api-key': READ_KEY, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 403);
    const id = res.headers.get('x-request-id') as string;
    await res.arrayBuffer();
    assert.equal(await stop(s), 0); // graceful stop flushes the log

    const r = run(['explain', id, '--config', f, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const x = JSON.parse(r.stdout) as { code: string; policy: string; status: number; outcome: string; consumer: string; credential: string; evidence: { missing_scopes: string[] }; trace: { policy: string; outcome: string }[]; fix: string };
    assert.deepEqual([x.code, x.policy, x.status, x.outcome, x.consumer, x.credential], ['AUTH_KEY_SCOPE_MISSING', 'write-key', 403, 'denied_by_gateway', 'reader', 'k_read']);
    assert.deepEqual(x.evidence.missing_scopes, ['orders:write']);
    assert.deepEqual(x.trace.map((t) => [t.policy, t.outcome]), [['router', 'allow'], ['write-key', 'deny']]);
    assert.ok(x.fix.includes('orders:write'));

    const human = run(['explain', id, '--config', f]);
    assert.equal(human.code, 0);
    assert.ok(human.stdout.includes('AUTH_KEY_SCOPE_MISSING'));

    const missing = run(['explain', 'no-such-request', '--config', f, '--json']);
    assert.equal(missing.code, 1);
    const m = JSON.parse(missing.stdout) as { found: boolean; could_have_answered: { cause: string }[] };
    assert.equal(m.found, false);
    assert.deepEqual(m.could_have_answered.map((c) => c.cause), ['proxy_in_front', 'client', 'retention', 'mistyped_id']);

    const window = run(['explain', '--since', '0', '--config', f, '--json']);
    assert.equal(window.code, 0, window.stderr);
    assert.deepEqual((JSON.parse(window.stdout) as { by_outcome: Record<string, number> }).by_outcome, { '403 AUTH_KEY_SCOPE_MISSING': 1 });
    const empty = run(['explain', '--since', String(Date.now() + 86_400_000), '--config', f, '--json']);
    assert.equal(empty.code, 1);
    assert.equal((JSON.parse(empty.stdout) as { reached_gateway: number }).reached_gateway, 0);

    const logs = run(['logs', '--config', f, '--code', 'AUTH_KEY_SCOPE_MISSING', '--json']);
    assert.equal(logs.code, 0);
    assert.deepEqual((JSON.parse(logs.stdout) as { requestId: string }[]).map((e) => e.requestId), [id]);
  });

  void test('a config change is applied on file change; an invalid one is rejected and the old one keeps serving', async () => {
    const f = path.join(dir, 'reload.yaml');
    writeFileSync(f, config(upstreamPort));
    const s = await start(['--config', f]);
    const post = () => fetch(`http://127.0.0.1:${s.port}/orders`, { method: 'POST', headers: { 'x-api-key': READ_KEY }, body: '{}' }).then(async (r) => (await r.arrayBuffer(), r.status));
    try {
      assert.equal(await post(), 403);
      // Invalid: unknown upstream. Must be rejected; the running config keeps answering 403.
      writeFileSync(f, config(upstreamPort).replace('upstream: up, policies', 'upstream: nope, policies'));
      await waitFor(async () => s.lines.some((l) => l.msg === 'config reload rejected; the running config stays in force'));
      assert.equal(await post(), 403);
      // Valid: grant the scope; the next request passes.
      writeFileSync(f, config(upstreamPort).replace('scopes: [orders:read]', 'scopes: [orders:read, orders:write]'));
      await waitFor(async () => (await post()) === 201);
      // SIGHUP reloads too: take the scope away again and signal.
      writeFileSync(f, config(upstreamPort));
      s.proc.kill('SIGHUP');
      await waitFor(async () => (await post()) === 403);
    } finally {
      await stop(s);
    }
  });

  void test('--workers 2: both workers serve and every call lands in one log', async () => {
    const f = path.join(dir, 'workers.yaml');
    writeFileSync(f, config(upstreamPort, 'workers.db'));
    const s = await start(['--config', f, '--workers', '2']);
    await waitFor(async () => s.lines.filter((l) => l.msg === 'pinpoint listening').length === 2);
    const pids = new Set(s.lines.filter((l) => l.msg === 'pinpoint listening').map((l) => l.pid));
    assert.equal(pids.size, 2);
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await fetch(`http://127.0.0.1:${s.port}/orders`, { method: 'POST', headers: { 'x-api-key': READ_KEY, connection: 'close' }, body: '{}' });
      await r.arrayBuffer();
      ids.push(r.headers.get('x-request-id') as string);
    }
    assert.equal(await stop(s), 0);
    const logs = JSON.parse(run(['logs', '--config', f, '--limit', '1000', '--json']).stdout) as { requestId: string; code: string }[];
    const logged = new Set(logs.map((l) => l.requestId));
    for (const id of ids) assert.ok(logged.has(id), `request ${id} missing from the log`);
    assert.ok(logs.every((l) => l.code === 'AUTH_KEY_SCOPE_MISSING'));
  });
});
