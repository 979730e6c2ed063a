/**
 * One gateway process: proxy listener, optional admin listener, call log, config reload on file
 * change or SIGHUP, graceful shutdown. In cluster mode (src/server/cluster.ts) the workers run this
 * without admin, and the primary runs the admin API.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { watch, type FSWatcher } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { SqliteCallLogStore } from '../calllog/sqlite.ts';
import { CallLogWriter } from '../calllog/writer.ts';
import type { CallLogSink, CallLogWriterOptions } from '../calllog/writer.ts';
import { ThreadedCallLogWriter } from '../calllog/log-thread.ts';
import { parseDuration, type CompiledConfig } from '../config/compile.ts';
import { loadConfigFile } from '../config/load.ts';
import { sha256 } from '../credentials/api-keys.ts';
import type { ConfigIssue } from '../pipeline/types.ts';
import { Upstreams } from '../proxy/upstreams.ts';
import { AiRuntime } from '../ai/runtime.ts';
import { createAdminServer } from './admin.ts';
import { createRequestHandler, type Runtime } from './gateway.ts';
import { Metrics } from './metrics.ts';
import { createUpgradeHandler } from './upgrade.ts';
import { drainingAwareResponse } from './draining-response.ts';
import { rawProblem } from '../errors/problem.ts';
import { uuidv7 } from './request-id.ts';
import { SpikeDetector, type SpikeAlert } from '../alerts/spikes.ts';
import { request as undiciRequest } from 'undici';

export interface AppOptions {
  readonly configFile: string;
  readonly port?: number;
  readonly host?: string;
  readonly logger: Logger;
  /** Run the admin listener in this process (false for cluster workers). */
  readonly admin?: boolean;
  /** Watch the config file and reload on change (the cluster primary watches for workers). */
  readonly watch?: boolean;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Grace period for in-flight requests on shutdown. */
  readonly shutdownGraceMs?: number;
}

export class StartupError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(message: string, issues: readonly ConfigIssue[] = []) {
    super(message);
    this.issues = issues;
  }
}

export class App {
  readonly metrics = new Metrics();
  readonly #opts: AppOptions;
  #rt: Runtime;
  #server: Server | undefined;
  #admin: Server | undefined;
  #store: SqliteCallLogStore | undefined;
  #writer: CallLogSink | undefined;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #closing = false;
  readonly #tunnels = new Set<Duplex>();
  #spikes: SpikeDetector | undefined;
  #spikeTimer: NodeJS.Timeout | undefined;

  private constructor(opts: AppOptions, compiled: CompiledConfig) {
    this.#opts = opts;
    this.#rt = { compiled, upstreams: Upstreams.build(compiled.source.upstreams), ai: AiRuntime.build(compiled.ai) };
  }

  static async start(opts: AppOptions): Promise<App> {
    const loaded = loadConfigFile(opts.configFile, opts.env);
    if (!loaded.ok) throw new StartupError(`config ${opts.configFile} is invalid`, loaded.issues);
    const app = new App(opts, loaded.compiled);
    await app.#listen();
    return app;
  }

  get config(): CompiledConfig {
    return this.#rt.compiled;
  }

  get port(): number {
    return (this.#server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get adminPort(): number {
    return (this.#admin?.address() as AddressInfo | null)?.port ?? 0;
  }

  get writer(): CallLogSink | undefined {
    return this.#writer;
  }

  async #listen(): Promise<void> {
    const cfg = this.#rt.compiled.source;
    const log = this.#opts.logger;
    if (cfg.call_log.enabled) {
      try {
        this.#store = new SqliteCallLogStore(this.#rt.compiled.callLogPath, {
          onCheckpointError: (message) => log.warn({ call_log: this.#rt.compiled.callLogPath }, message),
        });
      } catch (err) {
        throw new StartupError(`call log: ${(err as Error).message}`);
      }
      const options: CallLogWriterOptions = {
        batchSize: cfg.call_log.batch_size,
        flushIntervalMs: cfg.call_log.flush_interval_ms,
        queueLimit: Math.max(cfg.call_log.queue_limit, cfg.call_log.batch_size),
        overload: cfg.call_log.overload,
        sampleRate: cfg.call_log.sample_rate,
        retentionMs: cfg.call_log.retention === null ? null : parseDuration(cfg.call_log.retention),
        onError: (err) => {
          this.metrics.callLogWriteFailures.inc();
          // The message says whether entries were kept for retry or lost (and counted as dropped).
          log.error({ err: err.message, store: this.#rt.compiled.callLogPath }, 'call log error');
        },
        onDrop: (count, reason) => {
          this.metrics.callLogDropped.inc({ reason }, count);
          log.warn({ count, reason }, 'call log overloaded: entries dropped');
        },
      };
      // The file is opened (created, migrated) above on this thread first, so a log that cannot be
      // opened stops start-up with its error; the log thread then opens its own connection.
      this.#writer =
        cfg.call_log.writer === 'thread'
          ? new ThreadedCallLogWriter({
              ...options,
              path: this.#rt.compiled.callLogPath,
              queueBytes: cfg.call_log.queue_bytes,
              nice: cfg.call_log.thread_nice,
              onWarning: (message) => log.warn({ store: this.#rt.compiled.callLogPath }, message),
            })
          : new CallLogWriter(this.#store, options);
      const writer = this.#writer;
      this.metrics.callLogStats = () => writer.stats();
    }
    const spikes = cfg.alerts.denial_spikes;
    if (spikes.enabled) {
      const detector = new SpikeDetector({ windowMs: parseDuration(spikes.window), factor: spikes.factor, minCount: spikes.min_count, cooldownMs: parseDuration(spikes.cooldown) });
      this.#spikes = detector;
      this.#spikeTimer = setInterval(() => {
        for (const alert of detector.rotate(Date.now())) {
          log.warn({ alert }, 'denial spike');
          this.metrics.denialSpikes.inc({ code: alert.code });
          if (spikes.webhook_url !== undefined) void deliverAlert(spikes.webhook_url, alert, log);
        }
      }, parseDuration(spikes.window));
      this.#spikeTimer.unref();
    }
    const deps = {
      onDenial: (code: string, route: string | null, consumer: string | null, requestId: string) => this.#spikes?.record(code, route, consumer, requestId),
      current: () => this.#rt,
      callLog: this.#writer,
      metrics: this.metrics,
      shuttingDown: () => this.#closing,
      onInternalError: (err: unknown, requestId: string) => log.error({ err, request_id: requestId }, 'internal error'),
      onRecorded: () => {
        // Draining: the connection this response leaves idle is closed now, not after the
        // client's next request (which would only hear 503) or the grace period.
        if (this.#closing) setImmediate(() => this.#server?.closeIdleConnections());
      },
    };
    const handler = createRequestHandler(deps);
    const server = createServer(
      {
        // Connection: close on every response once draining, whoever answers (draining-response.ts).
        ServerResponse: drainingAwareResponse(() => this.#closing),
        keepAliveTimeout: 65_000,
        // Whole-request deadline (headers and body): a client trickling a body cannot hold an
        // upstream connection for ever (Node answers 408 and closes).
        requestTimeout: 300_000,
        // Only WebSocket upgrades are tunnelled; any other Upgrade (h2c…) is served as plain
        // HTTP/1.1, as RFC 9110 §7.8 lets a server ignore an upgrade it does not take.
        shouldUpgradeCallback: (req: IncomingMessage) => req.headers.upgrade?.toLowerCase() === 'websocket',
      },
      handler,
    );
    // Expect: 100-continue is answered only once the policies allowed the request (gateway.ts),
    // so a client does not send a body that is about to be refused.
    server.on('checkContinue', handler);
    const upgrade = createUpgradeHandler(deps);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Tunnelled sockets are no longer HTTP connections the server can close; track them so that
      // shutdown can end them after the grace period.
      this.#tunnels.add(socket);
      socket.once('close', () => this.#tunnels.delete(socket));
      upgrade(req, socket, head);
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // Malformed HTTP never reaches a handler. If a response for an earlier request on this
      // connection is still owed, writing now would answer the wrong request: just close.
      const owed = (socket as { _httpMessage?: unknown })._httpMessage !== undefined && (socket as { _httpMessage?: unknown })._httpMessage !== null;
      if (!socket.writable || err.code === 'ECONNRESET' || owed) {
        socket.destroy();
        return;
      }
      const src = this.#rt.compiled.source;
      const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'REQUEST_HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'REQUEST_MALFORMED';
      const requestId = uuidv7();
      this.metrics.localReplies.inc({ code, policy: 'http' });
      socket.end(
        rawProblem({
          code,
          policy: 'http',
          requestId,
          requestIdHeader: src.request_id.header,
          detailed: src.errors.mode === 'detailed',
          evidence: { reason: err.code ?? 'parse error' },
          typeBase: src.errors.type_base,
        }),
      );
    });
    this.#server = server;
    const port = this.#opts.port ?? cfg.listen.port;
    const host = this.#opts.host ?? cfg.listen.host;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new StartupError(`cannot listen on ${host}:${port}: ${err.code ?? err.message}`)));
      server.listen(port, host, () => resolve());
    });
    if (this.#opts.admin !== false && cfg.admin.enabled) {
      this.#admin = createAdminServer({
        tokenHash: () => this.adminTokenHash(),
        readStore: () => {
          this.#writer?.flush();
          return this.#store;
        },
        metrics: async () => ({ contentType: this.metrics.registry.contentType, body: await this.metrics.registry.metrics() }),
        reload: () => this.reload(),
        ready: () => !this.#closing,
        config: () => this.#rt.compiled,
      });
      const admin = this.#admin;
      await new Promise<void>((resolve, reject) => {
        admin.once('error', (err: NodeJS.ErrnoException) => reject(new StartupError(`cannot listen (admin) on ${cfg.admin.host}:${cfg.admin.port}: ${err.code ?? err.message}`)));
        admin.listen(cfg.admin.port, cfg.admin.host, () => resolve());
      });
    }
    if (this.#opts.watch !== false) this.#watch();
    log.info({ port: this.port, admin_port: this.#admin !== undefined ? this.adminPort : null, config: this.#opts.configFile, routes: this.#rt.compiled.routes.length }, 'pinpoint listening');
  }

  adminTokenHash(): Buffer | undefined {
    const cfg = this.#rt.compiled.source.admin;
    if (cfg.token_hash !== undefined) return Buffer.from(cfg.token_hash.slice(7), 'hex');
    const env = (this.#opts.env ?? process.env)[cfg.token_env];
    return env !== undefined && env !== '' ? sha256(env) : undefined;
  }

  #watch(): void {
    // Watch the folder: editors and config managers replace the file (new inode) rather than write it.
    const file = path.resolve(this.#opts.configFile);
    try {
      this.#watcher = watch(path.dirname(file), (_event, name) => {
        if (name !== path.basename(file)) return;
        clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => this.reload(), 200);
      });
      this.#watcher.unref();
    } catch (err) {
      this.#opts.logger.warn({ err: (err as Error).message }, 'config file watch unavailable; reload with SIGHUP');
    }
  }

  /**
   * Loads the config file again; applies it only if it is entirely valid. In-flight requests keep
   * the runtime they started with; pools no longer used close when their requests finish.
   */
  reload(): { applied: boolean; issues: readonly ConfigIssue[] } {
    const log = this.#opts.logger;
    const loaded = loadConfigFile(this.#opts.configFile, this.#opts.env);
    if (!loaded.ok) {
      this.metrics.reloads.inc({ result: 'rejected' });
      log.error({ issues: loaded.issues }, 'config reload rejected; the running config stays in force');
      return { applied: false, issues: loaded.issues };
    }
    const prev = this.#rt;
    const next: Runtime = {
      compiled: loaded.compiled,
      upstreams: Upstreams.build(loaded.compiled.source.upstreams, prev.upstreams),
      ai: AiRuntime.build(loaded.compiled.ai, prev.ai),
    };
    this.#rt = next;
    void prev.upstreams.retire(next.upstreams);
    void prev.ai.retire(next.ai);
    this.metrics.reloads.inc({ result: 'applied' });
    const a = prev.compiled.source;
    const b = next.compiled.source;
    if (JSON.stringify([a.listen, a.admin, a.call_log]) !== JSON.stringify([b.listen, b.admin, b.call_log])) {
      log.warn('listen, admin and call_log changes take effect on restart');
    }
    log.info({ routes: next.compiled.routes.length }, 'config reloaded');
    return { applied: true, issues: [] };
  }

  /** Stops accepting, lets in-flight requests finish (up to the grace period), flushes the log. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#watcher?.close();
    clearTimeout(this.#debounce);
    clearInterval(this.#spikeTimer);
    const grace = this.#opts.shutdownGraceMs ?? 10_000;
    const server = this.#server;
    if (server !== undefined) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Requests in flight: a response whose head is not out yet says Connection: close
      // (draining-response.ts), and every connection is closed as its
      // response ends (onRecorded). No set of responses in flight is kept for this: holding every
      // response from an old-generation Set made each scavenge revisit them (≈ 39k instructions a
      // request in V8's scavenger, counted; docs/benchmarks.md).
      const timer = setTimeout(() => {
        server.closeAllConnections();
        for (const t of this.#tunnels) t.destroy();
      }, grace);
      let graceTimer: NodeJS.Timeout | undefined;
      if (this.#tunnels.size === 0) await closed;
      else await Promise.race([closed, new Promise((r) => (graceTimer = setTimeout(r, grace + 50)))]);
      clearTimeout(timer);
      clearTimeout(graceTimer);
      // Tunnels still open are ended now; wait for their close events, which write their
      // call-log entries, before the log is closed.
      await Promise.all(
        [...this.#tunnels].map((t) => {
          const done = once(t, 'close').then(() => undefined);
          t.destroy();
          return done;
        }),
      );
    }
    const admin = this.#admin;
    if (admin !== undefined) {
      await new Promise<void>((resolve) => {
        admin.close(() => resolve());
        admin.closeAllConnections();
      });
    }
    await this.#rt.upstreams.retire(undefined);
    await this.#rt.ai.retire(undefined);
    // A response's 'close' (which records its call-log entry) is emitted on a later tick than the
    // socket's; let those run before the log is closed, so no entry arrives after it.
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    try {
      this.#writer?.close();
    } catch (err) {
      this.#opts.logger.error({ err: (err as Error).message, store: this.#rt.compiled.callLogPath }, 'call log: final flush failed');
    }
    this.#opts.logger.info('pinpoint stopped');
  }
}

/** POSTs an alert to the webhook (5 s timeout); a failure is logged with the webhook's host, never thrown. */
async function deliverAlert(url: string, alert: SpikeAlert, log: Logger): Promise<void> {
  try {
    const res = await undiciRequest(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'pinpoint-alerts' },
      body: JSON.stringify(alert),
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    await res.body.dump();
    if (res.statusCode >= 300) log.error({ webhook: new URL(url).host, status: res.statusCode }, 'denial spike webhook refused the alert');
  } catch (err) {
    log.error({ webhook: new URL(url).host, err: (err as { code?: string }).code ?? (err as Error).message }, 'denial spike webhook unreachable');
  }
}
