/**
 * Pinpoint throughput benchmark: `node bench/run.ts` (Node 24, from the repo root or anywhere).
 *
 * Five scenarios, every one a 1 KB JSON POST over keep-alive, all on 127.0.0.1:
 *   direct             wrk straight to the upstream: the ceiling any proxy could reach here
 *   nginx              nginx proxy_pass with an upstream keep-alive pool (bench/nginx-proxy.conf.template)
 *   pinpoint-bare      the gateway with one route and nothing else (bench/configs/bare.yaml)
 *   pinpoint-policies  the gateway with api-key + ip-rules + call log (bench/configs/policies.yaml)
 *   pinpoint-chain     the gateway with the full access-policy chain: cors, api-key, jwt, rbac,
 *                      rate-limit, openapi-validate, and the call log (bench/configs/chain.yaml);
 *                      its requests also carry a pre-signed HS256 bearer token and an Origin
 *
 * Method (see /work/shared/reference/proxy-stacks.md): the proxy under test alone on CPU 0
 * (`taskset -c 0`); wrk and the upstream share CPU 1. Scenarios are shuffled and interleaved within
 * each round, ratios are taken within a round (runs drift ±20 % between rounds, ratios much less),
 * and the table shows the median across rounds.
 *
 * The upstream is a 1-worker nginx returning a fixed 214-byte JSON (`return 200 '...'`), not a
 * node:http server: it costs a fraction of node's CPU per request, so CPU 1 (shared with wrk) leaves
 * the proxy on CPU 0 as the bottleneck, its ceiling is steady from run to run, and the figures are
 * comparable with the reference measurements, which used the same upstream.
 *
 * Environment (all optional):
 *   BENCH_DURATION=10s  BENCH_ROUNDS=3  BENCH_WARMUP=2s (per scenario, before round 1; 0 = none)
 *   BENCH_CONNECTIONS=50  BENCH_THREADS=1  BENCH_METHODS=POST (or POST,GET)
 *   BENCH_SCENARIOS=direct,nginx,pinpoint-bare,pinpoint-policies,pinpoint-chain
 *   BENCH_UPSTREAM_PORT=19101 BENCH_NGINX_PORT=19080 BENCH_BARE_PORT=19081 BENCH_POLICIES_PORT=19082
 *   BENCH_CHAIN_PORT=19083
 *     (a default port that is taken is replaced by the next free one; an explicit one must be free)
 *   BENCH_PROXY_CPU=0 BENCH_LOAD_CPU=1  BENCH_START_TIMEOUT=15s  BENCH_KEEP_TMP=1 (keep configs/logs)
 *   BENCH_STRICT=1 (exit 2 when a target fails)  BENCH_PINPOINT_BIN=bin/pinpoint.js (another build)
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { basename, delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { isMap, isScalar, parseDocument, type Document } from 'yaml';

// ---------------------------------------------------------------------------------------------
// Settings

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const LUA_SCRIPT = join(BENCH_DIR, 'post-1k.lua');
const RESULTS_DIR = join(BENCH_DIR, 'results');
const PINPOINT_BIN = resolve(process.env.BENCH_PINPOINT_BIN || join(ROOT, 'bin', 'pinpoint.js'));

const API_KEY = 'pp_bench_0123456789abcdef';
const REQUEST_PATH = '/v1/orders';
const UPSTREAM_BODY_BYTES = 214;
const REQUEST_BODY_BYTES = 1024;
/** pinpoint-chain: the Origin its requests carry (its cors policy allows it) and the token's scopes. */
const CHAIN_ORIGIN = 'https://app.example.com';
const CHAIN_SCOPES = 'orders:read orders:write';

const SCENARIO_IDS = ['direct', 'nginx', 'pinpoint-bare', 'pinpoint-policies', 'pinpoint-chain'] as const;
type ScenarioId = (typeof SCENARIO_IDS)[number];
const METHODS = ['POST', 'GET'] as const;
type Method = (typeof METHODS)[number];

const TARGETS = [
  { name: 'Pinpoint bare ≥ 0.35 × nginx', scenario: 'pinpoint-bare', base: 'nginx', min: 0.35 },
  { name: 'Pinpoint policies+log ≥ 0.85 × Pinpoint bare', scenario: 'pinpoint-policies', base: 'pinpoint-bare', min: 0.85 },
  { name: 'Pinpoint full chain ≥ 0.85 × Pinpoint bare', scenario: 'pinpoint-chain', base: 'pinpoint-bare', min: 0.85 },
] as const satisfies readonly { name: string; scenario: ScenarioId; base: ScenarioId; min: number }[];

/** Seconds from "10s", "500ms", "1m" or a bare number of seconds. */
function parseSeconds(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m?.[1]) throw new Error(`${what}: cannot read "${text}" as a duration (e.g. 10s, 1m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n / 1000 : unit === 'm' ? n * 60 : unit === 'h' ? n * 3600 : n;
}

function envInt(name: string, dflt: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}=${raw}: expected an integer in ${min}..${max}`);
  return n;
}

function envList<T extends string>(name: string, allowed: readonly T[], dflt: readonly T[]): T[] {
  const raw = process.env[name];
  if (!raw) return [...dflt];
  const out: T[] = [];
  for (const part of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const hit = allowed.find((a) => a.toLowerCase() === part.toLowerCase());
    if (!hit) throw new Error(`${name}: unknown "${part}" (allowed: ${allowed.join(', ')})`);
    if (!out.includes(hit)) out.push(hit);
  }
  if (out.length === 0) throw new Error(`${name} is empty`);
  return out;
}

const durationSec = parseSeconds(process.env.BENCH_DURATION || '10s', 'BENCH_DURATION');
const warmupSec = parseSeconds(process.env.BENCH_WARMUP || '2s', 'BENCH_WARMUP');
const startTimeoutSec = parseSeconds(process.env.BENCH_START_TIMEOUT || '15s', 'BENCH_START_TIMEOUT');
if (durationSec < 1 || durationSec > 600) throw new Error('BENCH_DURATION must be between 1s and 10m');
if (warmupSec > 60) throw new Error('BENCH_WARMUP must be at most 60s');
const settings = {
  durationSec,
  warmupSec,
  startTimeoutSec,
  rounds: envInt('BENCH_ROUNDS', 3, 1, 50),
  connections: envInt('BENCH_CONNECTIONS', 50, 1, 10000),
  threads: envInt('BENCH_THREADS', 1, 1, 64),
  methods: envList<Method>('BENCH_METHODS', METHODS, ['POST']),
  scenarios: envList<ScenarioId>('BENCH_SCENARIOS', SCENARIO_IDS, SCENARIO_IDS),
  proxyCpu: envInt('BENCH_PROXY_CPU', 0, 0, 4095),
  loadCpu: envInt('BENCH_LOAD_CPU', 1, 0, 4095),
  keepTmp: process.env.BENCH_KEEP_TMP === '1',
  strict: process.env.BENCH_STRICT === '1',
};
// Any integer-second duration is passed to wrk as is; others are rounded up to a whole second.
const wrkDuration = (sec: number): string => `${Math.max(1, Math.ceil(sec))}s`;

// ---------------------------------------------------------------------------------------------
// Small helpers

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? null) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

function shuffle<T>(items: T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const tmp = a[i] as T;
    a[i] = a[j] as T;
    a[j] = tmp;
  }
  return a;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Looks a program up on PATH, then in the sbin folders a non-login root shell may lack. */
function findBin(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not there
    }
  }
  return null;
}

function versionOf(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 10_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '?';
}

/** Installs a Debian package when its program is missing; `apt-get update` only if the first try fails. */
function ensureDebianTool(bin: string, packages: string[]): string {
  const found = findBin(bin);
  if (found) return found;
  if (process.getuid?.() !== 0) throw new Error(`${bin} is missing; install it with: apt-get install -y ${packages.join(' or ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const tryInstall = (): boolean =>
    packages.some((pkg) => {
      log(`· ${bin} not found: apt-get install -y ${pkg}`);
      const r = spawnSync('apt-get', ['install', '-y', '-q', pkg], { stdio: ['ignore', 'inherit', 'inherit'], env, timeout: 600_000 });
      return r.status === 0 && findBin(bin) !== null;
    });
  if (!tryInstall()) {
    log('· install failed: apt-get update, then again');
    spawnSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'inherit', 'inherit'], env, timeout: 600_000 });
    if (!tryInstall()) throw new Error(`could not install ${bin} (packages tried: ${packages.join(', ')})`);
  }
  const path = findBin(bin);
  if (!path) throw new Error(`${bin} still not found after install`);
  return path;
}

function parseCpuList(list: string): Set<number> {
  const out = new Set<number>();
  for (const part of list.trim().split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    for (let c = a; c <= (b ?? a); c++) out.add(c);
  }
  return out;
}

function cpusAllowed(pid: number | 'self'): string {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ?? '?';
  } catch {
    return '?';
  }
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = net.createServer();
    srv.once('error', () => res(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => res(true)));
  });
}

async function choosePort(envName: string, dflt: number, taken: Set<number>): Promise<number> {
  const raw = process.env[envName];
  if (raw) {
    const p = Number(raw);
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`${envName}=${raw} is not a port`);
    if (taken.has(p) || !(await portIsFree(p))) throw new Error(`${envName}=${p}: port is in use`);
    taken.add(p);
    return p;
  }
  for (let p = dflt; p < dflt + 200 && p <= 65535; p++) {
    if (!taken.has(p) && (await portIsFree(p))) {
      taken.add(p);
      return p;
    }
  }
  throw new Error(`no free port near ${dflt} for ${envName}`);
}

/** The 214-byte JSON every request gets back; no quote, `$` or backslash so nginx `return` takes it verbatim. */
function upstreamBody(): string {
  const doc = {
    id: 'ord_0001',
    status: 'accepted',
    items: [
      { sku: 'A-100', qty: 2, price: 1999 },
      { sku: 'B-200', qty: 1, price: 4999 },
    ],
    total: 8997,
    currency: 'EUR',
    pad: '',
  };
  doc.pad = 'x'.repeat(UPSTREAM_BODY_BYTES - JSON.stringify(doc).length);
  const body = JSON.stringify(doc);
  if (body.length !== UPSTREAM_BODY_BYTES || /['$\\]/.test(body)) throw new Error('bad upstream body');
  return body;
}

/** Same recipe as bench/post-1k.lua. */
function requestBody(): string {
  const head =
    '{"order":{"id":"ord_0001","customer":"cus_42","currency":"EUR",' +
    '"items":[{"sku":"A-100","qty":2,"price":1999},{"sku":"B-200","qty":1,"price":4999}]},"pad":"';
  const end = '"}';
  return head + 'x'.repeat(REQUEST_BODY_BYTES - head.length - end.length) + end;
}

// ---------------------------------------------------------------------------------------------
// Child processes: every one is started in its own process group and ended by that group's id.

interface Managed {
  name: string;
  child: ChildProcess;
  pid: number;
  logFile: string;
  exited: boolean;
  exitInfo: string;
}

const managed: Managed[] = [];

function startProcess(name: string, cmd: string, args: string[], cpu: number | null, logFile: string, cwd: string, extraEnv: Record<string, string> = {}): Managed {
  const fd = openSync(logFile, 'a');
  const [file, argv] = cpu === null ? [cmd, args] : [tasksetBin ?? 'taskset', ['-c', String(cpu), cmd, ...args]];
  const child = spawn(file, argv, { cwd, detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, ...extraEnv } });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
  const m: Managed = { name, child, pid: child.pid, logFile, exited: false, exitInfo: '' };
  child.on('exit', (code, signal) => {
    m.exited = true;
    m.exitInfo = signal ? `signal ${signal}` : `exit code ${code}`;
  });
  child.on('error', (err) => {
    m.exited = true;
    m.exitInfo = err.message;
  });
  managed.push(m);
  return m;
}

function signalGroup(m: Managed, sig: NodeJS.Signals): void {
  try {
    process.kill(-m.pid, sig);
  } catch {
    // already gone
  }
}

async function stopAll(): Promise<void> {
  const live = managed.filter((m) => !m.exited);
  for (const m of live) signalGroup(m, 'SIGTERM');
  const deadline = Date.now() + 3000;
  while (live.some((m) => !m.exited) && Date.now() < deadline) await sleep(50);
  for (const m of live) if (!m.exited) signalGroup(m, 'SIGKILL');
  // Workers of a group whose leader already exited: one last sweep.
  for (const m of managed) signalGroup(m, 'SIGKILL');
}

process.on('exit', () => {
  for (const m of managed) if (!m.exited) signalGroup(m, 'SIGKILL');
});

const abort = new AbortController();
let signalCount = 0;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    signalCount++;
    if (signalCount > 1) {
      for (const m of managed) signalGroup(m, 'SIGKILL');
      process.exit(130);
    }
    log(`\n${sig}: stopping (results so far are still reported; again to quit at once)`);
    abort.abort(sig);
  });
}

// ---------------------------------------------------------------------------------------------
// /proc accounting: CPU time and RSS of a process and all its descendants.

let clockTicks = 100;

interface ProcEntry {
  ppid: number;
  /** utime + stime, in clock ticks */
  ticks: number;
  /** cutime + cstime: reaped children, in clock ticks */
  childTicks: number;
}

function scanProc(): Map<number, ProcEntry> {
  const out = new Map<number, ProcEntry>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
      out.set(Number(entry), {
        ppid: Number(f[1]),
        ticks: Number(f[11]) + Number(f[12]),
        childTicks: Number(f[13]) + Number(f[14]),
      });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function procTree(root: number, table: Map<number, ProcEntry> = scanProc()): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, e] of table) if (e.ppid === out[i]) out.push(pid);
  return out;
}

/** CPU seconds (user + system) used so far by a process and its descendants. */
function treeCpuSec(root: number): number {
  const table = scanProc();
  let ticks = 0;
  for (const pid of procTree(root, table)) ticks += table.get(pid)?.ticks ?? 0;
  return ticks / clockTicks;
}

/**
 * CPU seconds used so far by user processes outside this harness (its own tree: wrk, nginx,
 * Pinpoint): the other work on the machine that makes a run noisy. Kernel threads are left out
 * (ksoftirqd carries the benchmark's own loopback traffic); reaped children count via their parent.
 */
function foreignCpuSec(): number {
  const table = scanProc();
  const ours = new Set(procTree(process.pid, table));
  let ticks = 0;
  for (const [pid, e] of table) {
    if (ours.has(pid) || pid === 2 || e.ppid === 2) continue;
    ticks += e.ticks + e.childTicks;
  }
  return ticks / clockTicks;
}

function treeRssMiB(root: number): number {
  let kb = 0;
  for (const pid of procTree(root)) {
    try {
      const m = /^VmRSS:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      kb += Number(m?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kb / 1024;
}

// ---------------------------------------------------------------------------------------------
// HTTP probes (readiness and the pre-flight check that each scenario answers 2xx with the body)

interface ProbeResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function probe(port: number, method: string, path: string, body: string | null, headers: Record<string, string>): Promise<ProbeResult> {
  return new Promise((res, rej) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, headers, agent: false, timeout: 3000 },
      (resp) => {
        const chunks: Buffer[] = [];
        resp.on('data', (c: Buffer) => chunks.push(c));
        resp.on('end', () => res({ status: resp.statusCode ?? 0, headers: resp.headers, body: Buffer.concat(chunks).toString('utf8') }));
        resp.on('error', rej);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end(body ?? undefined);
  });
}

async function waitReady(m: Managed, port: number): Promise<void> {
  const deadline = Date.now() + settings.startTimeoutSec * 1000;
  let last = '';
  while (Date.now() < deadline) {
    if (abort.signal.aborted) throw new Error('interrupted');
    if (m.exited) throw new Error(`${m.name} exited during start-up (${m.exitInfo}); its log:\n${tail(m.logFile)}`);
    try {
      await probe(port, 'GET', '/', null, {});
      return;
    } catch (err) {
      last = errorText(err);
    }
    await sleep(100);
  }
  throw new Error(`${m.name} did not answer on 127.0.0.1:${port} within ${settings.startTimeoutSec}s (${last}); its log:\n${tail(m.logFile)}`);
}

/** The headers wrk sends (post-1k.lua): content-type on a body, x-api-key, and pinpoint-chain's token and Origin. */
function requestHeaders(method: string, auth: ChainAuth | null): Record<string, string> {
  const headers: Record<string, string> = { 'x-api-key': API_KEY };
  if (method === 'POST') headers['content-type'] = 'application/json';
  if (auth) {
    headers.authorization = `Bearer ${auth.token}`;
    headers.origin = auth.origin;
  }
  return headers;
}

async function preflight(port: number, method: Method, expectBody: string, auth: ChainAuth | null): Promise<void> {
  const body = method === 'POST' ? requestBody() : null;
  const r = await probe(port, method, REQUEST_PATH, body, requestHeaders(method, auth));
  const denial = r.headers['x-pinpoint-code'] ? ` (${String(r.headers['x-pinpoint-code'])} by ${String(r.headers['x-pinpoint-policy'])})` : '';
  if (r.status < 200 || r.status > 299) throw new Error(`pre-flight ${method} ${REQUEST_PATH} answered ${r.status}${denial}: ${r.body.slice(0, 300)}`);
  if (r.body !== expectBody) throw new Error(`pre-flight ${method} ${REQUEST_PATH} answered ${r.status} with an unexpected body (${r.body.length} bytes): ${r.body.slice(0, 200)}`);
  if (auth) {
    // The policies that never deny this traffic must still have run: cors and rate-limit leave headers.
    if (r.headers['access-control-allow-origin'] !== auth.origin) {
      throw new Error(`pre-flight ${method}: no access-control-allow-origin: ${auth.origin} in the answer (is the cors policy on the route?)`);
    }
    if (!r.headers['ratelimit-policy'] || !r.headers.ratelimit) throw new Error(`pre-flight ${method}: no RateLimit headers in the answer (is the rate-limit policy on the route?)`);
  }
}

/**
 * pinpoint-chain only: requests that must be refused, each by its own policy, so a chain with a
 * policy missing, in monitor mode or misconfigured to allow everything cannot pass for a fast one.
 */
async function chainDenialChecks(port: number, auth: ChainAuth): Promise<string> {
  const good = requestBody();
  const bad = good.replace('"qty":2', '"qty":"2"'); // a string where the schema wants an integer
  const withoutToken = requestHeaders('POST', null);
  const cases: { what: string; method: string; body: string | null; headers: Record<string, string>; status: number; policy: string }[] = [
    { what: 'a wrong api key', method: 'POST', body: good, headers: { ...requestHeaders('POST', auth), 'x-api-key': 'pp_bench_wrong' }, status: 401, policy: auth.policies.apiKey },
    { what: 'no bearer token', method: 'POST', body: good, headers: { ...withoutToken, origin: auth.origin }, status: 401, policy: auth.policies.jwt },
    { what: 'a method no rbac rule covers', method: 'DELETE', body: null, headers: requestHeaders('DELETE', auth), status: 403, policy: auth.policies.rbac },
    { what: 'a body breaking the schema', method: 'POST', body: bad, headers: requestHeaders('POST', auth), status: 400, policy: auth.policies.openapi },
  ];
  for (const c of cases) {
    const r = await probe(port, c.method, REQUEST_PATH, c.body, c.headers);
    const policy = r.headers['x-pinpoint-policy'];
    if (r.status !== c.status || policy !== c.policy) {
      throw new Error(`pre-flight with ${c.what}: expected ${c.status} from policy ${c.policy}, got ${r.status} from ${String(policy ?? 'no policy')}: ${r.body.slice(0, 200)}`);
    }
  }
  return cases.map((c) => `${c.what} → ${c.status} ${c.policy}`).join('; ');
}

// ---------------------------------------------------------------------------------------------
// wrk

interface WrkResult {
  rps: number;
  p50ms: number;
  p99ms: number;
  requests: number;
  seconds: number;
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function parseLatency(output: string, pct: string): number {
  const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(output);
  if (!m?.[1] || !m[2]) throw new Error(`wrk output has no ${pct}% latency line`);
  return Number(m[1]) * (UNIT_MS[m[2]] ?? NaN);
}

function parseWrk(output: string): WrkResult {
  const rps = /^Requests\/sec:\s*([\d.]+)/m.exec(output);
  if (!rps?.[1]) throw new Error('wrk output has no Requests/sec line');
  const total = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)/m.exec(output);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  return {
    rps: Number(rps[1]),
    p50ms: parseLatency(output, '50'),
    p99ms: parseLatency(output, '99'),
    requests: Number(total?.[1] ?? 0),
    seconds: total?.[2] && total[3] ? (Number(total[2]) * (UNIT_MS[total[3]] ?? NaN)) / 1000 : NaN,
    non2xx: Number(non2xx?.[1] ?? 0),
    socketErrors: {
      connect: Number(sock?.[1] ?? 0),
      read: Number(sock?.[2] ?? 0),
      write: Number(sock?.[3] ?? 0),
      timeout: Number(sock?.[4] ?? 0),
    },
  };
}

let wrkBin = '';
let tasksetBin: string | null = null;
let pinning = false;

async function runWrk(port: number, method: Method, seconds: number, logFile: string, auth: ChainAuth | null): Promise<{ result: WrkResult; raw: string }> {
  const args = [
    `-t${settings.threads}`,
    `-c${settings.connections}`,
    `-d${wrkDuration(seconds)}`,
    '--latency',
    '-s',
    LUA_SCRIPT,
    `http://127.0.0.1:${port}${REQUEST_PATH}`,
  ];
  const [file, argv] = pinning ? [tasksetBin ?? 'taskset', ['-c', String(settings.loadCpu), wrkBin, ...args]] : [wrkBin, args];
  const child = spawn(file, argv, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BENCH_METHOD: method, BENCH_API_KEY: API_KEY, BENCH_BEARER_TOKEN: auth?.token ?? '', BENCH_ORIGIN: auth?.origin ?? '' },
  });
  if (child.pid === undefined) throw new Error('wrk: spawn failed');
  const m: Managed = { name: 'wrk', child, pid: child.pid, logFile, exited: false, exitInfo: '' };
  managed.push(m);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const onAbort = (): void => signalGroup(m, 'SIGKILL');
  abort.signal.addEventListener('abort', onAbort);
  const timer = setTimeout(() => signalGroup(m, 'SIGKILL'), (Math.ceil(seconds) + 20) * 1000);
  try {
    const code = await new Promise<number | string>((res) => {
      child.on('error', (err) => res(err.message));
      child.on('close', (c, sig) => res(sig ?? c ?? -1));
    });
    m.exited = true;
    writeFileSync(logFile, out);
    if (abort.signal.aborted) throw new Error('interrupted');
    if (code !== 0) throw new Error(`wrk ended with ${code}: ${out.trim().slice(-400)}`);
    return { result: parseWrk(out), raw: out };
  } finally {
    clearTimeout(timer);
    abort.signal.removeEventListener('abort', onAbort);
    managed.splice(managed.indexOf(m), 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

interface Scenario {
  id: ScenarioId;
  port: number;
  /** The process whose CPU and memory are charged to the proxy; null for direct. */
  proxy: Managed | null;
  error: string | null;
  /** pinpoint-chain: the token and Origin its requests carry; null for the others. */
  auth: ChainAuth | null;
}

interface RunRecord {
  round: number;
  position: number;
  scenario: ScenarioId;
  method: Method;
  valid: boolean;
  error: string | null;
  wrk: WrkResult | null;
  proxyCpuUsPerReq: number | null;
  proxyRssMiB: number | null;
  /** CPU used by other processes on the machine during the run, in % of one core. */
  foreignCpuPct: number | null;
}

/** A run during which other processes used more than this (% of one core) is flagged as noisy. */
const NOISY_PCT = 10;

function nginxExtraTempPaths(nginxBin: string, prefix: string, tag: string): string {
  const r = spawnSync(nginxBin, ['-V'], { encoding: 'utf8', timeout: 10_000 });
  const v = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return ['fastcgi', 'uwsgi', 'scgi']
    .filter((mod) => !v.includes(`--without-http_${mod}_module`))
    .map((mod) => `${mod}_temp_path ${prefix}/${tag}-${mod}-temp;`)
    .join('\n    ');
}

function renderTemplate(templateFile: string, values: Record<string, string>): string {
  let text = readFileSync(templateFile, 'utf8');
  for (const [k, v] of Object.entries(values)) text = text.split(`{{${k}}}`).join(v);
  const left = /\{\{[A-Z_]+\}\}/.exec(text);
  if (left) throw new Error(`${templateFile}: placeholder ${left[0]} not filled`);
  return text;
}

async function startNginx(name: string, nginxBin: string, template: string, tmp: string, tag: string, values: Record<string, string>, cpu: number | null, port: number): Promise<Managed> {
  const conf = join(tmp, `${tag}.conf`);
  writeFileSync(
    conf,
    renderTemplate(template, {
      USER: process.getuid?.() === 0 ? 'user root;' : '',
      PREFIX: tmp,
      EXTRA_TEMP_PATHS: nginxExtraTempPaths(nginxBin, tmp, tag),
      PORT: String(port),
      ...values,
    }),
  );
  const m = startProcess(name, nginxBin, ['-p', tmp, '-e', join(tmp, `${tag}-error.log`), '-c', conf, '-g', 'daemon off;'], cpu, join(tmp, `${tag}.out`), tmp);
  await waitReady(m, port);
  return m;
}

function readConfig(source: string): Document.Parsed {
  const doc = parseDocument(readFileSync(source, 'utf8'));
  if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
  return doc;
}

/** The ids and configs of a config's policies of one type, in file order. */
function policiesOfType(doc: Document.Parsed, type: string): { id: string; config: Record<string, unknown> }[] {
  const policies = doc.get('policies');
  if (!isMap(policies)) return [];
  const out: { id: string; config: Record<string, unknown> }[] = [];
  for (const id of policies.items.map((pair) => String(isScalar(pair.key) ? pair.key.value : pair.key))) {
    if (doc.getIn(['policies', id, 'type']) !== type) continue;
    const config: unknown = doc.getIn(['policies', id, 'config']);
    out.push({ id, config: isMap(config) ? (config.toJSON() as Record<string, unknown>) : {} });
  }
  return out;
}

function writePinpointConfig(source: string, tmp: string, name: string, port: number, upstreamPort: number): string {
  const doc = readConfig(source);
  doc.setIn(['listen', 'port'], port);
  doc.setIn(['upstreams', 'backend', 'targets', 0, 'url'], `http://127.0.0.1:${upstreamPort}`);
  if (doc.getIn(['call_log', 'enabled']) === true) doc.setIn(['call_log', 'path'], `${name}-calls.db`);
  const hash = doc.getIn(['consumers', 0, 'credentials', 'api_keys', 0, 'hash']);
  if (hash !== undefined && hash !== `sha256:${createHash('sha256').update(API_KEY).digest('hex')}`) {
    throw new Error(`${source}: the api key hash is not sha256 of ${API_KEY}`);
  }
  // An OpenAPI document named relative to the config goes along with it, under its own name.
  for (const { id, config } of policiesOfType(doc, 'openapi-validate')) {
    const spec = config.spec;
    if (typeof spec !== 'string' || isAbsolute(spec)) continue;
    const from = resolve(dirname(source), spec);
    if (!existsSync(from)) throw new Error(`${source}: policies.${id}.config.spec: ${from} does not exist`);
    writeFileSync(join(tmp, basename(spec)), readFileSync(from));
    doc.setIn(['policies', id, 'config', 'spec'], basename(spec));
  }
  const out = join(tmp, `${name}.yaml`);
  writeFileSync(out, doc.toString());
  return out;
}

/** What pinpoint-chain's requests carry, and the secret its Pinpoint verifies them with. */
interface ChainAuth {
  /** The one HS256 token every request sends as `Authorization: Bearer`. */
  token: string;
  origin: string;
  /** Environment of that Pinpoint only: the jwt key's secret_env variable. */
  env: Record<string, string>;
  /** Policy ids in the config, for the denial checks. */
  policies: { apiKey: string; jwt: string; rbac: string; openapi: string };
}

/**
 * Reads the jwt policy of the chain config (its HS256 key's secret_env and encoding, issuer,
 * audience), makes a fresh random 32-byte secret for this run, and signs one token with it: sub
 * = the first consumer, scope CHAIN_SCOPES, valid for `validSec` (the whole run).
 */
async function chainCredentials(source: string, validSec: number): Promise<ChainAuth> {
  const doc = readConfig(source);
  const only = (type: string): { id: string; config: Record<string, unknown> } => {
    const found = policiesOfType(doc, type);
    if (found.length !== 1) throw new Error(`${source}: expected one ${type} policy, found ${found.length}`);
    return found[0] as { id: string; config: Record<string, unknown> };
  };
  const jwt = only('jwt');
  const keys = Array.isArray(jwt.config.keys) ? (jwt.config.keys as unknown[]) : [];
  const key = keys.find((k): k is Record<string, unknown> => typeof k === 'object' && k !== null && typeof (k as Record<string, unknown>).secret_env === 'string');
  if (!key) throw new Error(`${source}: policies.${jwt.id}: no key with secret_env (the bench signs HS256 tokens)`);
  const algorithms = Array.isArray(jwt.config.algorithms) ? (jwt.config.algorithms as unknown[]) : [];
  if (!algorithms.includes('HS256') || (key.alg !== undefined && key.alg !== 'HS256')) throw new Error(`${source}: policies.${jwt.id}: the bench signs HS256; allow it`);
  const first = (v: unknown): string | undefined => (typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined);
  const consumer = doc.getIn(['consumers', 0, 'id']);
  if (typeof consumer !== 'string') throw new Error(`${source}: no consumers[0].id for the token's sub`);

  const raw = randomBytes(32);
  const encoding = key.secret_encoding === 'base64' || key.secret_encoding === 'base64url' ? key.secret_encoding : 'utf8';
  // utf8: the secret is the variable's bytes, so use printable ones (64 hex digits, 32 bytes of entropy).
  const value = encoding === 'utf8' ? raw.toString('hex') : raw.toString(encoding);
  const secret = Buffer.from(value, encoding);

  let signer = new SignJWT({ scope: CHAIN_SCOPES })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...(typeof key.kid === 'string' ? { kid: key.kid } : {}) })
    .setSubject(consumer)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + Math.ceil(validSec));
  const iss = first(jwt.config.issuer);
  const aud = first(jwt.config.audience);
  if (iss !== undefined) signer = signer.setIssuer(iss);
  if (aud !== undefined) signer = signer.setAudience(aud);
  return {
    token: await signer.sign(secret),
    origin: CHAIN_ORIGIN,
    env: { [key.secret_env as string]: value },
    policies: { apiKey: only('api-key').id, jwt: jwt.id, rbac: only('rbac').id, openapi: only('openapi-validate').id },
  };
}

async function startPinpoint(name: ScenarioId, configSource: string, tmp: string, port: number, upstreamPort: number, env: Record<string, string> = {}): Promise<Managed> {
  if (!existsSync(PINPOINT_BIN)) throw new Error(`${PINPOINT_BIN} does not exist (yet)`);
  const config = writePinpointConfig(configSource, tmp, name, port, upstreamPort);
  const m = startProcess(
    name,
    process.execPath,
    [PINPOINT_BIN, 'start', '--config', config, '--port', String(port)],
    pinning ? settings.proxyCpu : null,
    join(tmp, `${name}.out`),
    ROOT,
    env,
  );
  await waitReady(m, port);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Report

const fmtRatio = (v: number | null): string => (v === null ? '–' : v.toFixed(2));
const fmtNum = (v: number | null, digits: number): string => (v === null ? '–' : v.toFixed(digits));

interface SummaryRow {
  scenario: ScenarioId;
  method: Method;
  runs: number;
  rps: number | null;
  p50ms: number | null;
  p99ms: number | null;
  ratio: Record<'direct' | 'nginx' | 'pinpoint-bare', number | null>;
  proxyCpuUsPerReq: number | null;
  proxyRssMiB: number | null;
  error: string | null;
}

function summarize(scenarios: Scenario[], runs: RunRecord[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const method of settings.methods) {
    for (const sc of scenarios) {
      const mine = runs.filter((r) => r.scenario === sc.id && r.method === method && r.valid && r.wrk);
      const ratioTo = (base: ScenarioId): number | null => {
        const per: number[] = [];
        for (const r of mine) {
          const b = runs.find((x) => x.round === r.round && x.scenario === base && x.method === method && x.valid && x.wrk);
          if (b?.wrk && r.wrk && b.wrk.rps > 0) per.push(r.wrk.rps / b.wrk.rps);
        }
        return median(per);
      };
      const lastError = [...runs].reverse().find((r) => r.scenario === sc.id && r.method === method && r.error)?.error ?? null;
      rows.push({
        scenario: sc.id,
        method,
        runs: mine.length,
        rps: median(mine.map((r) => r.wrk?.rps ?? 0)),
        p50ms: median(mine.map((r) => r.wrk?.p50ms ?? 0)),
        p99ms: median(mine.map((r) => r.wrk?.p99ms ?? 0)),
        ratio: { direct: ratioTo('direct'), nginx: ratioTo('nginx'), 'pinpoint-bare': ratioTo('pinpoint-bare') },
        proxyCpuUsPerReq: median(mine.flatMap((r) => (r.proxyCpuUsPerReq === null ? [] : [r.proxyCpuUsPerReq]))),
        proxyRssMiB: mine.at(-1)?.proxyRssMiB ?? null,
        error: sc.error ?? (mine.length === 0 ? lastError : null),
      });
    }
  }
  return rows;
}

function printTable(rows: SummaryRow[]): void {
  const header = ['scenario', 'req/s', 'p50 ms', 'p99 ms', '÷ direct', '÷ nginx', '÷ pinpoint-bare', 'proxy CPU µs/req', 'proxy RSS MiB'];
  const body = rows.map((r) => [
    `${r.scenario} ${r.method === 'POST' ? 'POST 1KB' : 'GET'}`,
    r.rps === null ? '–' : Math.round(r.rps).toLocaleString('en-US'),
    fmtNum(r.p50ms, 2),
    fmtNum(r.p99ms, 2),
    fmtRatio(r.ratio.direct),
    fmtRatio(r.ratio.nginx),
    fmtRatio(r.ratio['pinpoint-bare']),
    fmtNum(r.proxyCpuUsPerReq, 1),
    fmtNum(r.proxyRssMiB, 0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  log(line(header));
  log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const row of body) log(line(row));
  for (const r of rows) if (r.error) log(`  ${r.scenario} ${r.method}: not measured: ${r.error.split('\n')[0] ?? ''}`);
}

interface TargetResult {
  name: string;
  method: Method;
  min: number;
  ratio: number | null;
  pass: boolean | null;
}

function checkTargets(rows: SummaryRow[]): TargetResult[] {
  const out: TargetResult[] = [];
  for (const method of settings.methods) {
    for (const t of TARGETS) {
      const row = rows.find((r) => r.scenario === t.scenario && r.method === method);
      const ratio = row ? row.ratio[t.base] : null;
      out.push({ name: t.name, method, min: t.min, ratio, pass: ratio === null ? null : ratio >= t.min });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const startedAt = new Date();
  log(`Pinpoint benchmark — ${startedAt.toISOString()}`);
  log(`node ${process.version} (${process.execPath}); ${cpus()[0]?.model ?? '?'}; ${availableParallelism()} CPUs available`);

  wrkBin = ensureDebianTool('wrk', ['wrk']);
  const nginxBin = ensureDebianTool('nginx', ['nginx-light', 'nginx']); // the upstream, whatever the scenarios
  tasksetBin = findBin('taskset');
  const clk = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  if (clk.status === 0 && Number(clk.stdout) > 0) clockTicks = Number(clk.stdout);

  const allowed = parseCpuList(cpusAllowed('self'));
  const pinningNote = !tasksetBin
    ? 'none: taskset not found'
    : settings.proxyCpu === settings.loadCpu
      ? 'none: BENCH_PROXY_CPU equals BENCH_LOAD_CPU'
      : !allowed.has(settings.proxyCpu) || !allowed.has(settings.loadCpu)
        ? `none: CPUs ${settings.proxyCpu} and ${settings.loadCpu} are not both allowed here (allowed: ${cpusAllowed('self')})`
        : '';
  pinning = pinningNote === '';
  log(
    pinning
      ? `CPU pinning: proxy under test → CPU ${settings.proxyCpu} (taskset -c ${settings.proxyCpu}); wrk + upstream → CPU ${settings.loadCpu} (taskset -c ${settings.loadCpu})`
      : `CPU pinning: ${pinningNote} — figures are less comparable`,
  );
  const versions = { node: process.version, nginx: versionOf(nginxBin, ['-v']), wrk: versionOf(wrkBin, ['-v']) };
  log(`${versions.nginx}; ${versions.wrk}`);
  log(
    `load: wrk -t${settings.threads} -c${settings.connections} -d${wrkDuration(settings.durationSec)} --latency, ` +
      `${settings.methods.map((m) => (m === 'POST' ? `POST ${REQUEST_BODY_BYTES} B JSON` : 'GET')).join(' + ')} → ${UPSTREAM_BODY_BYTES} B JSON; ` +
      `${settings.rounds} round(s), warm-up ${settings.warmupSec}s per scenario`,
  );

  const taken = new Set<number>();
  const ports = {
    upstream: await choosePort('BENCH_UPSTREAM_PORT', 19101, taken),
    nginx: await choosePort('BENCH_NGINX_PORT', 19080, taken),
    'pinpoint-bare': await choosePort('BENCH_BARE_PORT', 19081, taken),
    'pinpoint-policies': await choosePort('BENCH_POLICIES_PORT', 19082, taken),
    'pinpoint-chain': await choosePort('BENCH_CHAIN_PORT', 19083, taken),
  };
  log(
    `ports: upstream ${ports.upstream}, nginx ${ports.nginx}, pinpoint-bare ${ports['pinpoint-bare']}, ` +
      `pinpoint-policies ${ports['pinpoint-policies']}, pinpoint-chain ${ports['pinpoint-chain']}`,
  );

  const tmp = mkdtempSync(join(tmpdir(), 'pinpoint-bench-'));
  const expectBody = upstreamBody();
  const runs: RunRecord[] = [];
  const scenarios: Scenario[] = [];
  let exitCode = 0;
  let fatal: string | null = null;

  // Hard bound on the whole run: start-ups, warm-ups and every measured run, with slack.
  const perRun = Math.ceil(settings.durationSec) + 3;
  const budgetSec =
    settings.scenarios.length * (settings.startTimeoutSec + 5) +
    settings.scenarios.length * settings.methods.length * ((settings.warmupSec > 0 ? Math.ceil(settings.warmupSec) + 3 : 0) + settings.rounds * perRun) +
    60;
  log(`expected ≈ ${Math.round(settings.scenarios.length * settings.methods.length * (settings.rounds * perRun + settings.warmupSec))}s; hard limit ${budgetSec}s`);
  const deadline = setTimeout(() => {
    log(`\nhard time limit (${budgetSec}s) reached: stopping`);
    abort.abort('deadline');
  }, budgetSec * 1000);
  deadline.unref();

  try {
    // Upstream and nginx proxy: the harness cannot measure anything without them.
    const upstream = await startNginx(
      'upstream (nginx)',
      nginxBin,
      join(BENCH_DIR, 'nginx-upstream.conf.template'),
      tmp,
      'upstream',
      { BODY: expectBody },
      pinning ? settings.loadCpu : null,
      ports.upstream,
    );
    log(`started upstream nginx pid ${upstream.pid} on 127.0.0.1:${ports.upstream}, CPUs ${cpusAllowed(upstream.pid)}`);

    for (const id of settings.scenarios) {
      const sc: Scenario = { id, port: id === 'direct' ? ports.upstream : ports[id], proxy: null, error: null, auth: null };
      scenarios.push(sc);
      try {
        if (id === 'nginx') {
          sc.proxy = await startNginx(
            'nginx proxy',
            nginxBin,
            join(BENCH_DIR, 'nginx-proxy.conf.template'),
            tmp,
            'proxy',
            { UPSTREAM_PORT: String(ports.upstream) },
            pinning ? settings.proxyCpu : null,
            sc.port,
          );
        } else if (id === 'pinpoint-bare') {
          sc.proxy = await startPinpoint(id, join(BENCH_DIR, 'configs', 'bare.yaml'), tmp, sc.port, ports.upstream);
        } else if (id === 'pinpoint-policies') {
          sc.proxy = await startPinpoint(id, join(BENCH_DIR, 'configs', 'policies.yaml'), tmp, sc.port, ports.upstream);
        } else if (id === 'pinpoint-chain') {
          const config = join(BENCH_DIR, 'configs', 'chain.yaml');
          // The token outlives the hard limit, so it cannot expire mid-run.
          sc.auth = await chainCredentials(config, budgetSec + 3600);
          sc.proxy = await startPinpoint(id, config, tmp, sc.port, ports.upstream, sc.auth.env);
        }
        for (const method of settings.methods) await preflight(sc.port, method, expectBody, sc.auth);
        const denials = sc.auth ? `; refused as expected: ${await chainDenialChecks(sc.port, sc.auth)}` : '';
        log(
          sc.proxy
            ? `started ${id} pid ${sc.proxy.pid} on 127.0.0.1:${sc.port}, CPUs ${cpusAllowed(sc.proxy.pid)}, RSS ${treeRssMiB(sc.proxy.pid).toFixed(0)} MiB idle; pre-flight OK${denials}`
            : `${id}: pre-flight OK`,
        );
      } catch (err) {
        sc.error = errorText(err);
        log(`✗ ${id}: ${sc.error}`);
        if (sc.proxy) {
          signalGroup(sc.proxy, 'SIGTERM');
          sc.proxy = null;
        }
        if (abort.signal.aborted) throw err;
      }
    }

    const live = (): Scenario[] => scenarios.filter((s) => s.error === null);
    const plan = live().flatMap((sc) => settings.methods.map((method) => ({ sc, method })));

    if (settings.warmupSec > 0 && plan.length > 0) {
      log(`\nwarm-up: ${settings.warmupSec}s each`);
      for (const { sc, method } of plan) {
        if (abort.signal.aborted) break;
        try {
          await runWrk(sc.port, method, settings.warmupSec, join(tmp, `warmup-${sc.id}-${method}.txt`), sc.auth);
        } catch (err) {
          log(`  warm-up ${sc.id} ${method}: ${errorText(err)}`);
        }
      }
    }

    for (let round = 1; round <= settings.rounds && !abort.signal.aborted; round++) {
      const order = shuffle(plan);
      log(`\nround ${round}/${settings.rounds}: ${order.map((p) => `${p.sc.id} ${p.method}`).join(', ')}`);
      for (const [position, { sc, method }] of order.entries()) {
        if (abort.signal.aborted) break;
        const rec: RunRecord = { round, position, scenario: sc.id, method, valid: false, error: null, wrk: null, proxyCpuUsPerReq: null, proxyRssMiB: null, foreignCpuPct: null };
        runs.push(rec);
        try {
          if (sc.proxy?.exited) throw new Error(`${sc.proxy.name} has exited (${sc.proxy.exitInfo}): ${tail(sc.proxy.logFile, 5)}`);
          if (upstream.exited) throw new Error(`upstream has exited (${upstream.exitInfo})`);
          const cpu0 = sc.proxy ? treeCpuSec(sc.proxy.pid) : 0;
          const foreign0 = foreignCpuSec();
          const t0 = performance.now();
          const { result } = await runWrk(sc.port, method, settings.durationSec, join(tmp, `r${round}-${sc.id}-${method}.txt`), sc.auth);
          rec.foreignCpuPct = ((foreignCpuSec() - foreign0) * 100_000) / (performance.now() - t0);
          rec.wrk = result;
          if (sc.proxy && result.requests > 0) {
            rec.proxyCpuUsPerReq = ((treeCpuSec(sc.proxy.pid) - cpu0) * 1e6) / result.requests;
            rec.proxyRssMiB = treeRssMiB(sc.proxy.pid);
          }
          const e = result.socketErrors;
          const bad = result.non2xx + e.connect + e.read + e.write + e.timeout;
          rec.valid = result.requests > 0 && bad <= result.requests * 0.001;
          if (!rec.valid) rec.error = `${result.non2xx} non-2xx, socket errors ${JSON.stringify(e)} of ${result.requests} requests`;
          log(
            `  ${`${sc.id} ${method}`.padEnd(24)} ${Math.round(result.rps).toLocaleString('en-US').padStart(8)} req/s  ` +
              `p50 ${result.p50ms.toFixed(2)} ms  p99 ${result.p99ms.toFixed(2)} ms` +
              (rec.proxyCpuUsPerReq === null ? '' : `  proxy CPU ${rec.proxyCpuUsPerReq.toFixed(1)} µs/req, RSS ${rec.proxyRssMiB?.toFixed(0)} MiB`) +
              (rec.foreignCpuPct > NOISY_PCT ? `  ⚠ noisy: other processes used ${rec.foreignCpuPct.toFixed(0)}% of a core` : '') +
              (rec.valid ? '' : `  ✗ excluded: ${rec.error}`),
          );
        } catch (err) {
          rec.error = errorText(err);
          if (!abort.signal.aborted) log(`  ${`${sc.id} ${method}`.padEnd(24)} ✗ ${rec.error}`);
        }
        await sleep(300);
      }
    }
  } catch (err) {
    fatal = errorText(err);
    if (!abort.signal.aborted) log(`\n✗ ${fatal}`);
    exitCode = 1;
  } finally {
    clearTimeout(deadline);
    await stopAll();
  }

  const rows = summarize(scenarios, runs);
  const targets = checkTargets(rows);
  if (runs.length > 0 || scenarios.length > 0) {
    const roundsDone = new Set(runs.filter((r) => r.valid).map((r) => r.round)).size;
    log(
      `\nMedian of ${roundsDone} round(s)${abort.signal.aborted ? ` (interrupted after ${roundsDone} of ${settings.rounds}: partial)` : ''}; ` +
        'ratios taken within each round:',
    );
    printTable(rows);
    const measured = runs.filter((r) => r.wrk);
    const noisy = measured.filter((r) => (r.foreignCpuPct ?? 0) > NOISY_PCT);
    if (noisy.length > 0) {
      log(
        `⚠ ${noisy.length} of ${measured.length} runs shared the machine with other work (> ${NOISY_PCT}% of a core, ` +
          `up to ${Math.max(...noisy.map((r) => r.foreignCpuPct ?? 0)).toFixed(0)}%): re-run on a quiet machine before trusting the ratios`,
      );
    }
    log('\nTargets:');
    for (const t of targets) {
      const verdict = t.pass === null ? 'n/a (not measured)' : t.pass ? 'PASS' : 'FAIL';
      log(`  ${verdict.padEnd(4)}  ${t.name} (${t.method}): ${t.ratio === null ? '–' : `${t.ratio.toFixed(2)}×`}`);
    }
  }

  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultFile = join(RESULTS_DIR, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    resultFile,
    `${JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        interrupted: abort.signal.aborted ? String(abort.signal.reason) : null,
        fatal,
        versions,
        cpu: { model: cpus()[0]?.model ?? null, available: availableParallelism(), pinning: pinning ? { proxy: settings.proxyCpu, loadAndUpstream: settings.loadCpu } : null, note: pinningNote || null },
        settings: { ...settings, requestPath: REQUEST_PATH, requestBodyBytes: REQUEST_BODY_BYTES, upstreamBodyBytes: UPSTREAM_BODY_BYTES },
        ports,
        scenarios: scenarios.map((s) => ({ id: s.id, port: s.port, error: s.error })),
        runs,
        summary: rows,
        targets,
      },
      null,
      2,
    )}\n`,
  );
  log(`\nraw results: ${resultFile}`);
  if (settings.keepTmp) log(`configs and logs kept in ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });

  if (abort.signal.aborted) return abort.signal.reason === 'deadline' ? 3 : 130;
  if (exitCode === 0 && settings.strict && targets.some((t) => t.pass === false)) return 2;
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    log(`✗ ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await stopAll();
    process.exit(1);
  },
);
