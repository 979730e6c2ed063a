/**
 * `pinpoint impact`: the call log replayed against a proposed config (engine in src/impact/).
 * Output goes through an {@link ImpactIo}, so the command runs the same in a test as in a terminal.
 *
 * Exit codes: 0 nothing changes, 1 a decision changes (a CI gate on config changes), 2 bad input
 * (an option, or a config that does not load: every issue names the file and the field), 3 the
 * call log cannot be read.
 */
import { existsSync } from 'node:fs';
import { SqliteCallLogStore } from '../calllog/sqlite.ts';
import type { CallLogEntry, CallLogScan, ScanCursor } from '../calllog/types.ts';
import type { CompiledConfig } from '../config/compile.ts';
import { loadConfigFile } from '../config/load.ts';
import { impact } from '../impact/impact.ts';
import { formatImpact, progressLine, type Paint } from '../impact/report.ts';
import type { Values } from './command.ts';

export interface ImpactIo {
  out(s: string): void;
  err(s: string): void;
  /** Draw a progress bar on err (a person is watching a terminal). Never with --json. */
  readonly progress: boolean;
  readonly paint?: Paint;
  /** Clock, for durations like --since 24h. */
  readonly now?: () => number;
}

export const IMPACT_USAGE = `pinpoint impact --config NEW.yaml [--current CURRENT.yaml] [--db FILE] [--since 24h | --since T [--until T]] [--route ID] [--limit N] [--examples N] [--json]

Replays the call log's requests (default: the last 24 hours) through the config in force (--current,
default $PINPOINT_CONFIG or ./pinpoint.yaml) and through NEW.yaml, with the same route match and
policies as live traffic (a dry run, at each request's own time), and lists every decision that
changes: newly denied, newly allowed, denied with another code, grouped by route, consumer and code
with counts and example request ids (--examples, default 3). Requests the log cannot replay (a body
that was not kept, a token under changed keys, a changed password) are counted by reason, never
guessed. Counters (rate-limit, ai-limits) are not re-decided. T is RFC 3339 or a duration ago
(30m, 24h, 7d). --limit caps the entries replayed (oldest first).
Exit 0 when nothing changes, 1 when a decision changes, 2 on bad input, 3 when the log cannot be read.`;

export const IMPACT_OPTIONS = {
  config: { type: 'string', short: 'c' },
  current: { type: 'string' },
  db: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  route: { type: 'string' },
  limit: { type: 'string' },
  examples: { type: 'string' },
} as const;

const DURATION_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** RFC 3339 date-time (§5.6): a full date, a full time and a mandatory offset. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** A time given as RFC 3339, or as a duration before `now` (24h, 30m); undefined when neither. */
export function parseWhen(text: string, now: number): number | undefined {
  const d = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (d !== null) return now - Number(d[1]) * (DURATION_MS[d[2] as string] as number);
  if (!RFC3339.test(text)) return undefined;
  const t = Date.parse(text);
  return Number.isFinite(t) ? t : undefined;
}

/** The window's entries, oldest first, one bounded page at a time: memory stays flat. */
export async function* logEntries(store: Pick<SqliteCallLogStore, 'scan'>, q: Omit<CallLogScan, 'after' | 'limit'>, limit: number): AsyncGenerator<CallLogEntry> {
  let after: ScanCursor | undefined;
  let n = 0;
  while (n < limit) {
    const page = store.scan({ ...q, ...(after !== undefined ? { after } : {}), limit: Math.min(500, limit - n) });
    for (const e of page.entries) {
      yield e;
      n++;
    }
    if (page.next === null) return;
    after = page.next;
  }
}

export async function impactCommand(v: Values, io: ImpactIo): Promise<number> {
  const json = v.json === true;
  const usage = (msg: string): number => {
    io.err(`pinpoint impact: ${msg}\n`);
    return 2;
  };
  if (typeof v.config !== 'string') return usage('--config NEW.yaml (the proposed config) is required');
  const now = (io.now ?? Date.now)();
  const since = parseWhen(typeof v.since === 'string' ? v.since : '24h', now);
  // The upper bound is exclusive: +1 keeps a request logged in this very millisecond.
  const until = typeof v.until === 'string' ? parseWhen(v.until, now) : now + 1;
  if (since === undefined) return usage(`--since ${String(v.since)}: give an RFC 3339 time (2026-05-01T00:00:00Z) or a duration ago (24h)`);
  if (until === undefined) return usage(`--until ${String(v.until)}: give an RFC 3339 time or a duration ago`);
  if (until <= since) return usage('--until must be after --since');
  const limit = typeof v.limit === 'string' ? Number(v.limit) : Number.MAX_SAFE_INTEGER;
  const examples = typeof v.examples === 'string' ? Number(v.examples) : 3;
  if (!Number.isSafeInteger(limit) || limit < 1) return usage('--limit must be a positive integer');
  if (!Number.isSafeInteger(examples) || examples < 0) return usage('--examples must be a whole number');

  const nextFile = v.config;
  const currentFile = typeof v.current === 'string' ? v.current : (process.env.PINPOINT_CONFIG ?? 'pinpoint.yaml');
  const load = (file: string): CompiledConfig | undefined => {
    const r = loadConfigFile(file);
    if (r.ok) return r.compiled;
    // Every issue names its field (a path in the file), or the file itself when it cannot be read.
    if (json) io.out(`${JSON.stringify({ valid: false, file, issues: r.issues }, null, 2)}\n`);
    else io.err(`pinpoint impact: ${file}: ${r.issues.length} problem${r.issues.length === 1 ? '' : 's'}\n${r.issues.map((i) => `  ${i.path}: ${i.message}\n`).join('')}`);
    return undefined;
  };
  const current = load(currentFile);
  if (current === undefined) return 2;
  const next = load(nextFile);
  if (next === undefined) return 2;

  const dbFile = typeof v.db === 'string' ? v.db : current.callLogPath;
  if (!existsSync(dbFile)) {
    io.err(`pinpoint impact: no call log at ${dbFile}: has the gateway run with ${currentFile}? (or pass --db FILE)\n`);
    return 3;
  }
  let store: SqliteCallLogStore;
  try {
    store = new SqliteCallLogStore(dbFile);
  } catch (err) {
    io.err(`pinpoint impact: ${(err as Error).message}\n`);
    return 3;
  }
  const window = { since, until, ...(typeof v.route === 'string' ? { route: v.route } : {}) };
  const bar = io.progress && !json;
  const total = bar ? Math.min(store.count(window), limit) : 0;
  let drawn = 0;
  try {
    const report = await impact(logEntries(store, window, limit), {
      current,
      next,
      examples,
      ...(bar
        ? {
            onEntry: (done: number) => {
              const t = Date.now();
              if (t - drawn < 100 && done < total) return;
              drawn = t;
              io.err(progressLine(done, total));
            },
          }
        : {}),
    });
    if (bar) io.err('\r\u001b[K');
    if (json) {
      const head = { current: currentFile, next: nextFile, since: new Date(since).toISOString(), until: new Date(until).toISOString(), route: window.route ?? null };
      io.out(`${JSON.stringify({ ...head, ...report }, null, 2)}\n`);
    } else {
      io.out(`${formatImpact(report, { next: nextFile, current: currentFile, since, until }, io.paint)}\n`);
    }
    return report.changed > 0 ? 1 : 0;
  } finally {
    store.close();
  }
}
