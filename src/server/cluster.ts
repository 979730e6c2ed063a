/**
 * `--workers N`: one primary and N worker processes sharing the proxy port (node:cluster).
 *
 * Shared state and why it stays correct:
 * - Call log: every worker writes to the same SQLite file in WAL mode with a busy timeout and
 *   `BEGIN IMMEDIATE` batches (src/calllog/sqlite.ts), so entries from all workers land in one log.
 * - Metrics: the primary's /metrics aggregates every worker's registry (prom-client AggregatorRegistry).
 * - Config: the primary validates a changed file first and only then tells workers to reload, so a
 *   bad file never reaches them; each worker swaps atomically between requests.
 * - Passive upstream health is per worker, as in nginx: each worker judges the targets it talks to.
 */
import cluster, { type Worker } from 'node:cluster';
import { watch } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { AggregatorRegistry } from 'prom-client';
import { SqliteCallLogStore } from '../calllog/sqlite.ts';
import { loadConfigFile } from '../config/load.ts';
import { sha256 } from '../credentials/api-keys.ts';
import { createAdminServer } from './admin.ts';
import { attachCounterHost, ClusterCounterStore, setCounterStore } from '../counters/index.ts';
import { App, StartupError, type AppOptions } from './app.ts';

const RELOAD = 'pinpoint:reload';
const SHUTDOWN = 'pinpoint:shutdown';

export async function runPrimary(opts: AppOptions & { workers: number }): Promise<() => Promise<void>> {
  const log = opts.logger;
  const first = loadConfigFile(opts.configFile, opts.env);
  if (!first.ok) throw new StartupError(`config ${opts.configFile} is invalid`, first.issues);
  let compiled = first.compiled;
  let stopping = false;
  const workers = new Set<Worker>();
  // Rate-limit and concurrency counters live here, in the primary, so that limits hold across
  // workers exactly (src/counters/cluster.ts); workers ask over IPC.
  const counterHost = attachCounterHost(cluster);

  const fork = (): void => {
    const w = cluster.fork({ PINPOINT_WORKER: '1' });
    workers.add(w);
    w.on('exit', (code, signal) => {
      workers.delete(w);
      if (stopping) return;
      log.error({ pid: w.process.pid, code, signal }, 'worker exited; starting a new one');
      setTimeout(fork, 1000).unref();
    });
  };
  for (let i = 0; i < opts.workers; i++) fork();

  const reload = (): { applied: boolean; issues: readonly { path: string; message: string }[] } => {
    const loaded = loadConfigFile(opts.configFile, opts.env);
    if (!loaded.ok) {
      log.error({ issues: loaded.issues }, 'config reload rejected; workers keep the running config');
      return { applied: false, issues: loaded.issues };
    }
    compiled = loaded.compiled;
    for (const w of workers) w.send({ type: RELOAD });
    log.info('config validated; workers reloading');
    return { applied: true, issues: [] };
  };

  const file = path.resolve(opts.configFile);
  let debounce: NodeJS.Timeout | undefined;
  const watcher = watch(path.dirname(file), (_e, name) => {
    if (name !== path.basename(file)) return;
    clearTimeout(debounce);
    debounce = setTimeout(reload, 200);
  });
  watcher.unref();
  process.on('SIGHUP', () => reload());

  const aggregator = new AggregatorRegistry();
  let store: SqliteCallLogStore | undefined;
  const admin = compiled.source.admin.enabled
    ? createAdminServer({
        tokenHash: () => {
          const a = compiled.source.admin;
          if (a.token_hash !== undefined) return Buffer.from(a.token_hash.slice(7), 'hex');
          const v = (opts.env ?? process.env)[a.token_env];
          return v !== undefined && v !== '' ? sha256(v) : undefined;
        },
        readStore: () => {
          if (!compiled.source.call_log.enabled) return undefined;
          store ??= new SqliteCallLogStore(compiled.callLogPath);
          return store;
        },
        metrics: async () => ({ contentType: aggregator.contentType, body: await aggregator.clusterMetrics() }),
        reload,
        ready: () => !stopping && workers.size > 0,
        config: () => compiled,
      })
    : undefined;
  if (admin !== undefined) {
    const a = compiled.source.admin;
    await new Promise<void>((resolve, reject) => {
      admin.once('error', (err: NodeJS.ErrnoException) => reject(new StartupError(`cannot listen (admin) on ${a.host}:${a.port}: ${err.code ?? err.message}`)));
      admin.listen(a.port, a.host, () => resolve());
    });
  }
  log.info({ workers: opts.workers, admin_port: admin !== undefined ? (admin.address() as AddressInfo).port : null }, 'pinpoint primary started');

  return async () => {
    stopping = true;
    watcher.close();
    const exits = [...workers].map((w) => new Promise<void>((resolve) => w.once('exit', () => resolve())));
    for (const w of workers) w.send({ type: SHUTDOWN });
    await Promise.all(exits);
    if (admin !== undefined) await new Promise<void>((resolve) => admin.close(() => resolve()));
    store?.close();
    counterHost.detach();
  };
}

/** Worker side: a normal App without admin or file watching, steered by the primary. */
export async function runWorker(opts: AppOptions): Promise<App> {
  setCounterStore(new ClusterCounterStore());
  const app = await App.start({ ...opts, admin: false, watch: false });
  // Constructing one registers prom-client's worker-side listener that answers the primary.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([app.metrics.registry]);
  process.on('message', (msg: { type?: string }) => {
    if (msg.type === RELOAD) app.reload();
    if (msg.type === SHUTDOWN) {
      void app.close().then(() => process.exit(0));
    }
  });
  return app;
}

export const isWorker = (): boolean => cluster.isWorker;
