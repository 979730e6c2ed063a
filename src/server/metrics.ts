/**
 * Prometheus metrics (prom-client). Every local reply is counted by code and policy; monitor-mode
 * would-be denials and call-log drops are counted so that nothing the gateway decides is silent.
 * Label values are bounded: codes come from the catalog, routes and policies from config.
 */
import client from 'prom-client';
import type { Code, Layer } from '../errors/catalog.ts';

export class Metrics {
  readonly registry = new client.Registry();
  /** Per-request counts kept in a plain map and handed to prom-client at scrape time. */
  // By route, then by status × 4 + layer: a number key, so no key string is built per request.
  readonly #requestCounts = new Map<string, Map<number, { route: string; status: string; layer: string; n: number }>>();
  readonly requests: client.Counter<'route' | 'status' | 'layer'> = (() => {
    const counts = this.#requestCounts;
    return new client.Counter({
      name: 'pinpoint_requests_total',
      help: 'Requests handled, by route, status and the layer that produced the status.',
      labelNames: ['route', 'status', 'layer'] as const,
      registers: [this.registry],
      collect(this: client.Counter<'route' | 'status' | 'layer'>) {
        this.reset();
        for (const byRoute of counts.values()) for (const c of byRoute.values()) this.inc({ route: c.route, status: c.status, layer: c.layer }, c.n);
      },
    });
  })();
  readonly localReplies = new client.Counter({
    name: 'pinpoint_local_replies_total',
    help: 'Responses the gateway made itself, by catalog code and deciding policy.',
    labelNames: ['code', 'policy'] as const,
    registers: [this.registry],
  });
  readonly monitorDenials = new client.Counter({
    name: 'pinpoint_monitor_would_deny_total',
    help: 'Requests a monitor-mode policy would have denied (they went on).',
    labelNames: ['policy'] as const,
    registers: [this.registry],
  });
  readonly duration = new KeyedHistogram(this.registry, {
    name: 'pinpoint_request_duration_seconds',
    help: 'Time from request to response end, by route.',
    labelNames: ['route'],
    buckets: DURATION_BUCKETS,
  });
  readonly upstreamFailures = new client.Counter({
    name: 'pinpoint_upstream_failures_total',
    help: 'Failed upstream attempts by upstream, target and catalog code (retries included).',
    labelNames: ['upstream', 'target', 'code'] as const,
    registers: [this.registry],
  });
  readonly callLogDropped = new client.Counter({
    name: 'pinpoint_call_log_dropped_total',
    help: 'Call-log entries dropped under overload, by reason (drop_oldest, sample).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly callLogWriteFailures = new client.Counter({
    name: 'pinpoint_call_log_write_failures_total',
    help: 'Failed call-log batch writes (the batch is retried, not lost).',
    registers: [this.registry],
  });
  /** Where the call log's counts come from; set by the app once its writer exists. */
  callLogStats: (() => { queued: number; written: number }) | undefined;
  readonly callLogQueued = ((metrics: Metrics) =>
    new client.Gauge({
      name: 'pinpoint_call_log_queued',
      help: 'Call-log entries accepted and not yet committed (in the queue or ring, or in the batch being written).',
      registers: [this.registry],
      collect() {
        const s = metrics.callLogStats?.();
        if (s !== undefined) this.set(s.queued);
      },
    }))(this);
  readonly callLogWritten = ((metrics: Metrics) =>
    new client.Counter({
      name: 'pinpoint_call_log_written_total',
      help: 'Call-log entries committed to the store.',
      registers: [this.registry],
      collect() {
        const s = metrics.callLogStats?.();
        if (s === undefined) return;
        // The writer keeps the total; a scrape copies it (prom-client has no set() on counters).
        this.reset();
        this.inc(s.written);
      },
    }))(this);
  readonly denialSpikes = new client.Counter({
    name: 'pinpoint_denial_spikes_total',
    help: 'Denial spike alerts raised, by catalog code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  /** AI usage per provider and requested model, handed to prom-client at scrape time. */
  readonly #aiUsage = new Map<string, { provider: string; model: string; prompt: number; completion: number; costUsd: number }>();
  readonly aiTokens: client.Counter<'provider' | 'model' | 'direction'> = (() => {
    const usage = this.#aiUsage;
    return new client.Counter({
      name: 'pinpoint_ai_tokens_total',
      help: 'Tokens used by AI calls, by provider, requested model and direction (prompt, completion).',
      labelNames: ['provider', 'model', 'direction'] as const,
      registers: [this.registry],
      collect(this: client.Counter<'provider' | 'model' | 'direction'>) {
        this.reset();
        for (const u of usage.values()) {
          this.inc({ provider: u.provider, model: u.model, direction: 'prompt' }, u.prompt);
          this.inc({ provider: u.provider, model: u.model, direction: 'completion' }, u.completion);
        }
      },
    });
  })();
  readonly aiCost: client.Counter<'provider' | 'model'> = (() => {
    const usage = this.#aiUsage;
    return new client.Counter({
      name: 'pinpoint_ai_cost_usd_total',
      help: 'Cost of AI calls in USD from the models\u2019 price tables, by provider and requested model.',
      labelNames: ['provider', 'model'] as const,
      registers: [this.registry],
      collect(this: client.Counter<'provider' | 'model'>) {
        this.reset();
        for (const u of usage.values()) if (u.costUsd > 0) this.inc({ provider: u.provider, model: u.model }, u.costUsd);
      },
    });
  })();
  readonly aiTtft = new KeyedHistogram(this.registry, {
    name: 'pinpoint_ai_time_to_first_token_seconds',
    help: 'Time from request arrival to the first streamed chunk sent to the client.',
    labelNames: ['provider', 'model'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
  });
  readonly reloads = new client.Counter({
    name: 'pinpoint_config_reloads_total',
    help: 'Config reload attempts by result (applied, rejected).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  // prom-client hashes label objects on every inc/observe, which cost more than the rest of the
  // metrics work on the proxy path: per-request and per-AI-call counts are kept in maps, durations
  // in KeyedHistogram; the rarer counters (denials, failures, reloads) stay plain prom-client.

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'pinpoint_process_' });
  }

  /** Counts one finished exchange. */
  observeAi(provider: string, requestedModel: string, promptTokens: number, completionTokens: number, costMicroUsd: number, ttftMs: number | null): void {
    let model = requestedModel;
    let key = `${provider}\u0000${model}`;
    let u = this.#aiUsage.get(key);
    if (u === undefined && this.#aiUsage.size >= AI_MODEL_SERIES_MAX) {
      // A provider that lists `*` takes any model name a client sends: past the bound, new names
      // share one series rather than grow the scrape (and the map) without end.
      model = OTHER_MODEL;
      key = `${provider}\u0000${model}`;
      u = this.#aiUsage.get(key);
    }
    if (u === undefined) {
      u = { provider, model, prompt: 0, completion: 0, costUsd: 0 };
      this.#aiUsage.set(key, u);
    }
    u.prompt += promptTokens;
    u.completion += completionTokens;
    if (costMicroUsd > 0) u.costUsd += costMicroUsd / 1e6;
    if (ttftMs !== null) this.aiTtft.observe(key, ttftMs / 1000, () => ({ provider, model }));
  }

  observe(route: string, status: number, layerOrNull: Layer | null, code: Code | null, policy: string | null, latencyMs: number): void {
    const layer = layerOrNull ?? 'upstream';
    let byRoute = this.#requestCounts.get(route);
    if (byRoute === undefined) {
      byRoute = new Map();
      this.#requestCounts.set(route, byRoute);
    }
    const key = status * 4 + LAYER_INDEX[layer];
    const c = byRoute.get(key);
    if (c === undefined) byRoute.set(key, { route, status: String(status), layer, n: 1 });
    else c.n++;
    this.duration.observe(route, latencyMs / 1000, () => ({ route }));
    if (code !== null && layer !== 'upstream') this.localReplies.inc({ code, policy: policy ?? '' });
  }
}

/** A layer's place in the request counts' number keys. */
const LAYER_INDEX: Readonly<Record<Layer, number>> = { client: 0, gateway: 1, upstream: 2, provider: 3 };

/** Distinct provider + model series of the AI metrics; later pairs count under OTHER_MODEL. */
export const AI_MODEL_SERIES_MAX = 1000;
/** The `model` label of AI calls past AI_MODEL_SERIES_MAX. */
export const OTHER_MODEL = '(other)';

/** Upper bounds (seconds) of pinpoint_request_duration_seconds. */
export const DURATION_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * A histogram as a prom-client collector, kept per label set under a caller-built key: an
 * observation is one map lookup, one bucket search and three additions (prom-client's Histogram
 * hashes the label object on every observe, about a microsecond per request). The labels object is
 * built once per key (`labels()` is called only for a new key). The registry reads it through get(),
 * in the shape prom-client's own histograms give (cumulative `le` buckets, `_sum`, `_count`), so
 * the exposition, the JSON form and cluster aggregation (`aggregator: sum`) are prom-client's.
 * Used for pinpoint_request_duration_seconds (by route) and the AI time to first token.
 */
export class KeyedHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  // MetricType is a type-only enum in prom-client's typings; the runtime value is the string.
  readonly type = 'histogram' as unknown as client.MetricType;
  readonly aggregator = 'sum' as const;
  readonly labelNames: readonly L[];
  readonly #buckets: readonly number[];
  readonly #byKey = new Map<string, { labels: Readonly<Record<L, string>>; counts: Float64Array; sum: number; count: number }>();

  constructor(registry: client.Registry, o: { name: string; help: string; labelNames: readonly L[]; buckets: readonly number[] }) {
    this.name = o.name;
    this.help = o.help;
    this.labelNames = o.labelNames;
    this.#buckets = o.buckets;
    registry.registerMetric(this as unknown as client.Metric);
  }

  observe(key: string, seconds: number, labels: () => Readonly<Record<L, string>>): void {
    const buckets = this.#buckets;
    let h = this.#byKey.get(key);
    if (h === undefined) {
      h = { labels: labels(), counts: new Float64Array(buckets.length + 1), sum: 0, count: 0 };
      this.#byKey.set(key, h);
    }
    let i = 0;
    while (i < buckets.length && seconds > (buckets[i] as number)) i++;
    (h.counts[i] as number)++;
    h.sum += seconds;
    h.count++;
  }

  get(): Promise<client.MetricObjectWithValues<client.MetricValueWithName<L | 'le'>>> {
    const buckets = this.#buckets;
    const values: client.MetricValueWithName<L | 'le'>[] = [];
    for (const h of this.#byKey.values()) {
      let cumulative = 0;
      for (let i = 0; i <= buckets.length; i++) {
        cumulative += h.counts[i] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: i < buckets.length ? (buckets[i]) : '+Inf', ...h.labels }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels: { ...h.labels } as client.LabelValues<L | 'le'>, value: h.sum });
      values.push({ metricName: `${this.name}_count`, labels: { ...h.labels } as client.LabelValues<L | 'le'>, value: h.count });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values, collect: () => undefined });
  }

  reset(): void {
    this.#byKey.clear();
  }
}
