/**
 * What the benchmark scripts (bench/run.ts, bench/ai.ts) share: reading BENCH_* settings, finding
 * and installing wrk and nginx, CPU pinning with taskset, free ports, child processes and their
 * cleanup on exit and Ctrl-C, /proc accounting, HTTP probes, wrk runs and their output, nginx from a
 * template, starting Pinpoint, and the report (medians, the table, the results file).
 *
 * Each script keeps its own scenarios, requests, pre-flight checks, summary and targets.
 *
 * State kept here, one per process: the child processes started (stopped by stopAll() and on
 * exit), the abort controller that signals and the hard time limit fire, and the tools found by
 * prepareTools() (wrk, nginx, taskset, the clock tick rate), which startProcess(), runWrk() and
 * startNginx() use.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { isScalar, parseDocument, type Document, type YAMLMap } from 'yaml';

// ---------------------------------------------------------------------------------------------
// Paths and the api key

/** This folder (bench/). */
export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
/** The repository root. */
export const ROOT = resolve(BENCH_DIR, '..');
/** Where each run's raw results go (git ignores it). */
const RESULTS_DIR = join(BENCH_DIR, 'results');
/** The Pinpoint under test: BENCH_PINPOINT_BIN, or this checkout's bin/pinpoint.js. */
export const PINPOINT_BIN = resolve(process.env.BENCH_PINPOINT_BIN || join(ROOT, 'bin', 'pinpoint.js'));
/** The api key the bench's consumers hold (the configs in bench/configs/ hold its SHA-256). */
export const API_KEY = 'pp_bench_0123456789abcdef';

// ---------------------------------------------------------------------------------------------
// Settings from the environment

/** Seconds from "10s", "500ms", "1m" or a bare number of seconds. */
export function parseSeconds(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m?.[1]) throw new Error(`${what}: cannot read "${text}" as a duration (e.g. 10s, 1m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n / 1000 : unit === 'm' ? n * 60 : unit === 'h' ? n * 3600 : n;
}

/** An integer in min..max from the variable `name`; `dflt` when it is unset or empty. */
export function envInt(name: string, dflt: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}=${raw}: expected an integer in ${min}..${max}`);
  return n;
}

/**
 * A comma-separated list from the variable `name`, each item one of `allowed` (any case), without
 * repeats, in the order given; `dflt` when it is unset or empty.
 */
export function envList<T extends string>(name: string, allowed: readonly T[], dflt: readonly T[]): T[] {
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

/** wrk's -d for a duration: a whole number of seconds, at least 1 (others are rounded up). */
export const wrkDuration = (sec: number): string => `${Math.max(1, Math.ceil(sec))}s`;

/** The settings both scripts read alike; they end each script's settings, in this order. */
export interface CommonSettings<T extends string> {
  /** BENCH_SCENARIOS: which to run (default: all). */
  scenarios: T[];
  /** BENCH_PROXY_CPU (0): the CPU of the proxy or gateway under test. */
  proxyCpu: number;
  /** BENCH_LOAD_CPU (1): the CPU of wrk and the upstream or mock. */
  loadCpu: number;
  /** BENCH_KEEP_TMP=1: keep the configs and logs. */
  keepTmp: boolean;
  /** BENCH_STRICT=1: exit 2 when a target is missed. */
  strict: boolean;
}

/** Reads the CommonSettings; `scenarioIds` are the script's scenarios, all run by default. */
export function commonSettings<T extends string>(scenarioIds: readonly T[]): CommonSettings<T> {
  return {
    scenarios: envList<T>('BENCH_SCENARIOS', scenarioIds, scenarioIds),
    proxyCpu: envInt('BENCH_PROXY_CPU', 0, 0, 4095),
    loadCpu: envInt('BENCH_LOAD_CPU', 1, 0, 4095),
    keepTmp: process.env.BENCH_KEEP_TMP === '1',
    strict: process.env.BENCH_STRICT === '1',
  };
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Writes one line to stdout. */
export function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The median, or null for no values. */
export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? null) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** A shuffled copy (Fisher–Yates). */
export function shuffle<T>(items: T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const tmp = a[i] as T;
    a[i] = a[j] as T;
    a[j] = tmp;
  }
  return a;
}

/** An error's message, or the thrown value as text. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The last lines of a log file, or "(no log)". */
export function tail(file: string, lines = 15): string {
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

/** The first line a program prints for its version option (`-v`, `--version`). */
function versionOf(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 10_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '?';
}

/** Installs a Debian package when its program is missing; `apt-get update` only if the first try fails. */
export function ensureDebianTool(bin: string, packages: string[]): string {
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

// ---------------------------------------------------------------------------------------------
// Tools and CPU pinning

/** The programs the bench runs; empty until prepareTools(). */
export interface Tools {
  wrk: string;
  nginx: string;
  /** null: not found, so nothing is pinned. */
  taskset: string | null;
}

const tools: Tools = { wrk: '', nginx: '', taskset: null };
let clockTicks = 100;

/**
 * Finds wrk and nginx (installing them from Debian when missing; nginx serves the upstream or mock,
 * whatever the scenarios), looks for taskset, and reads the clock tick rate for /proc accounting.
 */
export function prepareTools(): Tools {
  tools.wrk = ensureDebianTool('wrk', ['wrk']);
  tools.nginx = ensureDebianTool('nginx', ['nginx-light', 'nginx']);
  tools.taskset = findBin('taskset');
  const clk = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  if (clk.status === 0 && Number(clk.stdout) > 0) clockTicks = Number(clk.stdout);
  return tools;
}

/** node, nginx and wrk versions, for the header and the results file. */
export function toolVersions(): { node: string; nginx: string; wrk: string } {
  return { node: process.version, nginx: versionOf(tools.nginx, ['-v']), wrk: versionOf(tools.wrk, ['-v']) };
}

/** The first header line: node, the CPU model and how many CPUs this process may use. */
function machineLine(): string {
  return `node ${process.version} (${process.execPath}); ${cpus()[0]?.model ?? '?'}; ${availableParallelism()} CPUs available`;
}

/** A CPU list as in /proc ("0-3,8") as a set. */
function parseCpuList(list: string): Set<number> {
  const out = new Set<number>();
  for (const part of list.trim().split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    for (let c = a; c <= (b ?? a); c++) out.add(c);
  }
  return out;
}

/** The CPUs a process may run on (Cpus_allowed_list), or "?". */
export function cpusAllowed(pid: number | 'self'): string {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ?? '?';
  } catch {
    return '?';
  }
}

/**
 * Why the proxy and the load cannot be pinned to their CPUs, as "none: …"; '' when they can
 * (taskset found, two different CPUs, both allowed to this process). Call after prepareTools().
 */
function pinningProblem(proxyCpu: number, loadCpu: number): string {
  const allowed = parseCpuList(cpusAllowed('self'));
  return !tools.taskset
    ? 'none: taskset not found'
    : proxyCpu === loadCpu
      ? 'none: BENCH_PROXY_CPU equals BENCH_LOAD_CPU'
      : !allowed.has(proxyCpu) || !allowed.has(loadCpu)
        ? `none: CPUs ${proxyCpu} and ${loadCpu} are not both allowed here (allowed: ${cpusAllowed('self')})`
        : '';
}

/**
 * Prints the machine line, prepares the tools (prepareTools) and decides the CPU pinning, which it
 * prints: `proxyRole` on proxyCpu, `loadRole` on loadCpu. Returns '' when pinned, else why not.
 */
export function setUpMachine(proxyCpu: number, loadCpu: number, proxyRole: string, loadRole: string): string {
  log(machineLine());
  prepareTools();
  const problem = pinningProblem(proxyCpu, loadCpu);
  log(
    problem === ''
      ? `CPU pinning: ${proxyRole} → CPU ${proxyCpu} (taskset -c ${proxyCpu}); ${loadRole} → CPU ${loadCpu} (taskset -c ${loadCpu})`
      : `CPU pinning: ${problem} — figures are less comparable`,
  );
  return problem;
}

/** The results file's `cpu`: the model, how many CPUs, the pinning used (null: none) and why not. */
export function cpuReport<P extends object>(pinning: P | null, problem: string): { model: string | null; available: number; pinning: P | null; note: string | null } {
  return { model: cpus()[0]?.model ?? null, available: availableParallelism(), pinning, note: problem || null };
}

/** The program and arguments that run `cmd args` on one CPU (taskset -c), or as is for null. */
function pinned(cpu: number | null, cmd: string, args: string[]): [string, string[]] {
  return cpu === null ? [cmd, args] : [tools.taskset ?? 'taskset', ['-c', String(cpu), cmd, ...args]];
}

// ---------------------------------------------------------------------------------------------
// Ports

/** Whether 127.0.0.1:port can be listened on now. */
async function portIsFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = net.createServer();
    srv.once('error', () => res(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => res(true)));
  });
}

/**
 * The port the variable `envName` names, which must be free; else the first free one from `dflt`
 * on (200 tried). `taken` collects the ports chosen so far, so no two are the same.
 */
export async function choosePort(envName: string, dflt: number, taken: Set<number>): Promise<number> {
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

/** A child process the bench started. */
export interface Managed {
  name: string;
  child: ChildProcess;
  pid: number;
  logFile: string;
  exited: boolean;
  exitInfo: string;
}

const managed: Managed[] = [];

/**
 * Fired by SIGINT, SIGTERM or SIGHUP (the signal's name is the reason) and by the hard time limit
 * ('deadline'): the scripts stop measuring and report what they have.
 */
export const abort = new AbortController();

/**
 * Starts `cmd args` in its own process group, on CPU `cpu` (taskset -c; null: anywhere), with its
 * stdout and stderr appended to `logFile`. stopAll() and the exit handlers end it.
 */
export function startProcess(name: string, cmd: string, args: string[], cpu: number | null, logFile: string, cwd: string, extraEnv: Record<string, string> = {}): Managed {
  const fd = openSync(logFile, 'a');
  const [file, argv] = pinned(cpu, cmd, args);
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

/** Sends a signal to a child's whole process group (nothing if it is gone). */
export function signalGroup(m: Managed, sig: NodeJS.Signals): void {
  try {
    process.kill(-m.pid, sig);
  } catch {
    // already gone
  }
}

/** Ends every child: SIGTERM, up to 3 s to exit, then SIGKILL to every group. */
export async function stopAll(): Promise<void> {
  const live = managed.filter((m) => !m.exited);
  for (const m of live) signalGroup(m, 'SIGTERM');
  const deadline = Date.now() + 3000;
  while (live.some((m) => !m.exited) && Date.now() < deadline) await sleep(50);
  for (const m of live) if (!m.exited) signalGroup(m, 'SIGKILL');
  // Workers of a group whose leader already exited: one last sweep.
  for (const m of managed) signalGroup(m, 'SIGKILL');
}

/**
 * Kills every child when the process exits, and turns SIGINT, SIGTERM and SIGHUP into abort (the
 * results so far are still reported); a second signal kills the children and exits with 130.
 */
export function installStopHandlers(): void {
  process.on('exit', () => {
    for (const m of managed) if (!m.exited) signalGroup(m, 'SIGKILL');
  });
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
}

/** Fires abort with reason 'deadline' after `budgetSec`; clear the timer when the run is over. */
function startDeadline(budgetSec: number): NodeJS.Timeout {
  const deadline = setTimeout(() => {
    log(`\nhard time limit (${budgetSec}s) reached: stopping`);
    abort.abort('deadline');
  }, budgetSec * 1000);
  deadline.unref();
  return deadline;
}

/**
 * Runs the start-ups and measurements under the hard time limit (startDeadline). An error is
 * printed (unless interrupted) and returned as fatal, with exit code 1; every child is stopped at
 * the end either way.
 */
export async function measureWithin(budgetSec: number, body: () => Promise<void>): Promise<{ exitCode: number; fatal: string | null }> {
  const deadline = startDeadline(budgetSec);
  try {
    await body();
    return { exitCode: 0, fatal: null };
  } catch (err) {
    const fatal = errorText(err);
    if (!abort.signal.aborted) log(`\n✗ ${fatal}`);
    return { exitCode: 1, fatal };
  } finally {
    clearTimeout(deadline);
    await stopAll();
  }
}

/**
 * Runs the script's main and exits with its code; on an uncaught error, prints it, stops every
 * child and exits with 1.
 */
export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    async (err: unknown) => {
      log(`✗ ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      await stopAll();
      process.exit(1);
    },
  );
}

/**
 * The exit code: 3 after the hard time limit, 130 after a signal, 2 when `strict` and a target was
 * missed (and nothing else failed), else `exitCode`.
 */
export function finalExitCode(exitCode: number, strict: boolean, targets: readonly { pass: boolean | null }[]): number {
  if (abort.signal.aborted) return abort.signal.reason === 'deadline' ? 3 : 130;
  if (exitCode === 0 && strict && targets.some((t) => t.pass === false)) return 2;
  return exitCode;
}

// ---------------------------------------------------------------------------------------------
// /proc accounting: CPU time and RSS of a process and all its descendants.

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
export function treeCpuSec(root: number): number {
  const table = scanProc();
  let ticks = 0;
  for (const pid of procTree(root, table)) ticks += table.get(pid)?.ticks ?? 0;
  return ticks / clockTicks;
}

/**
 * CPU seconds used so far by user processes outside this harness (its own tree: wrk, nginx, the
 * gateways): the other work on the machine that makes a run noisy. Kernel threads are left out
 * (ksoftirqd carries the benchmark's own loopback traffic); reaped children count via their parent.
 */
export function foreignCpuSec(): number {
  const table = scanProc();
  const ours = new Set(procTree(process.pid, table));
  let ticks = 0;
  for (const [pid, e] of table) {
    if (ours.has(pid) || pid === 2 || e.ppid === 2) continue;
    ticks += e.ticks + e.childTicks;
  }
  return ticks / clockTicks;
}

/** Resident memory of a process and its descendants, in MiB. */
export function treeRssMiB(root: number): number {
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
// HTTP probes

/** A whole answer to one probe. */
export interface ProbeResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request to 127.0.0.1:port on a new connection; rejects on a socket error or after `timeoutMs`. */
export function probe(port: number, method: string, path: string, body: string | null, headers: Record<string, string>, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((res, rej) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false, timeout: timeoutMs }, (resp) => {
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

/** How long a started process may take to answer, and how long each readiness probe waits. */
export interface ReadyOptions {
  timeoutSec: number;
  probeTimeoutMs: number;
}

/**
 * Waits until `GET /` on the port gets any answer; throws, with the end of the process's log, when
 * it exits first or does not answer within the time, and when the run is interrupted.
 */
export async function waitReady(m: Managed, port: number, ready: ReadyOptions): Promise<void> {
  const deadline = Date.now() + ready.timeoutSec * 1000;
  let last = '';
  while (Date.now() < deadline) {
    if (abort.signal.aborted) throw new Error('interrupted');
    if (m.exited) throw new Error(`${m.name} exited during start-up (${m.exitInfo}); its log:\n${tail(m.logFile)}`);
    try {
      await probe(port, 'GET', '/', null, {}, ready.probeTimeoutMs);
      return;
    } catch (err) {
      last = errorText(err);
    }
    await sleep(100);
  }
  throw new Error(`${m.name} did not answer on 127.0.0.1:${port} within ${ready.timeoutSec}s (${last}); its log:\n${tail(m.logFile)}`);
}

// ---------------------------------------------------------------------------------------------
// wrk

/** What one wrk run reports. */
export interface WrkResult {
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

/** Reads wrk's output (run with --latency): req/s, p50 and p99, totals and errors. */
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

/** One wrk run. */
export interface WrkOptions {
  /** The CPU wrk runs on (taskset -c); null: anywhere. */
  cpu: number | null;
  threads: number;
  connections: number;
  seconds: number;
  /** The Lua script (-s) that shapes the requests. */
  script: string;
  url: string;
  /** wrk's environment besides this process's: what the Lua script reads. */
  env: Record<string, string>;
  /** Where wrk's output is written. */
  logFile: string;
}

/**
 * Runs `wrk -tT -cC -dD --latency -s script url` and parses what it prints. Killed at once when the
 * run is interrupted, and 20 s after its duration if it has not ended.
 */
export async function runWrk(o: WrkOptions): Promise<{ result: WrkResult; raw: string }> {
  const args = [`-t${o.threads}`, `-c${o.connections}`, `-d${wrkDuration(o.seconds)}`, '--latency', '-s', o.script, o.url];
  const [file, argv] = pinned(o.cpu, tools.wrk, args);
  const child = spawn(file, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  if (child.pid === undefined) throw new Error('wrk: spawn failed');
  const m: Managed = { name: 'wrk', child, pid: child.pid, logFile: o.logFile, exited: false, exitInfo: '' };
  managed.push(m);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const onAbort = (): void => signalGroup(m, 'SIGKILL');
  abort.signal.addEventListener('abort', onAbort);
  const timer = setTimeout(() => signalGroup(m, 'SIGKILL'), (Math.ceil(o.seconds) + 20) * 1000);
  try {
    const code = await new Promise<number | string>((res) => {
      child.on('error', (err) => res(err.message));
      child.on('close', (c, sig) => res(sig ?? c ?? -1));
    });
    m.exited = true;
    writeFileSync(o.logFile, out);
    if (abort.signal.aborted) throw new Error('interrupted');
    if (code !== 0) throw new Error(`wrk ended with ${code}: ${out.trim().slice(-400)}`);
    return { result: parseWrk(out), raw: out };
  } finally {
    clearTimeout(timer);
    abort.signal.removeEventListener('abort', onAbort);
    managed.splice(managed.indexOf(m), 1);
  }
}

/** A run during which other processes used more than this (% of one core) is flagged as noisy. */
export const NOISY_PCT = 10;

/** What a measured run records besides its place in the plan. */
export interface Measurement {
  /** Measured, with at most 0.1 % non-2xx answers and socket errors: counted in the medians. */
  valid: boolean;
  error: string | null;
  wrk: WrkResult | null;
  proxyCpuUsPerReq: number | null;
  proxyRssMiB: number | null;
  /** CPU used by other processes on the machine during the run, in % of one core. */
  foreignCpuPct: number | null;
}

/**
 * Runs `run` (a wrk run) and fills `rec` in: the result, the CPU per request and RSS of `proxy`'s
 * process tree (null: none is charged), the CPU other processes used meanwhile, and whether it is
 * valid.
 */
export async function measureRun(rec: Measurement, proxy: Managed | null, run: () => Promise<WrkResult>): Promise<WrkResult> {
  const cpu0 = proxy ? treeCpuSec(proxy.pid) : 0;
  const foreign0 = foreignCpuSec();
  const t0 = performance.now();
  const result = await run();
  rec.foreignCpuPct = ((foreignCpuSec() - foreign0) * 100_000) / (performance.now() - t0);
  rec.wrk = result;
  if (proxy && result.requests > 0) {
    rec.proxyCpuUsPerReq = ((treeCpuSec(proxy.pid) - cpu0) * 1e6) / result.requests;
    rec.proxyRssMiB = treeRssMiB(proxy.pid);
  }
  const e = result.socketErrors;
  const bad = result.non2xx + e.connect + e.read + e.write + e.timeout;
  rec.valid = result.requests > 0 && bad <= result.requests * 0.001;
  if (!rec.valid) rec.error = `${result.non2xx} non-2xx, socket errors ${JSON.stringify(e)} of ${result.requests} requests`;
  return result;
}

/**
 * One run of a round: an error is recorded in `rec` and printed after `label` (unless interrupted);
 * then a 300 ms pause before the next run.
 */
export async function attemptRun(rec: { error: string | null }, label: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    rec.error = errorText(err);
    if (!abort.signal.aborted) log(`  ${label} ✗ ${rec.error}`);
  }
  await sleep(300);
}

/**
 * A scenario that could not start: records and prints its error and stops its process; rethrows
 * when the run was interrupted, since nothing more is measured then.
 */
export function scenarioFailed(sc: { id: string; proxy: Managed | null; error: string | null }, err: unknown): void {
  sc.error = errorText(err);
  log(`✗ ${sc.id}: ${sc.error}`);
  if (sc.proxy) {
    signalGroup(sc.proxy, 'SIGTERM');
    sc.proxy = null;
  }
  if (abort.signal.aborted) throw err;
}

/**
 * The progress line of a measured run: label (already padded), req/s, p50 and p99 with `digits`
 * decimals, `who`'s CPU per request and RSS, a noisy warning, and why it is excluded.
 */
export function runLine(label: string, rec: Measurement, result: WrkResult, digits: number, who: string): string {
  const foreign = rec.foreignCpuPct ?? 0;
  return (
    `  ${label} ${Math.round(result.rps).toLocaleString('en-US').padStart(8)} req/s  ` +
    `p50 ${result.p50ms.toFixed(digits)} ms  p99 ${result.p99ms.toFixed(digits)} ms` +
    (rec.proxyCpuUsPerReq === null ? '' : `  ${who} CPU ${rec.proxyCpuUsPerReq.toFixed(1)} µs/req, RSS ${rec.proxyRssMiB?.toFixed(0)} MiB`) +
    (foreign > NOISY_PCT ? `  ⚠ noisy: other processes used ${foreign.toFixed(0)}% of a core` : '') +
    (rec.valid ? '' : `  ✗ excluded: ${rec.error}`)
  );
}

// ---------------------------------------------------------------------------------------------
// nginx from a template, and Pinpoint

/** The text of a template with every `{{NAME}}` replaced; throws when one is left. */
function renderTemplate(templateFile: string, values: Record<string, string>): string {
  let text = readFileSync(templateFile, 'utf8');
  for (const [k, v] of Object.entries(values)) text = text.split(`{{${k}}}`).join(v);
  const left = /\{\{[A-Z_]+\}\}/.exec(text);
  if (left) throw new Error(`${templateFile}: placeholder ${left[0]} not filled`);
  return text;
}

/** `<module>_temp_path <prefix>/<tag>-<module>-temp;` for each of `modules` this nginx is built with. */
function nginxExtraTempPaths(nginxBin: string, prefix: string, tag: string, modules: readonly string[]): string {
  const r = spawnSync(nginxBin, ['-V'], { encoding: 'utf8', timeout: 10_000 });
  const v = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return modules
    .filter((mod) => !v.includes(`--without-http_${mod}_module`))
    .map((mod) => `${mod}_temp_path ${prefix}/${tag}-${mod}-temp;`)
    .join('\n    ');
}

/** One nginx in the foreground from a template. */
export interface NginxOptions {
  name: string;
  template: string;
  /** The prefix and where its config (<tag>.conf) and logs (<tag>-error.log, <tag>.out) go. */
  tmp: string;
  tag: string;
  /** Placeholders besides USER, PREFIX, EXTRA_TEMP_PATHS and PORT, which are filled here. */
  values: Record<string, string>;
  cpu: number | null;
  port: number;
  /** The modules whose temp path the template leaves to EXTRA_TEMP_PATHS. */
  tempPathModules: readonly string[];
  ready: ReadyOptions;
}

/** Writes the config from the template, starts nginx with it and waits until it answers. */
export async function startNginx(o: NginxOptions): Promise<Managed> {
  const conf = join(o.tmp, `${o.tag}.conf`);
  writeFileSync(
    conf,
    renderTemplate(o.template, {
      USER: process.getuid?.() === 0 ? 'user root;' : '',
      PREFIX: o.tmp,
      EXTRA_TEMP_PATHS: nginxExtraTempPaths(tools.nginx, o.tmp, o.tag, o.tempPathModules),
      PORT: String(o.port),
      ...o.values,
    }),
  );
  const m = startProcess(o.name, tools.nginx, ['-p', o.tmp, '-e', join(o.tmp, `${o.tag}-error.log`), '-c', conf, '-g', 'daemon off;'], o.cpu, join(o.tmp, `${o.tag}.out`), o.tmp);
  await waitReady(m, o.port, o.ready);
  return m;
}

/** A YAML config, parsed; throws with the parser's messages. */
export function readConfig(source: string): Document.Parsed {
  const doc = parseDocument(readFileSync(source, 'utf8'));
  if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
  return doc;
}

/** A YAML map's keys, as text, in file order. */
export function mapKeys(map: YAMLMap): string[] {
  return map.items.map((pair) => String(isScalar(pair.key) ? pair.key.value : pair.key));
}

/** Throws when the config's first consumer has an api key whose hash is not that of API_KEY. */
export function checkApiKeyHash(doc: Document.Parsed, source: string): void {
  const hash = doc.getIn(['consumers', 0, 'credentials', 'api_keys', 0, 'hash']);
  if (hash !== undefined && hash !== `sha256:${createHash('sha256').update(API_KEY).digest('hex')}`) {
    throw new Error(`${source}: the api key hash is not sha256 of ${API_KEY}`);
  }
}

/** Throws when PINPOINT_BIN is missing. */
export function requirePinpoint(): void {
  if (!existsSync(PINPOINT_BIN)) throw new Error(`${PINPOINT_BIN} does not exist (yet)`);
}

/** One Pinpoint from a config already written. */
export interface PinpointOptions {
  name: string;
  config: string;
  /** Where its output goes (<name>.out). */
  tmp: string;
  port: number;
  cpu: number | null;
  /** Its environment besides this process's. */
  env: Record<string, string>;
  ready: ReadyOptions;
}

/** Runs `PINPOINT_BIN start --config … --port …` from the repository root and waits until it answers. */
export async function startPinpoint(o: PinpointOptions): Promise<Managed> {
  const m = startProcess(o.name, process.execPath, [PINPOINT_BIN, 'start', '--config', o.config, '--port', String(o.port)], o.cpu, join(o.tmp, `${o.name}.out`), ROOT, o.env);
  await waitReady(m, o.port, o.ready);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Report

/** A number with `digits` decimals, or "–" for none. */
export const fmtNum = (v: number | null, digits: number): string => (v === null ? '–' : v.toFixed(digits));

/** Prints a Markdown table: the first `leftColumns` columns aligned left, the others right. */
export function printTable(header: string[], body: string[][], leftColumns: number): void {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  log(line(header));
  log(`|${widths.map((w, i) => (i < leftColumns ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const row of body) log(line(row));
}

/** "\nMedian of N round(s)[ (interrupted …: partial)]; ": the start of the line above the table. */
export function medianHeading(runs: readonly { round: number; valid: boolean }[], rounds: number): string {
  const roundsDone = new Set(runs.filter((r) => r.valid).map((r) => r.round)).size;
  return `\nMedian of ${roundsDone} round(s)${abort.signal.aborted ? ` (interrupted after ${roundsDone} of ${rounds}: partial)` : ''}; `;
}

/** Warns when runs shared the machine with other work (see NOISY_PCT); `what` is what not to trust yet. */
export function warnIfNoisy(runs: readonly Measurement[], what: string): void {
  const measured = runs.filter((r) => r.wrk);
  const noisy = measured.filter((r) => (r.foreignCpuPct ?? 0) > NOISY_PCT);
  if (noisy.length > 0) {
    log(
      `⚠ ${noisy.length} of ${measured.length} runs shared the machine with other work (> ${NOISY_PCT}% of a core, ` +
        `up to ${Math.max(...noisy.map((r) => r.foreignCpuPct ?? 0)).toFixed(0)}%): re-run on a quiet machine before trusting the ${what}`,
    );
  }
}

/** What a results file holds, besides the times and whether the run was interrupted. */
export interface Results {
  /** Written first (before startedAt): e.g. which benchmark. */
  head: Record<string, unknown>;
  startedAt: Date;
  fatal: string | null;
  versions: Record<string, unknown>;
  cpu: unknown;
  settings: Record<string, unknown>;
  ports: Record<string, number>;
  /** Each scenario's id, port and error are written. */
  scenarios: readonly { id: string; port: number; error: string | null }[];
  runs: unknown;
  summary: unknown;
  targets: unknown;
}

/**
 * Writes RESULTS_DIR/<prefix><startedAt>.json (":" and "." as "-"), indented: head, startedAt,
 * finishedAt (now), interrupted (the abort reason, or null), fatal, versions, cpu, settings, ports,
 * scenarios, runs, summary, targets. Says where, and returns the file.
 */
export function writeResults(prefix: string, r: Results): string {
  const data = {
    ...r.head,
    startedAt: r.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    interrupted: abort.signal.aborted ? String(abort.signal.reason) : null,
    fatal: r.fatal,
    versions: r.versions,
    cpu: r.cpu,
    settings: r.settings,
    ports: r.ports,
    scenarios: r.scenarios.map((s) => ({ id: s.id, port: s.port, error: s.error })),
    runs: r.runs,
    summary: r.summary,
    targets: r.targets,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultFile = join(RESULTS_DIR, `${prefix}${r.startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(resultFile, `${JSON.stringify(data, null, 2)}\n`);
  log(`\nraw results: ${resultFile}`);
  return resultFile;
}

/** A new temporary folder for a run's configs and logs. */
export function makeTmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Removes the temporary folder, or says where it is kept. */
export function removeTmp(tmp: string, keep: boolean): void {
  if (keep) log(`configs and logs kept in ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}
