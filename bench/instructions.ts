/**
 * Instructions per request of each Pinpoint scenario, counted by valgrind's callgrind:
 *   node bench/instructions.ts
 *
 * Why, next to bench/run.ts: wall-clock CPU on a shared VM moves ±20 % between runs and, worse,
 * between machines (docs/benchmarks.md), so two builds measured on different days cannot be
 * compared by req/s. An instruction count does not move with the host: the same build, config and
 * requests count the same within about 3 % (garbage collection timing is most of that spread).
 * It counts user-space instructions only, of every thread of the gateway (the call-log and
 * checkpoint threads included), and of the request thread apart (`--separate-threads=yes`); the kernel's share (sockets, file writes) is not in it, so it complements the
 * req/s benchmark rather than replacing it.
 *
 * For each scenario (bench/configs/<name>.yaml, the same configs, requests and pre-flight checks as
 * bench/run.ts): start the gateway under `valgrind --tool=callgrind --instr-atstart=no`, send the
 * warm-up requests uninstrumented (the JIT settles: V8 was still compiling the proxy path 60,000
 * requests in, so 3,000 left a fifth of bare's count in the optimising compilers, and each count
 * now says how much of it was compiling), switch instrumentation on with
 * `callgrind_control -i on`, send the counted requests, wait until their call-log rows are written
 * and checkpointed, switch it off, dump, stop, and divide the total by the requests. With the call
 * log on, counting starts once the warm-up's rows are all written (the log thread lags behind
 * under valgrind, and its backlog would be counted) and ends once the counted requests' rows are
 * all in the file (read from this process, as another connection): the count holds their rows
 * exactly, where a fixed wait counted whatever backlog the thread had at either end. Requests come
 * from this process (undici, INSTR_CONNECTIONS at a time), outside valgrind.
 *
 * Environment (all optional):
 *   INSTR_SCENARIOS=pinpoint-bare,pinpoint-policies,pinpoint-policies-nolog,pinpoint-chain  INSTR_REQUESTS=20000
 *     (also node-floor, bench/node-floor.ts, when named: the plain node:http + undici proxy, so
 *     bare's count can be set against what Node itself spends on the same request)
 *   INSTR_WARMUP=60000  INSTR_CONNECTIONS=10  INSTR_ROUNDS=1  INSTR_START_TIMEOUT=120s
 *   INSTR_UPSTREAM_PORT=19111 INSTR_PORT=19112
 *   INSTR_KEEP_TMP=1 keeps the callgrind files (cg-<scenario>-r<round>.<pid>.1-<thread> hold the
 *   counted part, 01 is the request thread): `callgrind_annotate FILE` shows which functions the instructions went to.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import {
  abort,
  BENCH_DIR,
  choosePort,
  ensureDebianTool,
  envInt,
  envList,
  errorText,
  installStopHandlers,
  log,
  makeTmp,
  median,
  parseSeconds,
  PINPOINT_BIN,
  printTable,
  removeTmp,
  requirePinpoint,
  ROOT,
  prepareTools,
  runMain,
  signalGroup,
  startNginx,
  startProcess,
  type Managed,
} from './lib.ts';
import {
  chainCredentials,
  NGINX_TEMP_PATH_MODULES,
  preflight,
  PROBE_TIMEOUT_MS,
  REQUEST_PATH,
  requestBody,
  requestHeaders,
  upstreamBody,
  writePinpointConfig,
  type ChainAuth,
} from './scenarios.ts';

const SCENARIOS = ['node-floor', 'pinpoint-bare', 'pinpoint-policies', 'pinpoint-policies-nolog', 'pinpoint-chain'] as const;
/** Counted unless INSTR_SCENARIOS says otherwise: node-floor is a reference, counted when asked for. */
const DEFAULT_SCENARIOS = SCENARIOS.filter((s) => s !== 'node-floor');
type ScenarioId = (typeof SCENARIOS)[number];
/** The gateway's config of each Pinpoint scenario; node-floor (bench/node-floor.ts) has none. */
const CONFIG: Record<Exclude<ScenarioId, 'node-floor'>, string> = {
  'pinpoint-bare': 'bare.yaml',
  'pinpoint-policies': 'policies.yaml',
  'pinpoint-policies-nolog': 'policies-nolog.yaml',
  'pinpoint-chain': 'chain.yaml',
};

/** Width of the scenario column in the per-round lines. */
const ID_WIDTH = Math.max(...SCENARIOS.map((s) => s.length));

const settings = {
  scenarios: envList<ScenarioId>('INSTR_SCENARIOS', SCENARIOS, DEFAULT_SCENARIOS),
  requests: envInt('INSTR_REQUESTS', 20_000, 100, 1_000_000),
  warmup: envInt('INSTR_WARMUP', 60_000, 0, 1_000_000),
  connections: envInt('INSTR_CONNECTIONS', 10, 1, 256),
  rounds: envInt('INSTR_ROUNDS', 1, 1, 20),
  startTimeoutSec: parseSeconds(process.env.INSTR_START_TIMEOUT || '120s', 'INSTR_START_TIMEOUT'),
};
/**
 * After the last counted request: the writer flushes within flush_interval_ms (100 ms by default)
 * and the checkpoint thread copies the WAL within its 1 s interval; both belong to these requests.
 */
const SETTLE_MS = 2500;

installStopHandlers();

/** Sends exactly `n` requests like bench/post-1k.lua's, `connections` at a time; throws on any non-2xx. */
async function send(port: number, n: number, auth: ChainAuth | null): Promise<void> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: settings.connections });
  const body = requestBody();
  const headers = requestHeaders('POST', auth);
  let sent = 0;
  let failure: string | null = null;
  const worker = async (): Promise<void> => {
    while (sent < n && failure === null && !abort.signal.aborted) {
      sent++;
      const r = await pool.request({ method: 'POST', path: REQUEST_PATH, headers, body });
      const text = await r.body.text();
      if (r.statusCode < 200 || r.statusCode > 299) failure = `answered ${r.statusCode}: ${text.slice(0, 200)}`;
    }
  };
  try {
    await Promise.all(Array.from({ length: settings.connections }, worker));
  } finally {
    await pool.close();
  }
  if (failure !== null) throw new Error(failure);
  if (abort.signal.aborted) throw new Error('interrupted');
}

function callgrindControl(args: string[], pid: number): void {
  const r = spawnSync('callgrind_control', [...args, String(pid)], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`callgrind_control ${args.join(' ')} ${pid}: ${r.stderr || r.stdout}`);
}

/**
 * The sum of `totals:` over the callgrind files whose names start with `prefix`: of all threads,
 * and of the request thread alone. With --separate-threads=yes each thread has its own file,
 * `<prefix><pid>.<dump>-<thread>`; valgrind numbers threads from 1 in creation order, so 01 is the
 * main thread, the one that serves requests.
 */
function totalInstructions(dir: string, prefix: string): { all: number; request: number } {
  let all = 0;
  let request = 0;
  for (const f of readdirSync(dir)) {
    if (!f.startsWith(prefix)) continue;
    const m = /^totals:\s+(\d+)/m.exec(readFileSync(join(dir, f), 'utf8'));
    if (!m) continue;
    all += Number(m[1]);
    if (f.endsWith('-01')) request += Number(m[1]);
  }
  return { all, request };
}

/** Above this share of a count in V8's optimising compilers, the warm-up was too short to trust it. */
const COMPILE_SHARE_WARN = 0.05;

/**
 * The share of the instructions in `dir`/`prefix`* spent in V8's optimising compilers (TurboFan,
 * Turboshaft, Maglev), from callgrind_annotate's per-function totals: code still being compiled
 * is warm-up, not the cost of a request. Null when callgrind_annotate cannot read the files.
 */
function compileShare(dir: string, prefix: string): number | null {
  // The counted part is in `<prefix><pid>.<n>-<thread>` (callgrind_control -d); `<prefix><pid>-<thread>`
  // is the uninstrumented rest, written at exit. callgrind_annotate reads one data file per call.
  const files = readdirSync(dir).filter((f) => f.startsWith(prefix) && /\.\d+\.\d+-\d+$/.test(f));
  let total = 0;
  let compiling = 0;
  for (const f of files) {
    const r = spawnSync('callgrind_annotate', ['--threshold=100', join(dir, f)], { encoding: 'utf8', timeout: 120_000, maxBuffer: 256 * 1024 * 1024 });
    if (r.status !== 0) return null;
    for (const line of r.stdout.split('\n')) {
      const m = /^\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$/.exec(line);
      if (m === null) continue;
      const n = Number((m[1] as string).replaceAll(',', ''));
      const fn = m[2] as string;
      if (fn.includes('PROGRAM TOTALS')) total += n;
      else if (/v8::internal::(compiler|maglev)::/.test(fn)) compiling += n;
    }
  }
  return total > 0 ? compiling / total : null;
}

/** The call-log file a scenario's config writes (writePinpointConfig puts it next to the config), or undefined when the log is off. */
function callLogFile(config: string): string | undefined {
  const file = config.replace(/\.yaml$/, '-calls.db');
  return existsSync(file) ? file : undefined;
}

/** Rows in the call log; the gateway writes it from its log thread, this reads it as another connection would. */
function rowsIn(file: string): number {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return Number(db.prepare('SELECT count(*) AS n FROM calls').get()?.['n'] ?? 0);
  } finally {
    db.close();
  }
}

/** How long the call log may take to catch up with the requests sent. */
const CATCH_UP_MS = 300_000;

/** The row count once it stopped growing (the log thread wrote the backlog). */
async function settledRows(file: string): Promise<number> {
  const deadline = Date.now() + CATCH_UP_MS;
  let last = rowsIn(file);
  for (;;) {
    await sleep(1000);
    const n = rowsIn(file);
    if (n === last) return n;
    if (Date.now() > deadline) throw new Error(`${file}: the call log was still growing after ${CATCH_UP_MS / 1000} s`);
    last = n;
  }
}

/** Waits until the call log holds `n` rows. */
async function rowsReach(file: string, n: number): Promise<void> {
  const deadline = Date.now() + CATCH_UP_MS;
  for (;;) {
    const have = rowsIn(file);
    if (have >= n) return;
    if (Date.now() > deadline) throw new Error(`${file}: ${have} rows, ${n} expected, after ${CATCH_UP_MS / 1000} s`);
    await sleep(250);
  }
}

async function waitExit(m: Managed, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!m.exited && Date.now() < deadline) await sleep(100);
  if (!m.exited) signalGroup(m, 'SIGKILL');
}

/** One count: instructions per request of `id`, with a fresh gateway under callgrind, and the share spent compiling. */
async function count(id: ScenarioId, round: number, tmp: string, port: number, upstreamPort: number): Promise<{ perRequest: number; requestThread: number; compiling: number | null }> {
  const prefix = `cg-${id}-r${round}.`;
  let argv: string[];
  let auth: ChainAuth | null = null;
  let config = '';
  if (id === 'node-floor') argv = [join(BENCH_DIR, 'node-floor.ts'), String(port), String(upstreamPort)];
  else {
    const source = join(BENCH_DIR, 'configs', CONFIG[id]);
    if (id === 'pinpoint-chain') auth = await chainCredentials(source, 24 * 3600);
    config = writePinpointConfig(source, tmp, `${id}-r${round}`, port, upstreamPort);
    argv = [PINPOINT_BIN, 'start', '--config', config, '--port', String(port)];
  }
  const m = startProcess(
    id,
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${join(tmp, `${prefix}%p`)}`, process.execPath, ...argv],
    null,
    join(tmp, `${id}-r${round}.out`),
    ROOT,
    auth?.env ?? {},
  );
  try {
    // Under valgrind start-up takes seconds; readiness is the pre-flight itself.
    const deadline = Date.now() + settings.startTimeoutSec * 1000;
    for (;;) {
      if (m.exited) throw new Error(`${id} exited during start-up (${m.exitInfo})`);
      try {
        await preflight(port, 'POST', upstreamBody(), auth);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${id} not ready within ${settings.startTimeoutSec}s: ${errorText(err)}`);
        await sleep(500);
      }
    }
    if (settings.warmup > 0) await send(port, settings.warmup, auth);
    // With the call log on, the count must hold exactly the counted requests' rows: none of the
    // warm-up's backlog (the log thread lags under valgrind), all of the counted ones.
    const db = id === 'node-floor' ? undefined : callLogFile(config);
    const before = db === undefined ? 0 : await settledRows(db);
    await sleep(SETTLE_MS);
    callgrindControl(['-i', 'on'], m.pid);
    await send(port, settings.requests, auth);
    if (db !== undefined) await rowsReach(db, before + settings.requests);
    await sleep(SETTLE_MS);
    callgrindControl(['-i', 'off'], m.pid);
    callgrindControl(['-d'], m.pid);
  } finally {
    signalGroup(m, 'SIGINT');
    await waitExit(m, 30_000);
  }
  const total = totalInstructions(tmp, prefix);
  return { perRequest: total.all / settings.requests, requestThread: total.request / settings.requests, compiling: compileShare(tmp, prefix) };
}

async function main(): Promise<number> {
  log(`Pinpoint instruction count — ${new Date().toISOString()}`);
  // Nothing is pinned: valgrind runs the gateway's threads one at a time anyway, and counts do not depend on the CPU.
  prepareTools();
  ensureDebianTool('valgrind', ['valgrind']);
  requirePinpoint();
  log(`${settings.requests} counted requests after ${settings.warmup} warm-up ones, ${settings.connections} at a time; ${settings.rounds} round(s)`);
  const taken = new Set<number>();
  const upstreamPort = await choosePort('INSTR_UPSTREAM_PORT', 19111, taken);
  const port = await choosePort('INSTR_PORT', 19112, taken);
  const tmp = makeTmp('pinpoint-instructions-');
  const counts = new Map<ScenarioId, number[]>(settings.scenarios.map((s) => [s, []]));
  const onRequestThread = new Map<ScenarioId, number[]>(settings.scenarios.map((s) => [s, []]));
  let failed = false;
  try {
    await startNginx({
      name: 'upstream (nginx)',
      template: join(BENCH_DIR, 'nginx-upstream.conf.template'),
      tmp,
      tag: 'upstream',
      values: { BODY: upstreamBody() },
      cpu: null,
      port: upstreamPort,
      tempPathModules: NGINX_TEMP_PATH_MODULES,
      ready: { timeoutSec: 15, probeTimeoutMs: PROBE_TIMEOUT_MS },
    });
    for (let round = 1; round <= settings.rounds && !abort.signal.aborted; round++) {
      for (const id of settings.scenarios) {
        if (abort.signal.aborted) break;
        try {
          const { perRequest, requestThread, compiling } = await count(id, round, tmp, port, upstreamPort);
          counts.get(id)?.push(perRequest);
          onRequestThread.get(id)?.push(requestThread);
          const share = compiling === null ? 'compiling: unknown' : `${(compiling * 100).toFixed(1)} % of it compiling`;
          log(`round ${round}: ${id.padEnd(ID_WIDTH)} ${Math.round(perRequest).toLocaleString('en-US')} instructions/request, ${Math.round(requestThread).toLocaleString('en-US')} on the request thread (${share})`);
          if (compiling !== null && compiling > COMPILE_SHARE_WARN) {
            log(`  ⚠ more than ${COMPILE_SHARE_WARN * 100} % in V8's optimising compilers: the JIT had not settled; raise INSTR_WARMUP (now ${settings.warmup})`);
          }
        } catch (err) {
          failed = true;
          log(`round ${round}: ${id}: not counted: ${errorText(err)}`);
        }
      }
    }
  } finally {
    removeTmp(tmp, process.env.INSTR_KEEP_TMP === '1');
  }
  const bare = median(counts.get('pinpoint-bare') ?? []);
  const bareThread = median(onRequestThread.get('pinpoint-bare') ?? []);
  const cell = (v: number | null): string => (v === null ? '–' : Math.round(v).toLocaleString('en-US'));
  const ratio = (b: number | null, v: number | null): string => (v === null || b === null ? '–' : (b / v).toFixed(2));
  log(`\nMedian of ${settings.rounds} round(s):`);
  printTable(
    ['scenario', 'instructions/request, all threads', '÷ pinpoint-bare', 'on the request thread', '÷ pinpoint-bare'],
    settings.scenarios.map((id) => {
      const v = median(counts.get(id) ?? []);
      const t = median(onRequestThread.get(id) ?? []);
      return [id, cell(v), ratio(bare, v), cell(t), ratio(bareThread, t)];
    }),
    1,
  );
  log("(÷ pinpoint-bare: bare's count over the scenario's. Not a throughput ratio: the kernel's work, cache misses and waiting are not in a count.)");
  log('(All threads: the call-log thread, the checkpoint thread, V8 and libuv helpers included. Request thread: the main thread alone.)');
  return failed ? 1 : 0;
}

runMain(main);
