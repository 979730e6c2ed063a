/**
 * AI gateway benchmark: `node bench/ai.ts` (Node 24, from the repo root or anywhere).
 *
 * Pinpoint's AI route and Portkey's open-source gateway (`@portkey-ai/gateway`, a devDependency)
 * side by side in one run, in front of the same local mock provider, on the same OpenAI chat
 * request, in two modes: `json` (a chat.completion) and `stream` (an SSE stream).
 *
 *   direct         wrk straight to the mock provider: the ceiling, and the base for added latency
 *   pinpoint       Pinpoint with an AI route behind an api-key policy, call log on
 *                  (bench/configs/ai.yaml): what a user runs
 *   pinpoint-bare  the same AI route with no policy and no call log (bench/configs/ai-bare.yaml)
 *   portkey        Portkey's gateway (build/start-server.js --headless), told the provider with
 *                  `x-portkey-provider: openai` and `x-portkey-custom-host: http://127.0.0.1:<mock>/…/v1`
 *
 * Two measurements per scenario and mode:
 *   load     wrk -c BENCH_CONNECTIONS (50): throughput (req/s) and latency under load
 *   latency  wrk -c BENCH_LATENCY_CONNECTIONS (1): one request at a time, so the p50 is the time a
 *            call takes and not time spent queueing; "added p50" = p50(gateway) − p50(direct),
 *            both at that concurrency, taken within a round
 *
 * Targets (issue: AI gateway): Pinpoint ≥ 3 × Portkey's req/s, and ≤ 1 ms added p50, in both modes.
 *
 * Method (as bench/run.ts; /work/shared/reference/proxy-stacks.md): the gateway under test alone on
 * CPU 0 (`taskset -c 0`); wrk and the mock share CPU 1. Every (scenario, mode, measurement) is run
 * once per round, in a new random order; ratios and differences are taken within a round, and the
 * table shows the median across rounds.
 *
 * The mock is a 1-worker nginx with two fixed answers (bench/ai-mock.conf.template), chosen by path
 * because nginx `return` cannot read the body: /json/v1/chat/completions and
 * /stream/v1/chat/completions. Pinpoint reaches them as two providers behind the models `bench-json`
 * and `bench-stream`; Portkey through its custom-host header; direct by path. Every scenario is
 * sent the same body, and a pre-flight checks that each one answers with the right variant.
 *
 * Reading Portkey's stream figures: its stream reader sleeps 25 ms before relaying the first chunk
 * of every stream (readStream in its src/handlers/streamHandler.ts), so its stream p50 at c=1 is
 * ≥ 25 ms by design.
 *
 * Environment (all optional):
 *   BENCH_DURATION=10s  BENCH_LATENCY_DURATION (default: BENCH_DURATION)  BENCH_ROUNDS=3
 *   BENCH_WARMUP=2s (per scenario and mode, before round 1; 0 = none)
 *   BENCH_CONNECTIONS=50  BENCH_LATENCY_CONNECTIONS=1  BENCH_THREADS=1
 *   BENCH_MODES=json,stream  BENCH_SCENARIOS=direct,pinpoint,pinpoint-bare,portkey
 *   BENCH_MOCK_PORT=19111 BENCH_PINPOINT_BARE_PORT=19181 BENCH_PINPOINT_PORT=19182 BENCH_PORTKEY_PORT=19183
 *     (a default port that is taken is replaced by the next free one; an explicit one must be free)
 *   BENCH_PROXY_CPU=0 BENCH_LOAD_CPU=1  BENCH_START_TIMEOUT=20s  BENCH_KEEP_TMP=1 (keep configs/logs)
 *   BENCH_STRICT=1 (exit 2 when a target is missed)  BENCH_PINPOINT_BIN=bin/pinpoint.js (another build)
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, parseDocument, type Document } from 'yaml';

// ---------------------------------------------------------------------------------------------
// Settings

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const LUA_SCRIPT = join(BENCH_DIR, 'ai-chat.lua');
const MOCK_TEMPLATE = join(BENCH_DIR, 'ai-mock.conf.template');
const LOOPBACK_PRELOAD = join(BENCH_DIR, 'ai-loopback.ts');
const RESULTS_DIR = join(BENCH_DIR, 'results');
const PINPOINT_BIN = resolve(process.env.BENCH_PINPOINT_BIN || join(ROOT, 'bin', 'pinpoint.js'));
const PORTKEY_DIR = join(ROOT, 'node_modules', '@portkey-ai', 'gateway');
const PORTKEY_ENTRY = join(PORTKEY_DIR, 'build', 'start-server.js');

/** Pinpoint's api key (bench/configs/ai.yaml holds its SHA-256); Portkey forwards it as the provider key. */
const API_KEY = 'pp_bench_0123456789abcdef';
/** The provider key Pinpoint sends to the mock (key_env BENCH_PROVIDER_KEY), as Portkey sends one. */
const PROVIDER_KEY = 'sk-bench-provider-0123456789abcdef';
const CHAT_PATH = '/v1/chat/completions';

const SCENARIO_IDS = ['direct', 'pinpoint', 'pinpoint-bare', 'portkey'] as const;
type ScenarioId = (typeof SCENARIO_IDS)[number];
const MODES = ['json', 'stream'] as const;
type Mode = (typeof MODES)[number];
type Kind = 'load' | 'latency';

/** Per mode: the model in the request (Pinpoint's model → provider → mock path) and the mock's base path. */
const MODE_INFO: Record<Mode, { model: string; mockBase: string }> = {
  json: { model: 'bench-json', mockBase: '/json/v1' },
  stream: { model: 'bench-stream', mockBase: '/stream/v1' },
};

const TARGET_RATIO = 3;
const TARGET_ADDED_P50_MS = 1;

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
const latencyDurationSec = parseSeconds(process.env.BENCH_LATENCY_DURATION || process.env.BENCH_DURATION || '10s', 'BENCH_LATENCY_DURATION');
const warmupSec = parseSeconds(process.env.BENCH_WARMUP || '2s', 'BENCH_WARMUP');
const startTimeoutSec = parseSeconds(process.env.BENCH_START_TIMEOUT || '20s', 'BENCH_START_TIMEOUT');
for (const [name, sec] of [['BENCH_DURATION', durationSec], ['BENCH_LATENCY_DURATION', latencyDurationSec]] as const) {
  if (sec < 1 || sec > 600) throw new Error(`${name} must be between 1s and 10m`);
}
if (warmupSec > 60) throw new Error('BENCH_WARMUP must be at most 60s');
const settings = {
  durationSec,
  latencyDurationSec,
  warmupSec,
  startTimeoutSec,
  rounds: envInt('BENCH_ROUNDS', 3, 1, 50),
  connections: envInt('BENCH_CONNECTIONS', 50, 1, 10000),
  latencyConnections: envInt('BENCH_LATENCY_CONNECTIONS', 1, 1, 64),
  threads: envInt('BENCH_THREADS', 1, 1, 64),
  modes: envList<Mode>('BENCH_MODES', MODES, MODES),
  scenarios: envList<ScenarioId>('BENCH_SCENARIOS', SCENARIO_IDS, SCENARIO_IDS),
  proxyCpu: envInt('BENCH_PROXY_CPU', 0, 0, 4095),
  loadCpu: envInt('BENCH_LOAD_CPU', 1, 0, 4095),
  keepTmp: process.env.BENCH_KEEP_TMP === '1',
  strict: process.env.BENCH_STRICT === '1',
};
if (settings.threads > settings.latencyConnections) {
  // wrk needs at least one connection per thread; the latency run keeps its fixed concurrency.
  throw new Error(`BENCH_THREADS (${settings.threads}) must not exceed BENCH_LATENCY_CONNECTIONS (${settings.latencyConnections})`);
}
const wrkDuration = (sec: number): string => `${Math.max(1, Math.ceil(sec))}s`;
const kindSeconds = (kind: Kind): number => (kind === 'load' ? settings.durationSec : settings.latencyDurationSec);
const kindConnections = (kind: Kind): number => (kind === 'load' ? settings.connections : settings.latencyConnections);

// ---------------------------------------------------------------------------------------------
// The mock provider's answers and the request (mirrored by bench/ai-chat.lua)

/** What the mock's assistant says, in both modes; the pre-flight checks each gateway relays it. */
const MOCK_TEXT = 'Hello! How can I help you today?';
const MOCK_PIECES = ['Hello', '!', ' How', ' can', ' I', ' help', ' you', ' today', '?'];
const MOCK_USAGE = {
  prompt_tokens: 10,
  completion_tokens: 9,
  total_tokens: 19,
  prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
};
const MOCK_COMMON = { created: 1763790000, model: 'gpt-4o-mini-2024-07-18', service_tier: 'default', system_fingerprint: 'fp_560af6e559' };

/** A chat.completion as OpenAI answers it today (fields and order from the API reference). */
function mockJsonBody(): string {
  return JSON.stringify({
    id: 'chatcmpl-BenchJson0001',
    object: 'chat.completion',
    ...MOCK_COMMON,
    choices: [{ index: 0, message: { role: 'assistant', content: MOCK_TEXT, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
    usage: MOCK_USAGE,
  });
}

/**
 * An OpenAI stream with `stream_options.include_usage` (what Pinpoint asks for): a role chunk, one
 * chunk per token, the finish chunk, each with `usage: null`, then the usage chunk with empty
 * choices, then [DONE]. 11 chat.completion.chunk events, the usage chunk and the end marker.
 */
function mockStreamBody(): string {
  const chunk = (delta: Record<string, unknown>, finish: string | null): object => ({
    id: 'chatcmpl-BenchStream001',
    object: 'chat.completion.chunk',
    ...MOCK_COMMON,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    usage: null,
  });
  const events: object[] = [
    chunk({ role: 'assistant', content: '', refusal: null }, null),
    ...MOCK_PIECES.map((p) => chunk({ content: p }, null)),
    chunk({}, 'stop'),
    { id: 'chatcmpl-BenchStream001', object: 'chat.completion.chunk', ...MOCK_COMMON, choices: [], usage: MOCK_USAGE },
  ];
  return `${events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('')}data: [DONE]\n\n`;
}

/** For nginx's `return 200 '…'`: no quote, `$` or backslash in the text; newlines as `\n` escapes. */
function nginxString(text: string): string {
  if (/['$\\]/.test(text)) throw new Error(`mock body has a character nginx would interpret: ${text.slice(0, 80)}`);
  return text.replaceAll('\n', '\\n');
}

/** Same recipe as bench/ai-chat.lua. */
function chatBody(mode: Mode): string {
  return `{"model":"${MODE_INFO[mode].model}","messages":[{"role":"user","content":"Say hello"}]${mode === 'stream' ? ',"stream":true' : ''}}`;
}

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

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
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

function packageVersion(file: string): string | null {
  try {
    const pkg: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return isRecord(pkg) && typeof pkg.version === 'string' ? pkg.version : null;
  } catch {
    return null;
  }
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
let tasksetBin: string | null = null;
let pinning = false;

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
      out.set(Number(entry), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), childTicks: Number(f[13]) + Number(f[14]) });
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
 * CPU seconds used so far by user processes outside this harness: the other work on the machine
 * that makes a run noisy. Kernel threads are left out (ksoftirqd carries the benchmark's own
 * loopback traffic); reaped children count via their parent.
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
// HTTP probes: readiness, and the pre-flight check that each scenario relays the right answer

interface ProbeResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function probe(port: number, method: string, path: string, body: string | null, headers: Record<string, string>): Promise<ProbeResult> {
  return new Promise((res, rej) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false, timeout: 5000 }, (resp) => {
      const chunks: Buffer[] = [];
      resp.on('data', (c: Buffer) => chunks.push(c));
      resp.on('end', () => res({ status: resp.statusCode ?? 0, headers: resp.headers, body: Buffer.concat(chunks).toString('utf8') }));
      resp.on('error', rej);
    });
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

interface Scenario {
  id: ScenarioId;
  port: number;
  /** The process whose CPU and memory are charged to the gateway; null for direct. */
  proxy: Managed | null;
  /** The path wrk requests, per mode (direct: the mock's own path). */
  path: (mode: Mode) => string;
  /** wrk's environment besides model and stream (ai-chat.lua), per mode. */
  env: (mode: Mode) => Record<string, string>;
  /** pinpoint: its call log, checked by the pre-flight. */
  callLog: string | null;
  error: string | null;
}

/** The headers ai-chat.lua sends with these settings. */
function requestHeaders(env: Record<string, string>): Record<string, string> {
  const h: Record<string, string> = { 'content-type': 'application/json' };
  if (env.BENCH_AI_KEY) h.authorization = `Bearer ${env.BENCH_AI_KEY}`;
  if (env.BENCH_PORTKEY_CUSTOM_HOST) {
    h['x-portkey-provider'] = 'openai';
    h['x-portkey-custom-host'] = env.BENCH_PORTKEY_CUSTOM_HOST;
  }
  return h;
}

/** The text and usage a JSON answer carries; throws when it is not the mock's chat.completion. */
function checkJsonAnswer(body: string): string {
  const doc: unknown = JSON.parse(body);
  if (!isRecord(doc) || doc.object !== 'chat.completion' || !Array.isArray(doc.choices)) throw new Error(`not a chat.completion: ${body.slice(0, 200)}`);
  const first: unknown = doc.choices[0];
  const content = isRecord(first) && isRecord(first.message) ? first.message.content : undefined;
  if (content !== MOCK_TEXT) throw new Error(`content ${JSON.stringify(content)} is not the mock's`);
  if (!isRecord(doc.usage) || doc.usage.total_tokens !== MOCK_USAGE.total_tokens) throw new Error(`usage ${JSON.stringify(doc.usage)} is not the mock's`);
  return `chat.completion, ${body.length} B`;
}

/** Reads an SSE answer: every `data:` event must be a chunk carrying the mock's text, ended by [DONE]. */
function checkStreamAnswer(body: string): string {
  const data = body
    .split(/\r?\n\r?\n/)
    .map((ev) => ev.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n'))
    .filter((d) => d !== '');
  if (data.at(-1) !== '[DONE]') throw new Error(`the stream does not end with data: [DONE]: …${body.slice(-120)}`);
  let text = '';
  let usage = false;
  for (const d of data.slice(0, -1)) {
    const chunk: unknown = JSON.parse(d);
    if (!isRecord(chunk) || chunk.object !== 'chat.completion.chunk' || !Array.isArray(chunk.choices)) throw new Error(`not a chat.completion.chunk: ${d.slice(0, 200)}`);
    for (const ch of chunk.choices as unknown[]) {
      if (isRecord(ch) && isRecord(ch.delta) && typeof ch.delta.content === 'string') text += ch.delta.content;
    }
    if (isRecord(chunk.usage)) usage = true;
  }
  if (text !== MOCK_TEXT) throw new Error(`streamed text ${JSON.stringify(text)} is not the mock's`);
  return `${data.length - 1} chunks${usage ? ' incl. usage' : ''} + [DONE], ${body.length} B`;
}

/** Waits for the call-log row of a request and returns what it says about the AI call. */
async function callLogRow(dbFile: string, requestId: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5000;
  let last = 'no row yet';
  while (Date.now() < deadline) {
    try {
      if (existsSync(dbFile)) {
        const db = new DatabaseSync(dbFile, { readOnly: true });
        try {
          const row = db.prepare('SELECT status, route, consumer, provider, model, tokens_in, tokens_out, stream FROM calls WHERE request_id = ?').get(requestId);
          if (row) return { ...row };
        } finally {
          db.close();
        }
      } else {
        last = `${dbFile} does not exist`;
      }
    } catch (err) {
      last = errorText(err);
    }
    await sleep(100);
  }
  throw new Error(`no call-log row for request ${requestId} within 5 s (${last})`);
}

async function preflight(sc: Scenario, mode: Mode): Promise<string> {
  const env = sc.env(mode);
  const r = await probe(sc.port, 'POST', sc.path(mode), chatBody(mode), requestHeaders(env));
  const what = `${sc.id} ${mode}`;
  if (r.status !== 200) throw new Error(`pre-flight ${what} answered ${r.status}: ${r.body.slice(0, 300)}`);
  const type = String(r.headers['content-type'] ?? '');
  const wanted = mode === 'json' ? 'application/json' : 'text/event-stream';
  if (!type.startsWith(wanted)) throw new Error(`pre-flight ${what}: content-type ${type}, expected ${wanted}: ${r.body.slice(0, 200)}`);
  let note: string;
  try {
    note = mode === 'json' ? checkJsonAnswer(r.body) : checkStreamAnswer(r.body);
  } catch (err) {
    throw new Error(`pre-flight ${what}: ${errorText(err)}`);
  }
  if (sc.id === 'direct' && r.body !== (mode === 'json' ? mockJsonBody() : mockStreamBody())) throw new Error(`pre-flight ${what}: the mock's body differs from the one configured`);
  if (sc.id === 'portkey' && r.headers['x-portkey-provider'] !== 'openai') throw new Error(`pre-flight ${what}: no x-portkey-provider: openai in the answer (is it Portkey?)`);
  if (sc.id === 'pinpoint' || sc.id === 'pinpoint-bare') {
    const served = r.headers['x-pinpoint-ai-provider'];
    if (served !== `mock-${mode}`) throw new Error(`pre-flight ${what}: served by provider ${String(served)}, expected mock-${mode}`);
  }
  if (sc.id === 'pinpoint' && sc.callLog) {
    // The api-key policy must be on (a request without the key is refused by it) and the call log
    // must record the AI call with its tokens, or this is not the configuration the figures claim.
    const denied = await probe(sc.port, 'POST', sc.path(mode), chatBody(mode), { 'content-type': 'application/json' });
    if (denied.status !== 401 || denied.headers['x-pinpoint-policy'] !== 'bench-key') {
      throw new Error(`pre-flight ${what}: a request without the key got ${denied.status} from ${String(denied.headers['x-pinpoint-policy'] ?? 'no policy')}, expected 401 from bench-key`);
    }
    const row = await callLogRow(sc.callLog, String(r.headers['x-request-id'] ?? ''));
    if (row.status !== 200 || row.consumer !== 'bench-client' || row.tokens_in !== MOCK_USAGE.prompt_tokens || row.tokens_out !== MOCK_USAGE.completion_tokens || row.stream !== (mode === 'stream' ? 1 : 0)) {
      throw new Error(`pre-flight ${what}: the call-log row is not the expected one: ${JSON.stringify(row)}`);
    }
    note += `; no key → 401 bench-key; call log row: ${MOCK_USAGE.prompt_tokens}+${MOCK_USAGE.completion_tokens} tokens, consumer bench-client`;
  }
  return note;
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
    socketErrors: { connect: Number(sock?.[1] ?? 0), read: Number(sock?.[2] ?? 0), write: Number(sock?.[3] ?? 0), timeout: Number(sock?.[4] ?? 0) },
  };
}

let wrkBin = '';

async function runWrk(sc: Scenario, mode: Mode, kind: Kind, seconds: number, logFile: string): Promise<WrkResult> {
  const args = [`-t${settings.threads}`, `-c${kindConnections(kind)}`, `-d${wrkDuration(seconds)}`, '--latency', '-s', LUA_SCRIPT, `http://127.0.0.1:${sc.port}${sc.path(mode)}`];
  const [file, argv] = pinning ? [tasksetBin ?? 'taskset', ['-c', String(settings.loadCpu), wrkBin, ...args]] : [wrkBin, args];
  const child = spawn(file, argv, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BENCH_AI_MODEL: MODE_INFO[mode].model, BENCH_AI_STREAM: mode === 'stream' ? '1' : '0', BENCH_AI_KEY: '', BENCH_PORTKEY_CUSTOM_HOST: '', ...sc.env(mode) },
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
    return parseWrk(out);
  } finally {
    clearTimeout(timer);
    abort.signal.removeEventListener('abort', onAbort);
    managed.splice(managed.indexOf(m), 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Starting the mock and the gateways

function nginxExtraTempPaths(nginxBin: string, prefix: string): string {
  const r = spawnSync(nginxBin, ['-V'], { encoding: 'utf8', timeout: 10_000 });
  const v = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return ['proxy', 'fastcgi', 'uwsgi', 'scgi']
    .filter((mod) => !v.includes(`--without-http_${mod}_module`))
    .map((mod) => `${mod}_temp_path ${prefix}/mock-${mod}-temp;`)
    .join('\n    ');
}

function renderTemplate(templateFile: string, values: Record<string, string>): string {
  let text = readFileSync(templateFile, 'utf8');
  for (const [k, v] of Object.entries(values)) text = text.split(`{{${k}}}`).join(v);
  const left = /\{\{[A-Z_]+\}\}/.exec(text);
  if (left) throw new Error(`${templateFile}: placeholder ${left[0]} not filled`);
  return text;
}

async function startMock(nginxBin: string, tmp: string, port: number): Promise<Managed> {
  const conf = join(tmp, 'mock.conf');
  writeFileSync(
    conf,
    renderTemplate(MOCK_TEMPLATE, {
      USER: process.getuid?.() === 0 ? 'user root;' : '',
      PREFIX: tmp,
      EXTRA_TEMP_PATHS: nginxExtraTempPaths(nginxBin, tmp),
      PORT: String(port),
      JSON_BODY: nginxString(mockJsonBody()),
      STREAM_BODY: nginxString(mockStreamBody()),
    }),
  );
  const m = startProcess('mock provider (nginx)', nginxBin, ['-p', tmp, '-e', join(tmp, 'mock-error.log'), '-c', conf, '-g', 'daemon off;'], pinning ? settings.loadCpu : null, join(tmp, 'mock.out'), tmp);
  await waitReady(m, port);
  return m;
}

/**
 * Copies a Pinpoint AI config into the temp dir with its listen port, every provider's base_url
 * port (the path, which picks the mock's answer, is kept) and the call log's path rewritten.
 * Returns the config file and the call log's file (null when the log is off).
 */
function writePinpointConfig(source: string, tmp: string, name: string, port: number, mockPort: number): { config: string; callLog: string | null } {
  const doc: Document.Parsed = parseDocument(readFileSync(source, 'utf8'));
  if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
  doc.setIn(['listen', 'port'], port);
  const providers = doc.getIn(['ai', 'providers']);
  if (!isMap(providers)) throw new Error(`${source}: no ai.providers`);
  for (const id of providers.items.map((pair) => String(isScalar(pair.key) ? pair.key.value : pair.key))) {
    const base = doc.getIn(['ai', 'providers', id, 'base_url']);
    if (typeof base !== 'string') throw new Error(`${source}: ai.providers.${id}.base_url is missing`);
    const url = new URL(base);
    url.port = String(mockPort);
    doc.setIn(['ai', 'providers', id, 'base_url'], url.toString().replace(/\/$/, ''));
  }
  let callLog: string | null = null;
  if (doc.getIn(['call_log', 'enabled']) === true) {
    callLog = join(tmp, `${name}-calls.db`);
    doc.setIn(['call_log', 'path'], `${name}-calls.db`);
  }
  const hash = doc.getIn(['consumers', 0, 'credentials', 'api_keys', 0, 'hash']);
  if (hash !== undefined && hash !== `sha256:${createHash('sha256').update(API_KEY).digest('hex')}`) {
    throw new Error(`${source}: the api key hash is not sha256 of ${API_KEY}`);
  }
  const out = join(tmp, `${name}.yaml`);
  writeFileSync(out, doc.toString());
  return { config: out, callLog };
}

async function startPinpoint(name: ScenarioId, configSource: string, tmp: string, port: number, mockPort: number): Promise<{ proc: Managed; callLog: string | null }> {
  if (!existsSync(PINPOINT_BIN)) throw new Error(`${PINPOINT_BIN} does not exist (yet)`);
  const { config, callLog } = writePinpointConfig(configSource, tmp, name, port, mockPort);
  const proc = startProcess(
    name,
    process.execPath,
    [PINPOINT_BIN, 'start', '--config', config, '--port', String(port)],
    pinning ? settings.proxyCpu : null,
    join(tmp, `${name}.out`),
    ROOT,
    { BENCH_PROVIDER_KEY: PROVIDER_KEY },
  );
  await waitReady(proc, port);
  return { proc, callLog };
}

/**
 * Portkey's gateway as its README starts it (`build/start-server.js --port=N --headless`), on the
 * same Node as Pinpoint, with bench/ai-loopback.ts preloaded so it listens on 127.0.0.1 only (it
 * has no host option). Custom hosts on loopback are trusted by default (TRUSTED_CUSTOM_HOSTS
 * defaults to localhost, 127.0.0.1, ::1), so nothing else is configured.
 */
async function startPortkey(tmp: string, port: number): Promise<Managed> {
  if (!existsSync(PORTKEY_ENTRY)) throw new Error(`${PORTKEY_ENTRY} does not exist: run npm ci (@portkey-ai/gateway is a devDependency)`);
  const proc = startProcess(
    'portkey',
    process.execPath,
    ['--import', LOOPBACK_PRELOAD, PORTKEY_ENTRY, `--port=${port}`, '--headless'],
    pinning ? settings.proxyCpu : null,
    join(tmp, 'portkey.out'),
    ROOT,
  );
  await waitReady(proc, port);
  return proc;
}

/** The @hono/node-server Portkey resolves (its streaming needs 1.13.x, pinned through npm overrides). */
function portkeyNodeServerVersion(): string | null {
  for (const dir of [join(PORTKEY_DIR, 'node_modules'), join(ROOT, 'node_modules')]) {
    const v = packageVersion(join(dir, '@hono', 'node-server', 'package.json'));
    if (v !== null) return v;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Runs and the report

interface RunRecord {
  round: number;
  position: number;
  scenario: ScenarioId;
  mode: Mode;
  kind: Kind;
  connections: number;
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

interface SummaryRow {
  scenario: ScenarioId;
  mode: Mode;
  loadRuns: number;
  latencyRuns: number;
  rps: number | null;
  p50ms: number | null;
  p99ms: number | null;
  /** req/s ÷ Portkey's, within a round. */
  perPortkey: number | null;
  lowP50ms: number | null;
  lowP99ms: number | null;
  /** p50 − direct's p50 at the latency run's concurrency, within a round. */
  addedP50ms: number | null;
  proxyCpuUsPerReq: number | null;
  proxyRssMiB: number | null;
  error: string | null;
}

function summarize(scenarios: Scenario[], runs: RunRecord[]): SummaryRow[] {
  const ok = (r: RunRecord): r is RunRecord & { wrk: WrkResult } => r.valid && r.wrk !== null;
  const rows: SummaryRow[] = [];
  for (const mode of settings.modes) {
    for (const sc of scenarios) {
      const mine = (kind: Kind): (RunRecord & { wrk: WrkResult })[] => runs.filter((r): r is RunRecord & { wrk: WrkResult } => ok(r) && r.scenario === sc.id && r.mode === mode && r.kind === kind);
      const baseOf = (r: RunRecord, scenario: ScenarioId): WrkResult | null => runs.find((x) => ok(x) && x.round === r.round && x.scenario === scenario && x.mode === mode && x.kind === r.kind)?.wrk ?? null;
      const load = mine('load');
      const low = mine('latency');
      const perPortkey: number[] = [];
      for (const r of load) {
        const b = baseOf(r, 'portkey');
        if (b && b.rps > 0) perPortkey.push(r.wrk.rps / b.rps);
      }
      const added: number[] = [];
      for (const r of low) {
        const b = baseOf(r, 'direct');
        if (b) added.push(r.wrk.p50ms - b.p50ms);
      }
      const lastError = [...runs].reverse().find((r) => r.scenario === sc.id && r.mode === mode && r.error)?.error ?? null;
      rows.push({
        scenario: sc.id,
        mode,
        loadRuns: load.length,
        latencyRuns: low.length,
        rps: median(load.map((r) => r.wrk.rps)),
        p50ms: median(load.map((r) => r.wrk.p50ms)),
        p99ms: median(load.map((r) => r.wrk.p99ms)),
        perPortkey: median(perPortkey),
        lowP50ms: median(low.map((r) => r.wrk.p50ms)),
        lowP99ms: median(low.map((r) => r.wrk.p99ms)),
        addedP50ms: median(added),
        proxyCpuUsPerReq: median(load.flatMap((r) => (r.proxyCpuUsPerReq === null ? [] : [r.proxyCpuUsPerReq]))),
        proxyRssMiB: load.at(-1)?.proxyRssMiB ?? null,
        error: sc.error ?? (load.length + low.length === 0 ? lastError : null),
      });
    }
  }
  return rows;
}

const fmtNum = (v: number | null, digits: number): string => (v === null ? '–' : v.toFixed(digits));
const fmtSigned = (v: number | null): string => (v === null ? '–' : `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)}`);

function printTable(rows: SummaryRow[]): void {
  const c = settings.connections;
  const lc = settings.latencyConnections;
  const header = ['scenario', 'mode', `req/s c=${c}`, `p50 ms c=${c}`, `p99 ms c=${c}`, '÷ portkey', `p50 ms c=${lc}`, `p99 ms c=${lc}`, `added p50 ms c=${lc}`, 'proxy CPU µs/req', 'proxy RSS MiB'];
  const body = rows.map((r) => [
    r.scenario,
    r.mode,
    r.rps === null ? '–' : Math.round(r.rps).toLocaleString('en-US'),
    fmtNum(r.p50ms, 2),
    fmtNum(r.p99ms, 2),
    fmtNum(r.perPortkey, 2),
    fmtNum(r.lowP50ms, 3),
    fmtNum(r.lowP99ms, 3),
    r.scenario === 'direct' ? '–' : fmtSigned(r.addedP50ms),
    fmtNum(r.proxyCpuUsPerReq, 1),
    fmtNum(r.proxyRssMiB, 0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join(' | ')} |`;
  log(line(header));
  log(`|${widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const row of body) log(line(row));
  for (const r of rows) if (r.error) log(`  ${r.scenario} ${r.mode}: not measured: ${r.error.split('\n')[0] ?? ''}`);
}

interface TargetResult {
  name: string;
  mode: Mode;
  value: number | null;
  pass: boolean | null;
}

/** The issue's targets, for the scenario a user runs (`pinpoint`: api-key policy and call log on). */
function checkTargets(rows: SummaryRow[]): TargetResult[] {
  const out: TargetResult[] = [];
  for (const mode of settings.modes) {
    const row = rows.find((r) => r.scenario === 'pinpoint' && r.mode === mode);
    const ratio = row?.perPortkey ?? null;
    const added = row?.addedP50ms ?? null;
    out.push({ name: `Pinpoint ≥ ${TARGET_RATIO} × Portkey req/s`, mode, value: ratio, pass: ratio === null ? null : ratio >= TARGET_RATIO });
    out.push({ name: `Pinpoint added p50 ≤ ${TARGET_ADDED_P50_MS} ms (c=${settings.latencyConnections}, vs direct)`, mode, value: added, pass: added === null ? null : added <= TARGET_ADDED_P50_MS });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const startedAt = new Date();
  log(`Pinpoint AI gateway benchmark — ${startedAt.toISOString()}`);
  log(`node ${process.version} (${process.execPath}); ${cpus()[0]?.model ?? '?'}; ${availableParallelism()} CPUs available`);

  wrkBin = ensureDebianTool('wrk', ['wrk']);
  const nginxBin = ensureDebianTool('nginx', ['nginx-light', 'nginx']);
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
      ? `CPU pinning: gateway under test → CPU ${settings.proxyCpu} (taskset -c ${settings.proxyCpu}); wrk + mock provider → CPU ${settings.loadCpu} (taskset -c ${settings.loadCpu})`
      : `CPU pinning: ${pinningNote} — figures are less comparable`,
  );
  const versions = {
    node: process.version,
    nginx: versionOf(nginxBin, ['-v']),
    wrk: versionOf(wrkBin, ['-v']),
    portkey: packageVersion(join(PORTKEY_DIR, 'package.json')),
    honoNodeServer: portkeyNodeServerVersion(),
    hono: packageVersion(join(ROOT, 'node_modules', 'hono', 'package.json')),
  };
  log(`${versions.nginx}; ${versions.wrk}`);
  log(`@portkey-ai/gateway ${versions.portkey ?? '(missing)'}, @hono/node-server ${versions.honoNodeServer ?? '(missing)'}, hono ${versions.hono ?? '?'}`);
  if (settings.scenarios.includes('portkey') && versions.honoNodeServer !== null && !versions.honoNodeServer.startsWith('1.13.')) {
    log(`⚠ Portkey's streaming needs @hono/node-server 1.13.x (npm overrides in package.json); found ${versions.honoNodeServer}`);
  }
  log(
    `load: wrk -t${settings.threads} -c${settings.connections} -d${wrkDuration(settings.durationSec)} --latency (throughput), ` +
      `-c${settings.latencyConnections} -d${wrkDuration(settings.latencyDurationSec)} (latency); POST ${CHAT_PATH} ` +
      `${settings.modes.map((m) => `${m} (${chatBody(m).length} B)`).join(' and ')}; mock answers ${mockJsonBody().length} B JSON, ${mockStreamBody().length} B SSE; ` +
      `${settings.rounds} round(s), warm-up ${settings.warmupSec}s per scenario and mode`,
  );

  const taken = new Set<number>();
  const ports = {
    mock: await choosePort('BENCH_MOCK_PORT', 19111, taken),
    'pinpoint-bare': await choosePort('BENCH_PINPOINT_BARE_PORT', 19181, taken),
    pinpoint: await choosePort('BENCH_PINPOINT_PORT', 19182, taken),
    portkey: await choosePort('BENCH_PORTKEY_PORT', 19183, taken),
  };
  log(`ports: mock ${ports.mock}, pinpoint ${ports.pinpoint}, pinpoint-bare ${ports['pinpoint-bare']}, portkey ${ports.portkey}`);

  const tmp = mkdtempSync(join(tmpdir(), 'pinpoint-ai-bench-'));
  const runs: RunRecord[] = [];
  const scenarios: Scenario[] = [];
  let exitCode = 0;
  let fatal: string | null = null;

  const kinds: Kind[] = ['load', 'latency'];
  const perMode = (settings.warmupSec > 0 ? Math.ceil(settings.warmupSec) + 3 : 0) + settings.rounds * (Math.ceil(settings.durationSec) + Math.ceil(settings.latencyDurationSec) + 6);
  const budgetSec = settings.scenarios.length * (settings.startTimeoutSec + 10) + settings.scenarios.length * settings.modes.length * perMode + 60;
  log(`expected ≈ ${Math.round(settings.scenarios.length * settings.modes.length * (perMode - 3 * settings.rounds))}s; hard limit ${budgetSec}s`);
  const deadline = setTimeout(() => {
    log(`\nhard time limit (${budgetSec}s) reached: stopping`);
    abort.abort('deadline');
  }, budgetSec * 1000);
  deadline.unref();

  try {
    const mock = await startMock(nginxBin, tmp, ports.mock);
    log(`started mock provider nginx pid ${mock.pid} on 127.0.0.1:${ports.mock}, CPUs ${cpusAllowed(mock.pid)}`);
    const mockBase = (mode: Mode): string => `http://127.0.0.1:${ports.mock}${MODE_INFO[mode].mockBase}`;

    for (const id of settings.scenarios) {
      const sc: Scenario = {
        id,
        port: id === 'direct' ? ports.mock : ports[id],
        proxy: null,
        path: (mode) => (id === 'direct' ? `${MODE_INFO[mode].mockBase}/chat/completions` : CHAT_PATH),
        // Every scenario gets `Authorization: Bearer <key>`: Pinpoint checks it, Portkey forwards
        // it to the mock as the provider key, the mock ignores it; so the requests differ only in
        // what a gateway needs (Portkey's two routing headers).
        env: (mode) => ({ BENCH_AI_KEY: API_KEY, ...(id === 'portkey' ? { BENCH_PORTKEY_CUSTOM_HOST: mockBase(mode) } : {}) }),
        callLog: null,
        error: null,
      };
      scenarios.push(sc);
      try {
        if (id === 'pinpoint' || id === 'pinpoint-bare') {
          const started = await startPinpoint(id, join(BENCH_DIR, 'configs', id === 'pinpoint' ? 'ai.yaml' : 'ai-bare.yaml'), tmp, sc.port, ports.mock);
          sc.proxy = started.proc;
          sc.callLog = started.callLog;
        } else if (id === 'portkey') {
          sc.proxy = await startPortkey(tmp, sc.port);
        }
        const notes: string[] = [];
        for (const mode of settings.modes) notes.push(`${mode}: ${await preflight(sc, mode)}`);
        log(
          (sc.proxy ? `started ${id} pid ${sc.proxy.pid} on 127.0.0.1:${sc.port}, CPUs ${cpusAllowed(sc.proxy.pid)}, RSS ${treeRssMiB(sc.proxy.pid).toFixed(0)} MiB idle` : `${id}: 127.0.0.1:${sc.port}`) +
            `; pre-flight OK (${notes.join('; ')})`,
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

    const live = scenarios.filter((s) => s.error === null);
    const plan = live.flatMap((sc) => settings.modes.flatMap((mode) => kinds.map((kind) => ({ sc, mode, kind }))));

    if (settings.warmupSec > 0 && plan.length > 0) {
      log(`\nwarm-up: ${settings.warmupSec}s each at c=${settings.connections}`);
      for (const sc of live) {
        for (const mode of settings.modes) {
          if (abort.signal.aborted) break;
          try {
            await runWrk(sc, mode, 'load', settings.warmupSec, join(tmp, `warmup-${sc.id}-${mode}.txt`));
          } catch (err) {
            log(`  warm-up ${sc.id} ${mode}: ${errorText(err)}`);
          }
        }
      }
    }

    for (let round = 1; round <= settings.rounds && !abort.signal.aborted; round++) {
      const order = shuffle(plan);
      log(`\nround ${round}/${settings.rounds}: ${order.length} runs in random order`);
      for (const [position, { sc, mode, kind }] of order.entries()) {
        if (abort.signal.aborted) break;
        const connections = kindConnections(kind);
        const rec: RunRecord = { round, position, scenario: sc.id, mode, kind, connections, valid: false, error: null, wrk: null, proxyCpuUsPerReq: null, proxyRssMiB: null, foreignCpuPct: null };
        runs.push(rec);
        const label = `${sc.id} ${mode} c=${connections}`.padEnd(26);
        try {
          if (sc.proxy?.exited) throw new Error(`${sc.proxy.name} has exited (${sc.proxy.exitInfo}): ${tail(sc.proxy.logFile, 5)}`);
          if (mock.exited) throw new Error(`the mock provider has exited (${mock.exitInfo})`);
          const cpu0 = sc.proxy ? treeCpuSec(sc.proxy.pid) : 0;
          const foreign0 = foreignCpuSec();
          const t0 = performance.now();
          const result = await runWrk(sc, mode, kind, kindSeconds(kind), join(tmp, `r${round}-${sc.id}-${mode}-${kind}.txt`));
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
            `  ${label} ${Math.round(result.rps).toLocaleString('en-US').padStart(8)} req/s  ` +
              `p50 ${result.p50ms.toFixed(kind === 'latency' ? 3 : 2)} ms  p99 ${result.p99ms.toFixed(kind === 'latency' ? 3 : 2)} ms` +
              (rec.proxyCpuUsPerReq === null ? '' : `  gateway CPU ${rec.proxyCpuUsPerReq.toFixed(1)} µs/req, RSS ${rec.proxyRssMiB?.toFixed(0)} MiB`) +
              (rec.foreignCpuPct > NOISY_PCT ? `  ⚠ noisy: other processes used ${rec.foreignCpuPct.toFixed(0)}% of a core` : '') +
              (rec.valid ? '' : `  ✗ excluded: ${rec.error}`),
          );
        } catch (err) {
          rec.error = errorText(err);
          if (!abort.signal.aborted) log(`  ${label} ✗ ${rec.error}`);
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
        `÷ portkey and added p50 taken within each round. c=${settings.connections}: throughput run; ` +
        `c=${settings.latencyConnections}: latency run (added p50 = its p50 − direct's p50 at c=${settings.latencyConnections}).`,
    );
    log('pinpoint = AI route + api-key policy + call log (bench/configs/ai.yaml); pinpoint-bare = the route alone (ai-bare.yaml).');
    printTable(rows);
    const measured = runs.filter((r) => r.wrk);
    const noisy = measured.filter((r) => (r.foreignCpuPct ?? 0) > NOISY_PCT);
    if (noisy.length > 0) {
      log(
        `⚠ ${noisy.length} of ${measured.length} runs shared the machine with other work (> ${NOISY_PCT}% of a core, ` +
          `up to ${Math.max(...noisy.map((r) => r.foreignCpuPct ?? 0)).toFixed(0)}%): re-run on a quiet machine before trusting the figures`,
      );
    }
    log('\nTargets (scenario pinpoint):');
    for (const t of targets) {
      const verdict = t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'MISS';
      const value = t.value === null ? '– (not measured)' : t.name.includes('×') ? `${t.value.toFixed(2)}×` : `${fmtSigned(t.value)} ms`;
      log(`  ${verdict}  ${t.name}, ${t.mode}: ${value}`);
    }
  }

  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultFile = join(RESULTS_DIR, `ai-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    resultFile,
    `${JSON.stringify(
      {
        benchmark: 'ai',
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        interrupted: abort.signal.aborted ? String(abort.signal.reason) : null,
        fatal,
        versions,
        cpu: { model: cpus()[0]?.model ?? null, available: availableParallelism(), pinning: pinning ? { gateway: settings.proxyCpu, loadAndMock: settings.loadCpu } : null, note: pinningNote || null },
        settings: { ...settings, chatPath: CHAT_PATH, requestBodies: Object.fromEntries(settings.modes.map((m) => [m, chatBody(m)])), mockJsonBytes: mockJsonBody().length, mockStreamBytes: mockStreamBody().length },
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
