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
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { isMap } from 'yaml';
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
  ROOT,
  runLine,
  runMain,
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
  waitReady,
  warnIfNoisy,
  writeResults,
  wrkDuration,
  type Managed,
  type Measurement,
  type ReadyOptions,
  type WrkResult,
} from './lib.ts';

// ---------------------------------------------------------------------------------------------
// Settings

const LUA_SCRIPT = join(BENCH_DIR, 'ai-chat.lua');
const MOCK_TEMPLATE = join(BENCH_DIR, 'ai-mock.conf.template');
const LOOPBACK_PRELOAD = join(BENCH_DIR, 'ai-loopback.ts');
const PORTKEY_DIR = join(ROOT, 'node_modules', '@portkey-ai', 'gateway');
const PORTKEY_ENTRY = join(PORTKEY_DIR, 'build', 'start-server.js');

// API_KEY (lib.ts) is Pinpoint's api key (bench/configs/ai.yaml holds its SHA-256); Portkey forwards
// it as the provider key.
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
  ...commonSettings(SCENARIO_IDS),
};
if (settings.threads > settings.latencyConnections) {
  // wrk needs at least one connection per thread; the latency run keeps its fixed concurrency.
  throw new Error(`BENCH_THREADS (${settings.threads}) must not exceed BENCH_LATENCY_CONNECTIONS (${settings.latencyConnections})`);
}
const kindSeconds = (kind: Kind): number => (kind === 'load' ? settings.durationSec : settings.latencyDurationSec);
const kindConnections = (kind: Kind): number => (kind === 'load' ? settings.connections : settings.latencyConnections);
/** How long an HTTP probe (readiness, pre-flight) waits for its answer. */
const PROBE_TIMEOUT_MS = 5000;
/** Readiness of the mock and the gateways once started. */
const READY: ReadyOptions = { timeoutSec: settings.startTimeoutSec, probeTimeoutMs: PROBE_TIMEOUT_MS };
/** Whether the gateway under test and the load run on their CPUs (taskset); set in main. */
let pinning = false;

installStopHandlers();

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

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function packageVersion(file: string): string | null {
  try {
    const pkg: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return isRecord(pkg) && typeof pkg.version === 'string' ? pkg.version : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Pre-flight: each scenario relays the right answer

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
  const r = await probe(sc.port, 'POST', sc.path(mode), chatBody(mode), requestHeaders(env), PROBE_TIMEOUT_MS);
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
    const denied = await probe(sc.port, 'POST', sc.path(mode), chatBody(mode), { 'content-type': 'application/json' }, PROBE_TIMEOUT_MS);
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

/** wrk at a scenario with ai-chat.lua: the mode's model and stream flag, and the scenario's headers. */
async function wrk(sc: Scenario, mode: Mode, kind: Kind, seconds: number, logFile: string): Promise<WrkResult> {
  const { result } = await runWrk({
    cpu: pinning ? settings.loadCpu : null,
    threads: settings.threads,
    connections: kindConnections(kind),
    seconds,
    script: LUA_SCRIPT,
    url: `http://127.0.0.1:${sc.port}${sc.path(mode)}`,
    env: { BENCH_AI_MODEL: MODE_INFO[mode].model, BENCH_AI_STREAM: mode === 'stream' ? '1' : '0', BENCH_AI_KEY: '', BENCH_PORTKEY_CUSTOM_HOST: '', ...sc.env(mode) },
    logFile,
  });
  return result;
}

// ---------------------------------------------------------------------------------------------
// Starting the mock and the gateways

/** The mock provider: nginx from bench/ai-mock.conf.template with the two answers, on the load's CPU. */
function startMock(tmp: string, port: number): Promise<Managed> {
  return startNginx({
    name: 'mock provider (nginx)',
    template: MOCK_TEMPLATE,
    tmp,
    tag: 'mock',
    values: { JSON_BODY: nginxString(mockJsonBody()), STREAM_BODY: nginxString(mockStreamBody()) },
    cpu: pinning ? settings.loadCpu : null,
    port,
    tempPathModules: ['proxy', 'fastcgi', 'uwsgi', 'scgi'],
    ready: READY,
  });
}

/**
 * Copies a Pinpoint AI config into the temp dir with its listen port, every provider's base_url
 * port (the path, which picks the mock's answer, is kept) and the call log's path rewritten.
 * Returns the config file and the call log's file (null when the log is off).
 */
function writePinpointConfig(source: string, tmp: string, name: string, port: number, mockPort: number): { config: string; callLog: string | null } {
  const doc = readConfig(source);
  doc.setIn(['listen', 'port'], port);
  const providers = doc.getIn(['ai', 'providers']);
  if (!isMap(providers)) throw new Error(`${source}: no ai.providers`);
  for (const id of mapKeys(providers)) {
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
  checkApiKeyHash(doc, source);
  const out = join(tmp, `${name}.yaml`);
  writeFileSync(out, doc.toString());
  return { config: out, callLog };
}

async function startPinpointScenario(name: ScenarioId, configSource: string, tmp: string, port: number, mockPort: number): Promise<{ proc: Managed; callLog: string | null }> {
  requirePinpoint();
  const { config, callLog } = writePinpointConfig(configSource, tmp, name, port, mockPort);
  const proc = await startPinpoint({ name, config, tmp, port, cpu: pinning ? settings.proxyCpu : null, env: { BENCH_PROVIDER_KEY: PROVIDER_KEY }, ready: READY });
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
  await waitReady(proc, port, READY);
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

interface RunRecord extends Measurement {
  round: number;
  position: number;
  scenario: ScenarioId;
  mode: Mode;
  kind: Kind;
  connections: number;
}

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

const fmtSigned = (v: number | null): string => (v === null ? '–' : `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)}`);

function printSummary(rows: SummaryRow[]): void {
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
  printTable(header, body, 2);
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
  const pinningNote = setUpMachine(settings.proxyCpu, settings.loadCpu, 'gateway under test', 'wrk + mock provider');
  pinning = pinningNote === '';
  const versions = {
    ...toolVersions(),
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

  const tmp = makeTmp('pinpoint-ai-bench-');
  const runs: RunRecord[] = [];
  const scenarios: Scenario[] = [];

  const kinds: Kind[] = ['load', 'latency'];
  const perMode = (settings.warmupSec > 0 ? Math.ceil(settings.warmupSec) + 3 : 0) + settings.rounds * (Math.ceil(settings.durationSec) + Math.ceil(settings.latencyDurationSec) + 6);
  const budgetSec = settings.scenarios.length * (settings.startTimeoutSec + 10) + settings.scenarios.length * settings.modes.length * perMode + 60;
  log(`expected ≈ ${Math.round(settings.scenarios.length * settings.modes.length * (perMode - 3 * settings.rounds))}s; hard limit ${budgetSec}s`);

  const { exitCode, fatal } = await measureWithin(budgetSec, async () => {
    const mock = await startMock(tmp, ports.mock);
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
          const started = await startPinpointScenario(id, join(BENCH_DIR, 'configs', id === 'pinpoint' ? 'ai.yaml' : 'ai-bare.yaml'), tmp, sc.port, ports.mock);
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
        scenarioFailed(sc, err);
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
            await wrk(sc, mode, 'load', settings.warmupSec, join(tmp, `warmup-${sc.id}-${mode}.txt`));
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
        await attemptRun(rec, label, async () => {
          if (sc.proxy?.exited) throw new Error(`${sc.proxy.name} has exited (${sc.proxy.exitInfo}): ${tail(sc.proxy.logFile, 5)}`);
          if (mock.exited) throw new Error(`the mock provider has exited (${mock.exitInfo})`);
          const logFile = join(tmp, `r${round}-${sc.id}-${mode}-${kind}.txt`);
          const result = await measureRun(rec, sc.proxy, () => wrk(sc, mode, kind, kindSeconds(kind), logFile));
          log(runLine(label, rec, result, kind === 'latency' ? 3 : 2, 'gateway'));
        });
      }
    }
  });

  const rows = summarize(scenarios, runs);
  const targets = checkTargets(rows);
  if (runs.length > 0 || scenarios.length > 0) {
    log(
      medianHeading(runs, settings.rounds) +
        `÷ portkey and added p50 taken within each round. c=${settings.connections}: throughput run; ` +
        `c=${settings.latencyConnections}: latency run (added p50 = its p50 − direct's p50 at c=${settings.latencyConnections}).`,
    );
    log('pinpoint = AI route + api-key policy + call log (bench/configs/ai.yaml); pinpoint-bare = the route alone (ai-bare.yaml).');
    printSummary(rows);
    warnIfNoisy(runs, 'figures');
    log('\nTargets (scenario pinpoint):');
    for (const t of targets) {
      const verdict = t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'MISS';
      const value = t.value === null ? '– (not measured)' : t.name.includes('×') ? `${t.value.toFixed(2)}×` : `${fmtSigned(t.value)} ms`;
      log(`  ${verdict}  ${t.name}, ${t.mode}: ${value}`);
    }
  }

  const cpu = cpuReport(pinning ? { gateway: settings.proxyCpu, loadAndMock: settings.loadCpu } : null, pinningNote);
  const requestBodies = Object.fromEntries(settings.modes.map((m) => [m, chatBody(m)]));
  const settingsOut = { ...settings, chatPath: CHAT_PATH, requestBodies, mockJsonBytes: mockJsonBody().length, mockStreamBytes: mockStreamBody().length };
  writeResults('ai-', { head: { benchmark: 'ai' }, startedAt, fatal, versions, cpu, settings: settingsOut, ports, scenarios, runs, summary: rows, targets });
  removeTmp(tmp, settings.keepTmp);

  return finalExitCode(exitCode, settings.strict, targets);
}

runMain(main);
