/**
 * Pinpoint throughput benchmark: `node bench/run.ts` (Node 24, from the repo root or anywhere).
 *
 * Six scenarios, every one a 1 KB JSON POST over keep-alive, all on 127.0.0.1:
 *   direct             wrk straight to the upstream: the ceiling any proxy could reach here
 *   nginx              nginx proxy_pass with an upstream keep-alive pool (bench/nginx-proxy.conf.template)
 *   node-floor         the plainest Node proxy, node:http + undici Pool.stream() (bench/node-floor.ts):
 *                      what Node itself costs on this machine, with nothing a gateway adds
 *   pinpoint-bare      the gateway with one route and nothing else (bench/configs/bare.yaml)
 *   pinpoint-policies  the gateway with api-key + ip-rules + call log (bench/configs/policies.yaml)
 *   pinpoint-policies-nolog  the same without the call log (bench/configs/policies-nolog.yaml): not a
 *                      target; it splits what the two policies cost from what the call log costs
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
 *   BENCH_SCENARIOS=direct,nginx,node-floor,pinpoint-bare,pinpoint-policies,pinpoint-policies-nolog,pinpoint-chain
 *   BENCH_UPSTREAM_PORT=19101 BENCH_NGINX_PORT=19080 BENCH_BARE_PORT=19081 BENCH_POLICIES_PORT=19082
 *   BENCH_CHAIN_PORT=19083 BENCH_FLOOR_PORT=19084
 *     (a default port that is taken is replaced by the next free one; an explicit one must be free)
 *   BENCH_PROXY_CPU=0 BENCH_LOAD_CPU=1  BENCH_START_TIMEOUT=15s  BENCH_KEEP_TMP=1 (keep configs/logs)
 *   BENCH_STRICT=1 (exit 2 when a target fails)  BENCH_PINPOINT_BIN=bin/pinpoint.js (another build)
 */
import { join } from 'node:path';
import {
  abort,
  API_KEY,
  attemptRun,
  BENCH_DIR,
  choosePort,
  commonSettings,
  cpuReport,
  cpusAllowed,
  envInt,
  envList,
  errorText,
  finalExitCode,
  fmtNum,
  installStopHandlers,
  log,
  makeTmp,
  measureRun,
  measureWithin,
  median,
  medianHeading,
  parseSeconds,
  printTable,
  removeTmp,
  requirePinpoint,
  runLine,
  runMain,
  ROOT,
  runWrk,
  scenarioFailed,
  setUpMachine,
  shuffle,
  startNginx,
  startPinpoint,
  startProcess,
  tail,
  toolVersions,
  treeRssMiB,
  warnIfNoisy,
  writeResults,
  waitReady,
  wrkDuration,
  type Managed,
  type Measurement,
  type ReadyOptions,
  type WrkResult,
} from './lib.ts';
import {
  chainCredentials,
  chainDenialChecks,
  METHODS,
  NGINX_TEMP_PATH_MODULES,
  preflight,
  PROBE_TIMEOUT_MS,
  REQUEST_BODY_BYTES,
  REQUEST_PATH,
  UPSTREAM_BODY_BYTES,
  upstreamBody,
  writePinpointConfig,
  type ChainAuth,
  type Method,
} from './scenarios.ts';

// ---------------------------------------------------------------------------------------------
// Settings

const LUA_SCRIPT = join(BENCH_DIR, 'post-1k.lua');


const SCENARIO_IDS = ['direct', 'nginx', 'node-floor', 'pinpoint-bare', 'pinpoint-policies', 'pinpoint-policies-nolog', 'pinpoint-chain'] as const;
type ScenarioId = (typeof SCENARIO_IDS)[number];

const TARGETS = [
  { name: 'Pinpoint bare ≥ 0.35 × nginx', scenario: 'pinpoint-bare', base: 'nginx', min: 0.35 },
  { name: 'Pinpoint policies+log ≥ 0.85 × Pinpoint bare', scenario: 'pinpoint-policies', base: 'pinpoint-bare', min: 0.85 },
  { name: 'Pinpoint full chain ≥ 0.85 × Pinpoint bare', scenario: 'pinpoint-chain', base: 'pinpoint-bare', min: 0.85 },
] as const satisfies readonly { name: string; scenario: ScenarioId; base: ScenarioId; min: number }[];

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
  ...commonSettings(SCENARIO_IDS),
};
/** Readiness of a started upstream, nginx or Pinpoint. */
const READY: ReadyOptions = { timeoutSec: settings.startTimeoutSec, probeTimeoutMs: PROBE_TIMEOUT_MS };
/** Whether the proxy under test and the load run on their CPUs (taskset); set in main. */
let pinning = false;

installStopHandlers();


// ---------------------------------------------------------------------------------------------
// wrk

/** wrk at `port` with post-1k.lua: its method, and pinpoint-chain's token and Origin. */
function wrk(port: number, method: Method, seconds: number, logFile: string, auth: ChainAuth | null): Promise<{ result: WrkResult; raw: string }> {
  return runWrk({
    cpu: pinning ? settings.loadCpu : null,
    threads: settings.threads,
    connections: settings.connections,
    seconds,
    script: LUA_SCRIPT,
    url: `http://127.0.0.1:${port}${REQUEST_PATH}`,
    env: { BENCH_METHOD: method, BENCH_API_KEY: API_KEY, BENCH_BEARER_TOKEN: auth?.token ?? '', BENCH_ORIGIN: auth?.origin ?? '' },
    logFile,
  });
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

interface RunRecord extends Measurement {
  round: number;
  position: number;
  scenario: ScenarioId;
  method: Method;
}


async function startPinpointScenario(name: ScenarioId, configSource: string, tmp: string, port: number, upstreamPort: number, env: Record<string, string> = {}): Promise<Managed> {
  requirePinpoint();
  const config = writePinpointConfig(configSource, tmp, name, port, upstreamPort);
  return startPinpoint({ name, config, tmp, port, cpu: pinning ? settings.proxyCpu : null, env, ready: READY });
}

// ---------------------------------------------------------------------------------------------
// Report

const fmtRatio = (v: number | null): string => (v === null ? '–' : v.toFixed(2));

interface SummaryRow {
  scenario: ScenarioId;
  method: Method;
  runs: number;
  rps: number | null;
  p50ms: number | null;
  p99ms: number | null;
  ratio: Record<'direct' | 'nginx' | 'node-floor' | 'pinpoint-bare', number | null>;
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
        ratio: { direct: ratioTo('direct'), nginx: ratioTo('nginx'), 'node-floor': ratioTo('node-floor'), 'pinpoint-bare': ratioTo('pinpoint-bare') },
        proxyCpuUsPerReq: median(mine.flatMap((r) => (r.proxyCpuUsPerReq === null ? [] : [r.proxyCpuUsPerReq]))),
        proxyRssMiB: mine.at(-1)?.proxyRssMiB ?? null,
        error: sc.error ?? (mine.length === 0 ? lastError : null),
      });
    }
  }
  return rows;
}

function printSummary(rows: SummaryRow[]): void {
  const header = ['scenario', 'req/s', 'p50 ms', 'p99 ms', '÷ direct', '÷ nginx', '÷ node-floor', '÷ pinpoint-bare', 'proxy CPU µs/req', 'proxy RSS MiB'];
  const body = rows.map((r) => [
    `${r.scenario} ${r.method === 'POST' ? 'POST 1KB' : 'GET'}`,
    r.rps === null ? '–' : Math.round(r.rps).toLocaleString('en-US'),
    fmtNum(r.p50ms, 2),
    fmtNum(r.p99ms, 2),
    fmtRatio(r.ratio.direct),
    fmtRatio(r.ratio.nginx),
    fmtRatio(r.ratio['node-floor']),
    fmtRatio(r.ratio['pinpoint-bare']),
    fmtNum(r.proxyCpuUsPerReq, 1),
    fmtNum(r.proxyRssMiB, 0),
  ]);
  printTable(header, body, 1);
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
  const pinningNote = setUpMachine(settings.proxyCpu, settings.loadCpu, 'proxy under test', 'wrk + upstream');
  pinning = pinningNote === '';
  const versions = toolVersions();
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
    'node-floor': await choosePort('BENCH_FLOOR_PORT', 19084, taken),
    'pinpoint-policies-nolog': await choosePort('BENCH_POLICIES_NOLOG_PORT', 19085, taken),
  };
  log(
    `ports: upstream ${ports.upstream}, nginx ${ports.nginx}, pinpoint-bare ${ports['pinpoint-bare']}, ` +
      `pinpoint-policies ${ports['pinpoint-policies']}, pinpoint-policies-nolog ${ports['pinpoint-policies-nolog']}, ` +
      `pinpoint-chain ${ports['pinpoint-chain']}, node-floor ${ports['node-floor']}`,
  );

  const tmp = makeTmp('pinpoint-bench-');
  const expectBody = upstreamBody();
  const runs: RunRecord[] = [];
  const scenarios: Scenario[] = [];

  // Hard bound on the whole run: start-ups, warm-ups and every measured run, with slack.
  const perRun = Math.ceil(settings.durationSec) + 3;
  const budgetSec =
    settings.scenarios.length * (settings.startTimeoutSec + 5) +
    settings.scenarios.length * settings.methods.length * ((settings.warmupSec > 0 ? Math.ceil(settings.warmupSec) + 3 : 0) + settings.rounds * perRun) +
    60;
  log(`expected ≈ ${Math.round(settings.scenarios.length * settings.methods.length * (settings.rounds * perRun + settings.warmupSec))}s; hard limit ${budgetSec}s`);

  const { exitCode, fatal } = await measureWithin(budgetSec, async () => {
    // Upstream and nginx proxy: the harness cannot measure anything without them.
    const upstream = await startNginx({
      name: 'upstream (nginx)',
      template: join(BENCH_DIR, 'nginx-upstream.conf.template'),
      tmp,
      tag: 'upstream',
      values: { BODY: expectBody },
      cpu: pinning ? settings.loadCpu : null,
      port: ports.upstream,
      tempPathModules: NGINX_TEMP_PATH_MODULES,
      ready: READY,
    });
    log(`started upstream nginx pid ${upstream.pid} on 127.0.0.1:${ports.upstream}, CPUs ${cpusAllowed(upstream.pid)}`);

    for (const id of settings.scenarios) {
      const sc: Scenario = { id, port: id === 'direct' ? ports.upstream : ports[id], proxy: null, error: null, auth: null };
      scenarios.push(sc);
      try {
        if (id === 'nginx') {
          sc.proxy = await startNginx({
            name: 'nginx proxy',
            template: join(BENCH_DIR, 'nginx-proxy.conf.template'),
            tmp,
            tag: 'proxy',
            values: { UPSTREAM_PORT: String(ports.upstream) },
            cpu: pinning ? settings.proxyCpu : null,
            port: sc.port,
            tempPathModules: NGINX_TEMP_PATH_MODULES,
            ready: READY,
          });
        } else if (id === 'node-floor') {
          sc.proxy = startProcess(id, process.execPath, [join(BENCH_DIR, 'node-floor.ts'), String(sc.port), String(ports.upstream)], pinning ? settings.proxyCpu : null, join(tmp, `${id}.out`), ROOT);
          await waitReady(sc.proxy, sc.port, READY);
        } else if (id === 'pinpoint-bare') {
          sc.proxy = await startPinpointScenario(id, join(BENCH_DIR, 'configs', 'bare.yaml'), tmp, sc.port, ports.upstream);
        } else if (id === 'pinpoint-policies' || id === 'pinpoint-policies-nolog') {
          const file = id === 'pinpoint-policies' ? 'policies.yaml' : 'policies-nolog.yaml';
          sc.proxy = await startPinpointScenario(id, join(BENCH_DIR, 'configs', file), tmp, sc.port, ports.upstream);
        } else if (id === 'pinpoint-chain') {
          const config = join(BENCH_DIR, 'configs', 'chain.yaml');
          // The token outlives the hard limit, so it cannot expire mid-run.
          sc.auth = await chainCredentials(config, budgetSec + 3600);
          sc.proxy = await startPinpointScenario(id, config, tmp, sc.port, ports.upstream, sc.auth.env);
        }
        for (const method of settings.methods) await preflight(sc.port, method, expectBody, sc.auth);
        const denials = sc.auth ? `; refused as expected: ${await chainDenialChecks(sc.port, sc.auth)}` : '';
        log(
          sc.proxy
            ? `started ${id} pid ${sc.proxy.pid} on 127.0.0.1:${sc.port}, CPUs ${cpusAllowed(sc.proxy.pid)}, RSS ${treeRssMiB(sc.proxy.pid).toFixed(0)} MiB idle; pre-flight OK${denials}`
            : `${id}: pre-flight OK`,
        );
      } catch (err) {
        scenarioFailed(sc, err);
      }
    }

    const live = (): Scenario[] => scenarios.filter((s) => s.error === null);
    const plan = live().flatMap((sc) => settings.methods.map((method) => ({ sc, method })));

    if (settings.warmupSec > 0 && plan.length > 0) {
      log(`\nwarm-up: ${settings.warmupSec}s each`);
      for (const { sc, method } of plan) {
        if (abort.signal.aborted) break;
        try {
          await wrk(sc.port, method, settings.warmupSec, join(tmp, `warmup-${sc.id}-${method}.txt`), sc.auth);
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
        const label = `${sc.id} ${method}`.padEnd(24);
        await attemptRun(rec, label, async () => {
          if (sc.proxy?.exited) throw new Error(`${sc.proxy.name} has exited (${sc.proxy.exitInfo}): ${tail(sc.proxy.logFile, 5)}`);
          if (upstream.exited) throw new Error(`upstream has exited (${upstream.exitInfo})`);
          const logFile = join(tmp, `r${round}-${sc.id}-${method}.txt`);
          const result = await measureRun(rec, sc.proxy, async () => (await wrk(sc.port, method, settings.durationSec, logFile, sc.auth)).result);
          log(runLine(label, rec, result, 2, 'proxy'));
        });
      }
    }
  });

  const rows = summarize(scenarios, runs);
  const targets = checkTargets(rows);
  if (runs.length > 0 || scenarios.length > 0) {
    log(`${medianHeading(runs, settings.rounds)}ratios taken within each round:`);
    printSummary(rows);
    warnIfNoisy(runs, 'ratios');
    log('\nTargets:');
    for (const t of targets) {
      const verdict = t.pass === null ? 'n/a (not measured)' : t.pass ? 'PASS' : 'FAIL';
      log(`  ${verdict.padEnd(4)}  ${t.name} (${t.method}): ${t.ratio === null ? '–' : `${t.ratio.toFixed(2)}×`}`);
    }
    // Context for the bare target, not a target: how far the plainest Node proxy gets on this machine.
    for (const method of settings.methods) {
      const floor = rows.find((r) => r.scenario === 'node-floor' && r.method === method);
      const bare = rows.find((r) => r.scenario === 'pinpoint-bare' && r.method === method);
      if (floor?.ratio.nginx == null || bare?.ratio['node-floor'] == null) continue;
      log(`  info  node-floor (node:http + undici, nothing else) reaches ${floor.ratio.nginx.toFixed(2)}× nginx here; Pinpoint bare keeps ${bare.ratio['node-floor'].toFixed(2)}× of it (${method})`);
    }
  }

  const cpu = cpuReport(pinning ? { proxy: settings.proxyCpu, loadAndUpstream: settings.loadCpu } : null, pinningNote);
  const settingsOut = { ...settings, requestPath: REQUEST_PATH, requestBodyBytes: REQUEST_BODY_BYTES, upstreamBodyBytes: UPSTREAM_BODY_BYTES };
  writeResults('', { head: {}, startedAt, fatal, versions, cpu, settings: settingsOut, ports, scenarios, runs, summary: rows, targets });
  removeTmp(tmp, settings.keepTmp);

  return finalExitCode(exitCode, settings.strict, targets);
}

runMain(main);
