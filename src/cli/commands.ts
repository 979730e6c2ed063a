/** The `pinpoint` commands. Each is small: parsing is in main.ts, the work in src/. */
import { existsSync, readFileSync } from 'node:fs';
import { parseCurl } from '../diagnose/curl.ts';
import { diagnose, diagnoseAsBrowser, type Diagnosis } from '../diagnose/diagnose.ts';
import { parseHar } from '../diagnose/har.ts';
import { parseRawHttp } from '../diagnose/raw.ts';
import type { DescribedRequest } from '../diagnose/request.ts';
import { monitorReport } from '../diagnose/monitor-report.ts';
import { lint, type LintFinding } from '../lint/lint.ts';
import type { CallLogEntry } from '../calllog/types.ts';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { SqliteCallLogStore } from '../calllog/sqlite.ts';
import { callLogPathOf } from '../config/compile.ts';
import type { Config } from '../config/schema.ts';
import { loadConfigFile } from '../config/load.ts';
import { hashKey } from '../credentials/api-keys.ts';
import { hashPasswordCommand } from '../credentials/password.ts';
import { startDemoUpstream } from '../demo/upstream.ts';
import { CATALOG, CODES } from '../errors/catalog.ts';
import { explain, formatExplanation } from '../explain/explain.ts';
import { App, StartupError } from '../server/app.ts';
import { isWorker, runPrimary, runWorker } from '../server/cluster.ts';
import { IMPACT_OPTIONS, IMPACT_USAGE, impactCommand } from './impact.ts';
import { bold, dim, green, printJson, red, yellow } from './output.ts';
import { encryptSecretCmd } from './encrypt-secret.ts';
import { readStdin, type Command, type Values } from './command.ts';


const ROOT = path.resolve(import.meta.dirname, '../..');
export const DEMO_CONFIG = path.join(ROOT, 'examples/demo/pinpoint.yaml');

function configPath(v: Values): string {
  const c = v.config;
  if (typeof c === 'string') return c;
  return process.env.PINPOINT_CONFIG ?? 'pinpoint.yaml';
}

function logger(): Logger {
  return pino({ level: process.env.PINPOINT_LOG_LEVEL ?? 'info', base: { pid: process.pid } });
}

/**
 * A command that cannot run (bad input, an unreadable log): the message on standard error, or with
 * --json the same as `{ "ok": false, "command", "error" }` on standard output, so a script reading
 * JSON always gets JSON. Returns the exit code, for `return fail(…)`.
 */
function fail(v: Values, command: string, message: string, exit: number): number {
  if (v.json === true) printJson({ ok: false, command, error: message });
  else process.stderr.write(`pinpoint ${command}: ${message}\n`);
  return exit;
}

function reportIssues(file: string, issues: readonly { path: string; message: string }[], json: boolean): void {
  if (json) printJson({ valid: false, file, issues });
  else {
    process.stderr.write(`${red('✗')} ${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'}\n`);
    for (const i of issues) process.stderr.write(`  ${bold(i.path)}: ${i.message}\n`);
  }
}

async function serve(v: Values, configFile: string, onStarted?: (app: App | undefined) => void): Promise<number> {
  const json = v.json === true;
  const log = logger();
  const port = typeof v.port === 'string' ? Number(v.port) : undefined;
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    return fail(v, 'start', '--port must be 0-65535', 2);
  }
  const workers = typeof v.workers === 'string' ? (v.workers === 'auto' ? (await import('node:os')).availableParallelism() : Number(v.workers)) : 1;
  if (!Number.isInteger(workers) || workers < 1) {
    return fail(v, 'start', `--workers must be a positive integer or "auto"`, 2);
  }
  const opts = { configFile, logger: log, ...(port !== undefined ? { port } : {}), ...(typeof v.host === 'string' ? { host: v.host } : {}) };
  try {
    if (workers > 1 && !isWorker()) {
      const stop = await runPrimary({ ...opts, workers });
      onStarted?.(undefined);
      return await waitForSignal(stop, log);
    }
    const app = isWorker() ? await runWorker(opts) : await App.start(opts);
    if (!isWorker()) process.on('SIGHUP', () => app.reload());
    onStarted?.(app);
    if (isWorker()) return await new Promise<number>(() => undefined);
    return await waitForSignal(() => app.close(), log);
  } catch (err) {
    if (err instanceof StartupError) {
      if (err.issues.length > 0) reportIssues(configFile, err.issues, json);
      else log.fatal(err.message);
      return err.issues.length > 0 ? 1 : 3;
    }
    throw err;
  }
}

function waitForSignal(stop: () => Promise<void>, log: Logger): Promise<number> {
  return new Promise((resolve) => {
    const onSignal = (sig: string): void => {
      log.info({ signal: sig }, 'shutting down: finishing in-flight requests, flushing the call log');
      stop().then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve(3);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
}

const start: Command = {
  summary: 'run the gateway',
  usage: `pinpoint start [--config FILE] [--port N] [--host ADDR] [--workers N|auto] [--json]

Runs the gateway. The config is reloaded on file change or SIGHUP; an invalid file is rejected and
the running config stays. SIGTERM/SIGINT stop accepting, finish in-flight requests and flush the
call log.`,
  options: { config: { type: 'string', short: 'c' }, port: { type: 'string', short: 'p' }, host: { type: 'string' }, workers: { type: 'string', short: 'w' } },
  run: (v) => serve(v, configPath(v)),
};

const demo: Command = {
  summary: 'run the demo: the gateway with examples/demo and its bundled orders upstream',
  usage: `pinpoint demo [--port N]

Starts the demo orders service on 127.0.0.1:9101 and the gateway on 127.0.0.1:8080 (admin on 9180)
with examples/demo/pinpoint.yaml. The README shows what to send.`,
  options: { port: { type: 'string', short: 'p' } },
  run: async (v) => {
    const up = await startDemoUpstream(9101).catch((err: NodeJS.ErrnoException) => {
      process.stderr.write(`demo upstream: cannot listen on 127.0.0.1:9101 (${err.code ?? err.message})\n`);
      return undefined;
    });
    if (up === undefined) return 3;
    const port = typeof v.port === 'string' ? v.port : '8080';
    const code = await serve({ ...v, port }, DEMO_CONFIG, () => {
      process.stderr.write(
        `\n${bold('Pinpoint demo')} on http://127.0.0.1:${port}  (demo upstream on :9101, admin on :9180)\n` +
          `  read-only key: pp_demo_read_7f3a9c2e41b8d605\n  write key:     pp_demo_write_c4e18b7a92d3f056\n` +
          `  try: curl -i -X POST http://127.0.0.1:${port}/orders -H 'x-api-key: pp_demo_read_7f3a9c2e41b8d605' -H 'content-type: application/json' -d '{"item":"tea"}'\n` +
          `  then: npx pinpoint explain <request id> --config examples/demo/pinpoint.yaml\n\n`,
      );
    });
    up.server.close();
    return code;
  },
};

const validate: Command = {
  summary: 'check a config file; every problem with its path',
  usage: `pinpoint validate [FILE | --config FILE] [--json]

Exit 0 when valid, 1 with every problem listed (path: message).`,
  options: { config: { type: 'string', short: 'c' } },
  run: async (v, pos) => {
    const file = pos[0] ?? configPath(v);
    const r = loadConfigFile(file);
    if (!r.ok) {
      reportIssues(file, r.issues, v.json === true);
      return 1;
    }
    const c = r.compiled;
    const warnings = lint(c);
    const summary = { valid: true, file, routes: c.routes.length, policies: c.policies.size, consumers: c.source.consumers.length, upstreams: Object.keys(c.source.upstreams).length, warnings };
    if (v.json === true) printJson(summary);
    else {
      process.stdout.write(`${green('✓')} ${file}: valid (${summary.routes} routes, ${summary.policies} policies, ${summary.consumers} consumers, ${summary.upstreams} upstreams)\n`);
      printFindings(warnings);
    }
    return 0;
  },
};

/**
 * The config as the commands that read the log need it: its settings, defaults filled. A file that
 * is well-formed but does not compile in this shell (an ${env:…} unset here, a key file only the
 * gateway's host has) still gives them; otherwise the first problem says why.
 */
function configSettings(cfgFile: string): { config: Config } | { problem: string } {
  const r = loadConfigFile(cfgFile);
  if (r.ok) return { config: r.compiled.source };
  if (r.settings !== undefined) return { config: r.settings };
  const first = r.issues[0];
  return { problem: first !== undefined ? `${first.path}: ${first.message}` : 'unknown problem' };
}

function openLog(v: Values): { store?: SqliteCallLogStore; error?: string; file: string } {
  const cfgFile = configPath(v);
  let dbFile = typeof v.db === 'string' ? v.db : undefined;
  if (dbFile === undefined) {
    const c = configSettings(cfgFile);
    if ('problem' in c) return { error: `config ${cfgFile} does not load (${c.problem}): run pinpoint validate, or pass --db FILE`, file: cfgFile };
    dbFile = callLogPathOf(c.config, cfgFile);
  }
  if (!existsSync(dbFile)) return { error: `no call log at ${dbFile}: has the gateway run with this config?`, file: dbFile };
  try {
    return { store: new SqliteCallLogStore(dbFile), file: dbFile };
  } catch (err) {
    return { error: (err as Error).message, file: dbFile };
  }
}

/**
 * One thing that may have answered a request the log does not have. `cause` is stable for scripts;
 * `setting` holds the config value the hint rests on (null when the config does not load here, so
 * the value is unknown rather than guessed); `hint` is the sentence a person reads.
 */
export interface InFront {
  readonly cause: 'proxy_in_front' | 'client' | 'retention' | 'mistyped_id';
  readonly setting?: { readonly trusted_proxies: readonly string[] } | { readonly retention: string | null } | null;
  readonly hint: string;
}

/** The hints as the lines `explain` prints under "What could have answered instead". */
function hintLines(could: readonly InFront[]): string {
  return could.map((c) => `  - ${c.hint}`).join('\n');
}

/** What may answer before the gateway sees a request: named from config where it can be. */
function inFront(v: Values): InFront[] {
  const c = configSettings(configPath(v));
  const client: InFront = { cause: 'client', hint: 'the client itself: a request that failed DNS, TLS or a browser CORS check never left it' };
  const mistyped: InFront = { cause: 'mistyped_id', hint: 'a mistyped id: use the x-request-id header of the response (ids the gateway makes are UUIDv7)' };
  if ('problem' in c) {
    // Without the config, say what could not be read rather than guess its settings.
    return [
      { cause: 'proxy_in_front', setting: null, hint: 'a CDN, WAF or load balancer in front of the gateway (trusted_proxies unknown: the config does not load here)' },
      client,
      { cause: 'retention', setting: null, hint: "the call log's retention (unknown: the config does not load here): older calls may have been deleted" },
      mistyped,
    ];
  }
  const proxies = c.config.trusted_proxies;
  const retention = c.config.call_log.retention ?? null;
  return [
    {
      cause: 'proxy_in_front',
      setting: { trusted_proxies: proxies },
      hint:
        proxies.length > 0
          ? `the proxies or load balancers in front of the gateway (trusted_proxies: ${proxies.join(', ')}): their own rules, WAF or rate limits answer without forwarding`
          : 'a CDN, WAF or load balancer in front of the gateway (none is configured in trusted_proxies, so clients seem to reach the gateway directly)',
    },
    client,
    { cause: 'retention', setting: { retention }, hint: `the call log's retention (${retention ?? 'keep everything'}): older calls have been deleted` },
    mistyped,
  ];
}

const explainCmd: Command = {
  summary: 'why a request got the answer it got, from the call log, and the fix',
  usage: `pinpoint explain REQUEST_ID [--config FILE | --db FILE] [--json]
pinpoint explain --since ISO|ms [--until ISO|ms] [--config FILE | --db FILE] [--json]

Reads the call log and prints the decisive policy, the cause with its evidence, the fix and the
whole trace. With a time window instead of an id, summarises what reached the gateway then.
When nothing is in the log, says so and lists what in front of the gateway could have answered.
Exit 1 when the id (or window) has no entry.`,
  options: { config: { type: 'string', short: 'c' }, db: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' } },
  run: async (v, pos) => {
    const id = pos[0];
    const time = (s: unknown): number | undefined => (typeof s === 'string' ? (/^\d+$/.test(s) ? Number(s) : Date.parse(s)) : undefined);
    const since = time(v.since);
    const until = time(v.until);
    if (id === undefined && since === undefined) {
      return fail(v, 'explain', 'a REQUEST_ID (or --since) is required', 2);
    }
    if ((since !== undefined && !Number.isFinite(since)) || (until !== undefined && !Number.isFinite(until))) {
      return fail(v, 'explain', '--since/--until must be ISO 8601 times or ms since the epoch', 2);
    }
    const log = openLog(v);
    if (log.store === undefined) {
      return fail(v, 'explain', log.error ?? '', 3);
    }
    if (id === undefined) {
      const rows = log.store.query({ ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}), limit: 1000 });
      log.store.close();
      const window = `${new Date(since ?? 0).toISOString()} – ${until !== undefined ? new Date(until).toISOString() : 'now'}`;
      if (rows.length === 0) {
        const could = inFront(v);
        if (v.json === true) printJson({ found: false, window, reached_gateway: 0, could_have_answered: could });
        else process.stderr.write(`${yellow('?')} no request reached this gateway in ${window}. What could have answered instead:\n${hintLines(could)}\n`);
        return 1;
      }
      const byOutcome: Record<string, number> = {};
      for (const r of rows) {
        const k = `${r.status} ${r.code ?? (r.layer === 'upstream' && r.status >= 400 ? 'from upstream' : 'ok')}`;
        byOutcome[k] = (byOutcome[k] ?? 0) + 1;
      }
      if (v.json === true) printJson({ found: true, window, reached_gateway: rows.length, by_outcome: byOutcome });
      else {
        process.stdout.write(`${rows.length}${rows.length === 1000 ? '+' : ''} request(s) reached the gateway in ${window}:\n`);
        for (const [k, n] of Object.entries(byOutcome).sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${String(n).padStart(6)}  ${k}\n`);
      }
      return 0;
    }
    const entry = log.store.query({ requestId: id, limit: 1 })[0];
    log.store.close();
    if (entry === undefined) {
      const could = inFront(v);
      if (v.json === true) printJson({ found: false, request_id: id, reason: 'not in the call log: it never reached this gateway', could_have_answered: could });
      else process.stderr.write(`${yellow('?')} request ${id} is not in the call log (${log.file}): it never reached this gateway. What could have answered instead:\n${hintLines(could)}\n`);
      return 1;
    }
    const x = explain(entry);
    if (v.json === true) printJson(x);
    else process.stdout.write(`${formatExplanation(x)}\n`);
    return 0;
  },
};

/** The AI part of a log line, when the entry has one: provider/model, tokens, cost, time to first token. */
export function aiColumns(r: CallLogEntry): string {
  const ai = r.ai;
  if (ai === undefined || ai === null) return '';
  const served = ai.servedModel !== '' && ai.servedModel !== ai.model ? ` (served ${ai.servedModel})` : '';
  const ttft = ai.ttftMs !== null ? ` ttft ${ai.ttftMs} ms` : '';
  return `  ${ai.provider}/${ai.model}${served} ${ai.promptTokens}+${ai.completionTokens} tok $${(ai.costMicroUsd / 1e6).toFixed(6)}${ai.stream ? ' stream' : ''}${ttft}`;
}

const logs: Command = {
  summary: 'query the call log (by request id, time, route, consumer, status, code)',
  usage: `pinpoint logs [--config FILE | --db FILE] [--since ISO|ms] [--until ISO|ms] [--route ID] [--consumer ID] [--status N] [--code CODE] [--provider P] [--model M] [--limit N] [--json]`,
  options: {
    config: { type: 'string', short: 'c' },
    db: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    route: { type: 'string' },
    consumer: { type: 'string' },
    status: { type: 'string' },
    code: { type: 'string' },
    provider: { type: 'string' },
    model: { type: 'string' },
    limit: { type: 'string' },
    'request-id': { type: 'string' },
  },
  run: async (v) => {
    const time = (s: unknown): number | undefined => (typeof s === 'string' ? (/^\d+$/.test(s) ? Number(s) : Date.parse(s)) : undefined);
    const q = {
      ...(typeof v['request-id'] === 'string' ? { requestId: v['request-id'] } : {}),
      ...(time(v.since) !== undefined ? { since: time(v.since) as number } : {}),
      ...(time(v.until) !== undefined ? { until: time(v.until) as number } : {}),
      ...(typeof v.route === 'string' ? { route: v.route } : {}),
      ...(typeof v.consumer === 'string' ? { consumer: v.consumer } : {}),
      ...(typeof v.status === 'string' ? { status: Number(v.status) } : {}),
      ...(typeof v.code === 'string' ? { code: v.code } : {}),
      ...(typeof v.provider === 'string' ? { provider: v.provider } : {}),
      ...(typeof v.model === 'string' ? { model: v.model } : {}),
      limit: typeof v.limit === 'string' ? Number(v.limit) : 50,
    };
    for (const [k, n] of Object.entries(q)) {
      if (typeof n === 'number' && !Number.isFinite(n)) {
        return fail(v, 'logs', `--${k} is not a valid ${k === 'since' || k === 'until' ? 'time' : 'number'}`, 2);
      }
    }
    const log = openLog(v);
    if (log.store === undefined) {
      return fail(v, 'logs', log.error ?? '', 3);
    }
    const rows = log.store.query(q);
    log.store.close();
    if (v.json === true) printJson(rows);
    else {
      for (const r of rows) {
        process.stdout.write(
          `${new Date(r.ts).toISOString()}  ${r.requestId}  ${String(r.status).padEnd(3)} ${r.method.padEnd(6)} ${r.path.padEnd(24)} ${(r.code ?? '').padEnd(24)} ${r.policy ?? ''} ${r.consumer ?? ''}${aiColumns(r)}\n`,
        );
      }
    }
    return 0;
  },
};

const hashKeyCmd: Command = {
  summary: 'print the sha256: form of an API key (or admin token) to put in config',
  usage: `pinpoint hash-key KEY   (or the key on standard input)`,
  options: {},
  run: async (v, pos) => {
    let key = pos[0];
    if (key === undefined) key = (await readStdin()).trim();
    if (key === '') {
      return fail(v, 'hash-key', 'no key given', 2);
    }
    const h = hashKey(key);
    if (v.json === true) printJson({ hash: h });
    else process.stdout.write(`${h}\n`);
    return 0;
  },
};

function formatDiagnosis(d: Diagnosis, label: string): string {
  const out: string[] = [];
  const head = d.verdict === 'denied' ? red(`✗ ${d.status ?? ''} ${d.code ?? ''}`) : d.verdict === 'answered' ? green(`✓ ${d.status ?? ''} answered by ${d.policy ?? ''}`) : green('✓ allowed: would be forwarded');
  out.push(`${bold(label)}  ${head}`);
  if (d.preflight !== undefined) out.push(`  preflight (browser): OPTIONS ${d.preflight.verdict === 'denied' ? red(`refused: ${d.preflight.code ?? ''}`) : green('allowed')}${d.preflight.verdict === 'denied' ? ' — the browser never sends the request itself' : ''}`);
  if (d.route !== null) out.push(`  route: ${d.route}${d.upstream !== null ? ` → upstream ${d.upstream}` : ''}   consumer: ${d.consumer ?? '(anonymous)'}`);
  if (d.verdict === 'denied') {
    out.push(`  decided by: ${d.policy ?? ''} (layer ${d.layer ?? ''}) — ${d.title ?? ''}`);
    if (d.rule !== null) out.push(`  cause: ${d.rule}`);
    if (d.client_fix !== null) out.push(`  fix (client): ${d.client_fix}`);
    if (d.config_fix !== null) out.push(`  fix (config): ${d.config_fix}`);
  }
  if (d.monitor.length > 0) out.push(yellow(`  monitor-mode policies that would deny: ${d.monitor.join(', ')}`));
  out.push('  trace:');
  for (const t of d.trace) out.push(`    ${t.outcome.padEnd(7)} ${t.policy.padEnd(24)} ${t.type.padEnd(16)} ${t.rule}${t.code !== undefined ? `  [${t.code}]` : ''}`);
  return out.join('\n');
}

const diagnoseCmd: Command = {
  summary: 'run a request (curl command, HAR file or raw HTTP) through the config without sending it',
  usage: `pinpoint diagnose [--config FILE] (--curl 'curl …' | --har FILE [--entry N] | --raw FILE) [--client-ip IP] [--json]

Dry run through the same route match and policies as live traffic: no upstream call, no rate-limit
counter consumed. Prints the verdict, the deciding policy and code, the fix, and the trace.
Exit 0 when every request would pass, 1 when one would be denied.`,
  options: { config: { type: 'string', short: 'c' }, curl: { type: 'string' }, har: { type: 'string' }, entry: { type: 'string' }, raw: { type: 'string' }, 'client-ip': { type: 'string' } },
  run: async (v) => {
    const cfgFile = configPath(v);
    const loaded = loadConfigFile(cfgFile);
    if (!loaded.ok) {
      reportIssues(cfgFile, loaded.issues, v.json === true);
      return 1;
    }
    let requests: { label: string; req: DescribedRequest }[];
    try {
      if (typeof v.curl === 'string') requests = [{ label: 'curl', req: parseCurl(v.curl) }];
      else if (typeof v.raw === 'string') requests = [{ label: v.raw, req: parseRawHttp(readFileSync(v.raw)) }];
      else if (typeof v.har === 'string') {
        const all = parseHar(readFileSync(v.har, 'utf8'));
        const pick = typeof v.entry === 'string' ? Number(v.entry) : undefined;
        if (pick !== undefined && (!Number.isInteger(pick) || all[pick] === undefined)) throw new Error(`--entry ${v.entry}: the HAR has ${all.length} entries`);
        requests = (pick !== undefined ? [[pick, all[pick]] as const] : all.map((r, i) => [i, r] as const)).map(([i, r]) => ({ label: `entry ${i}: ${r!.method} ${r!.target}`, req: r! }));
      } else {
        return fail(v, 'diagnose', 'give --curl, --har or --raw', 2);
      }
    } catch (err) {
      return fail(v, 'diagnose', (err as Error).message, 2);
    }
    const clientIp = typeof v['client-ip'] === 'string' ? v['client-ip'] : undefined;
    const results: { label: string; diagnosis: Diagnosis }[] = [];
    for (const r of requests) {
      const req = clientIp !== undefined ? { ...r.req, clientIp } : r.req;
      // A HAR, or a browser's "Copy as cURL" (Sec-Fetch-Mode: cors), is a browser request: its
      // preflight is diagnosed too. A hand-written curl command sends no preflight.
      const browser = typeof v.har === 'string' || req.headers['sec-fetch-mode'] === 'cors';
      results.push({ label: r.label, diagnosis: browser ? await diagnoseAsBrowser(loaded.compiled, req) : await diagnose(loaded.compiled, req) });
    }
    if (v.json === true) printJson(results.length === 1 && typeof v.har !== 'string' ? results[0]?.diagnosis : results);
    else for (const r of results) process.stdout.write(`${formatDiagnosis(r.diagnosis, r.label)}\n\n`);
    return results.some((r) => r.diagnosis.verdict === 'denied') ? 1 : 0;
  },
};

function printFindings(findings: readonly LintFinding[]): void {
  for (const f of findings) {
    const tag = f.severity === 'error' ? red(f.code) : yellow(f.code);
    process.stdout.write(`  ${tag} ${bold(f.path)}: ${f.message}\n    fix: ${f.fix}\n`);
  }
}

const lintCmd: Command = {
  summary: 'find what in a valid config will cause denials, before any traffic',
  usage: `pinpoint lint [FILE | --config FILE] [--days N] [--json]

Reports, each with a code, the config path and the fix: keys expired or expiring within N days
(default 14), scopes required but granted to no key, trusted_proxies that trust everyone, CORS
origins that an origin policy on the same route refuses, policies attached nowhere.
Exit 1 when a finding of severity error is present.`,
  options: { config: { type: 'string', short: 'c' }, days: { type: 'string' } },
  run: async (v, pos) => {
    const file = pos[0] ?? configPath(v);
    const r = loadConfigFile(file);
    if (!r.ok) {
      reportIssues(file, r.issues, v.json === true);
      return 1;
    }
    const days = typeof v.days === 'string' ? Number(v.days) : 14;
    if (!Number.isFinite(days) || days < 0) {
      return fail(v, 'lint', '--days must be a number of days', 2);
    }
    const findings = lint(r.compiled, { expiringDays: days });
    if (v.json === true) printJson({ file, findings });
    else if (findings.length === 0) process.stdout.write(`${green('✓')} ${file}: no findings\n`);
    else {
      process.stdout.write(`${file}: ${findings.length} finding${findings.length === 1 ? '' : 's'}\n`);
      printFindings(findings);
    }
    return findings.some((f) => f.severity === 'error') ? 1 : 0;
  },
};

const monitorReportCmd: Command = {
  summary: 'what monitor-mode policies would have denied, by policy, code, route and consumer',
  usage: `pinpoint monitor-report [--config FILE | --db FILE] [--since ISO|ms] [--until ISO|ms] [--limit N] [--json]

Reads the call log (newest first, up to --limit entries, default 10000) and groups every would-be
denial of a monitor-mode policy, so a rule can be switched to enforce knowing who it would refuse.`,
  options: { config: { type: 'string', short: 'c' }, db: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, limit: { type: 'string' } },
  run: async (v) => {
    const time = (s: unknown): number | undefined => (typeof s === 'string' ? (/^\d+$/.test(s) ? Number(s) : Date.parse(s)) : undefined);
    const since = time(v.since);
    const until = time(v.until);
    const limit = typeof v.limit === 'string' ? Number(v.limit) : 10_000;
    if ((since !== undefined && !Number.isFinite(since)) || (until !== undefined && !Number.isFinite(until)) || !Number.isInteger(limit) || limit < 1) {
      return fail(v, 'monitor-report', '--since/--until must be times, --limit a positive integer', 2);
    }
    const log = openLog(v);
    if (log.store === undefined) {
      return fail(v, 'monitor-report', log.error ?? '', 3);
    }
    // The store caps one query at 1000 rows; page back in time (entries sharing the last
    // millisecond of a full page may be skipped: a report, not an audit).
    const entries: CallLogEntry[] = [];
    let upper = until;
    while (entries.length < limit) {
      const page = log.store.query({ monitorDenied: true, ...(since !== undefined ? { since } : {}), ...(upper !== undefined ? { until: upper } : {}), limit: Math.min(1000, limit - entries.length) });
      entries.push(...page);
      if (page.length < 1000) break;
      upper = page[page.length - 1]!.ts;
    }
    log.store.close();
    const report = monitorReport(entries);
    if (v.json === true) printJson(report);
    else {
      process.stdout.write(`${report.would_deny} request(s) would have been denied by monitor-mode policies\n`);
      for (const g of report.groups) {
        process.stdout.write(`\n${bold(`${g.policy}  ${g.code}`)}  ×${g.count}\n`);
        process.stdout.write(`  routes:    ${Object.entries(g.routes).map(([k, n]) => `${k} ×${n}`).join(', ')}\n`);
        process.stdout.write(`  consumers: ${Object.entries(g.consumers).map(([k, n]) => `${k} ×${n}`).join(', ')}\n`);
        process.stdout.write(`  examples:  ${g.examples.join(', ')}\n`);
      }
    }
    return 0;
  },
};

const impactCmd: Command = {
  summary: 'replay logged requests against a proposed config and list every decision that would change',
  usage: IMPACT_USAGE,
  options: IMPACT_OPTIONS,
  run: (v) => impactCommand(v, { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), progress: process.stderr.isTTY === true, paint: { red, green, yellow, bold, dim } }),
};

const hashPasswordCmd: Command = {
  summary: 'print the scrypt hash of a password for consumers[].credentials.basic_auth',
  usage: `pinpoint hash-password   (reads the password from standard input, so it stays out of shell history)`,
  options: {},
  run: async (v) => {
    const r = hashPasswordCommand(await readStdin());
    if ('error' in r) {
      return fail(v, 'hash-password', r.error, 2);
    }
    if (v.json === true) printJson({ password_hash: r.hash });
    else process.stdout.write(`${r.hash}\n`);
    return 0;
  },
};

const errorsCmd: Command = {
  summary: 'list the error catalog (codes, statuses, layers, remediation)',
  usage: 'pinpoint errors [CODE] [--json]',
  options: {},
  run: async (v, pos) => {
    const codes = pos[0] !== undefined ? CODES.filter((c) => c === pos[0]) : CODES;
    if (codes.length === 0) {
      return fail(v, 'errors', `no code ${pos[0]}`, 1);
    }
    if (v.json === true) printJson(Object.fromEntries(codes.map((c) => [c, CATALOG[c]])));
    else for (const c of codes) process.stdout.write(`${c.padEnd(28)} ${CATALOG[c].status}  ${CATALOG[c].layer.padEnd(8)} ${CATALOG[c].title}\n`);
    return 0;
  },
};

/** package.json's version: read once, from the file next to src/ (the checkout or the installed package). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

const versionCmd: Command = {
  summary: 'print the Pinpoint and Node versions (also --version, -V)',
  usage: 'pinpoint version [--json]',
  options: {},
  run: async (v) => {
    const out = { pinpoint: packageVersion(), node: process.versions.node, v8: process.versions.v8, sqlite: process.versions.sqlite ?? null };
    if (v.json === true) printJson(out);
    else process.stdout.write(`pinpoint ${out.pinpoint} (node ${out.node}, sqlite ${out.sqlite ?? 'unknown'})\n`);
    return 0;
  },
};

export const COMMANDS: Readonly<Record<string, Command>> = {
  start,
  demo,
  validate,
  lint: lintCmd,
  diagnose: diagnoseCmd,
  explain: explainCmd,
  'monitor-report': monitorReportCmd,
  impact: impactCmd,
  logs,
  'hash-key': hashKeyCmd,
  'hash-password': hashPasswordCmd,
  'encrypt-secret': encryptSecretCmd,
  errors: errorsCmd,
  version: versionCmd,
};
