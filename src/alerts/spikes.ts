/**
 * Denial spike alerts: counts denials per (code, route, consumer) in fixed windows, keeps a
 * rolling baseline (exponentially weighted mean of past windows), and raises an alert when a
 * window's count is both at least `min_count` and `factor` × the baseline. Alerts are logged and
 * POSTed as JSON to a webhook, with example request ids, off the request path.
 *
 * Counting is per process; with --workers each worker watches its own share of traffic.
 */
export interface SpikeOptions {
  readonly windowMs: number;
  readonly factor: number;
  readonly minCount: number;
  /** Weight of the newest window in the baseline (0..1). */
  readonly alpha?: number;
  /** No second alert for the same key within this time. */
  readonly cooldownMs: number;
}

export interface SpikeAlert {
  readonly type: 'pinpoint.denial_spike';
  readonly code: string;
  readonly route: string;
  readonly consumer: string;
  readonly count: number;
  readonly baseline: number;
  readonly window_seconds: number;
  readonly window_end: string;
  readonly examples: readonly string[];
}

interface Bucket {
  count: number;
  examples: string[];
}

export class SpikeDetector {
  readonly #o: Required<SpikeOptions>;
  #current = new Map<string, Bucket>();
  readonly #baseline = new Map<string, number>();
  readonly #lastAlert = new Map<string, number>();

  constructor(options: SpikeOptions) {
    this.#o = { alpha: 0.3, ...options };
  }

  /** Counts one denial (O(1), on the request path). */
  record(code: string, route: string | null, consumer: string | null, requestId: string): void {
    const key = `${code}\u0000${route ?? '(none)'}\u0000${consumer ?? '(anonymous)'}`;
    let b = this.#current.get(key);
    if (b === undefined) {
      b = { count: 0, examples: [] };
      this.#current.set(key, b);
    }
    b.count++;
    if (b.examples.length < 5) b.examples.push(requestId);
  }

  /** Closes the current window: returns the alerts it raises and folds it into the baseline. */
  rotate(now: number): SpikeAlert[] {
    const o = this.#o;
    const alerts: SpikeAlert[] = [];
    const seen = new Set<string>();
    for (const [key, b] of this.#current) {
      seen.add(key);
      const base = this.#baseline.get(key) ?? 0;
      const last = this.#lastAlert.get(key) ?? -Infinity;
      if (b.count >= o.minCount && b.count >= o.factor * base && now - last >= o.cooldownMs) {
        const [code = '', route = '', consumer = ''] = key.split('\u0000');
        alerts.push({
          type: 'pinpoint.denial_spike',
          code,
          route,
          consumer,
          count: b.count,
          baseline: Math.round(base * 100) / 100,
          window_seconds: o.windowMs / 1000,
          window_end: new Date(now).toISOString(),
          examples: b.examples,
        });
        this.#lastAlert.set(key, now);
      }
      this.#baseline.set(key, base === 0 && !this.#baseline.has(key) ? b.count * o.alpha : o.alpha * b.count + (1 - o.alpha) * base);
    }
    // Keys quiet this window decay toward zero; forgotten once negligible (bounded memory).
    for (const [key, base] of this.#baseline) {
      if (seen.has(key)) continue;
      const next = (1 - o.alpha) * base;
      if (next < 0.01) this.#baseline.delete(key);
      else this.#baseline.set(key, next);
    }
    this.#current = new Map();
    return alerts;
  }
}
