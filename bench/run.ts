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
 *   BENCH_SCENARIOS=direct,nginx,node-floor,pinpoint-bare,pinpoint-policies,pinpoint-chain
 *   BENCH_UPSTREAM_PORT=19101 BENCH_NGINX_PORT=19080 BENCH_BARE_PORT=19081 BENCH_POLICIES_PORT=19082
 *   BENCH_CHAIN_PORT=19083 BENCH_FLOOR_PORT=19084
 *     (a default port that is taken is replaced by the next free one; an explicit one must be free)
 *   BENCH_PROXY_CPU=0 BENCH_LOAD_CPU=1  BENCH_START_TIMEOUT=15s  BENCH_KEEP_TMP=1 (keep configs/logs)
 *   BENCH_STRICT=1 (exit 2 when a target fails)  BENCH_PINPOINT_BIN=bin/pinpoint.js (another build)
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { SignJWT } from 'jose';
import { isMap, type Document } from 'yaml';
import {
  abort,
  API_KEY,
  attemptRun,
  BENCH_DIR,
  checkApiKeyHash,
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
  mapKeys,
  measureRun,
  measureWithin,
  median,
  medianHeading,
  parseSeconds,
  printTable,
  probe,
  readConfig,
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

// ---------------------------------------------------------------------------------------------
// Settings

const LUA_SCRIPT = join(BENCH_DIR, 'post-1k.lua');

const REQUEST_PATH = '/v1/orders';
const UPSTREAM_BODY_BYTES = 214;
const REQUEST_BODY_BYTES = 1024;
/** pinpoint-chain: the Origin its requests carry (its cors policy allows it) and the token's scopes. */
const CHAIN_ORIGIN = 'https://app.example.com';
const CHAIN_SCOPES = 'orders:read orders:write';

const SCENARIO_IDS = ['direct', 'nginx', 'node-floor', 'pinpoint-bare', 'pinpoint-policies', 'pinpoint-chain'] as const;
type ScenarioId = (typeof SCENARIO_IDS)[number];
const METHODS = ['POST', 'GET'] as const;
type Method = (typeof METHODS)[number];

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
/** How long an HTTP probe (readiness, pre-flight) waits for its answer. */
const PROBE_TIMEOUT_MS = 3000;
/** Readiness of a started upstream, nginx or Pinpoint. */
const READY: ReadyOptions = { timeoutSec: settings.startTimeoutSec, probeTimeoutMs: PROBE_TIMEOUT_MS };
/** Whether the proxy under test and the load run on their CPUs (taskset); set in main. */
let pinning = false;

installStopHandlers();

// ---------------------------------------------------------------------------------------------
// Bodies

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
// HTTP probes (readiness and the pre-flight check that each scenario answers 2xx with the body)

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
  const r = await probe(port, method, REQUEST_PATH, body, requestHeaders(method, auth), PROBE_TIMEOUT_MS);
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
    const r = await probe(port, c.method, REQUEST_PATH, c.body, c.headers, PROBE_TIMEOUT_MS);
    const policy = r.headers['x-pinpoint-policy'];
    if (r.status !== c.status || policy !== c.policy) {
      throw new Error(`pre-flight with ${c.what}: expected ${c.status} from policy ${c.policy}, got ${r.status} from ${String(policy ?? 'no policy')}: ${r.body.slice(0, 200)}`);
    }
  }
  return cases.map((c) => `${c.what} → ${c.status} ${c.policy}`).join('; ');
}

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

/** nginx's temp paths the templates leave to EXTRA_TEMP_PATHS (both set proxy's themselves). */
const NGINX_TEMP_PATH_MODULES = ['fastcgi', 'uwsgi', 'scgi'];

/** The ids and configs of a config's policies of one type, in file order. */
function policiesOfType(doc: Document.Parsed, type: string): { id: string; config: Record<string, unknown> }[] {
  const policies = doc.get('policies');
  if (!isMap(policies)) return [];
  const out: { id: string; config: Record<string, unknown> }[] = [];
  for (const id of mapKeys(policies)) {
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
  checkApiKeyHash(doc, source);
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
  };
  log(
    `ports: upstream ${ports.upstream}, nginx ${ports.nginx}, pinpoint-bare ${ports['pinpoint-bare']}, ` +
      `pinpoint-policies ${ports['pinpoint-policies']}, pinpoint-chain ${ports['pinpoint-chain']}, node-floor ${ports['node-floor']}`,
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
        } else if (id === 'pinpoint-policies') {
          sc.proxy = await startPinpointScenario(id, join(BENCH_DIR, 'configs', 'policies.yaml'), tmp, sc.port, ports.upstream);
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
