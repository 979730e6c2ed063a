/**
 * Upstream groups: targets with keep-alive connection pools (undici `Pool`), balancing
 * (round-robin or smooth weighted round-robin, as nginx does it) and passive health: a target
 * that fails `max_fails` times in a row rests for `fail_timeout_ms`.
 *
 * Pools outlive config reloads when a target's origin and pool options are unchanged, so a reload
 * does not drop warm connections; pools no longer referenced are closed after their in-flight
 * requests finish (undici `Pool.close()` waits for them).
 */
import { Pool } from 'undici';
import type { UpstreamConfig } from '../config/schema.ts';
import type { Code } from '../errors/catalog.ts';

export class Target {
  readonly url: string;
  readonly origin: string;
  /** Path prefix from the target URL ('' when none). */
  readonly basePath: string;
  readonly host: string;
  readonly weight: number;
  readonly pool: Pool;
  readonly poolKey: string;
  fails = 0;
  downUntil = 0;
  /** Smooth weighted round-robin state. */
  current = 0;

  constructor(url: string, weight: number, pool: Pool, poolKey: string) {
    const u = new URL(url);
    this.url = url;
    this.origin = u.origin;
    this.basePath = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
    this.host = u.host;
    this.weight = weight;
    this.pool = pool;
    this.poolKey = poolKey;
  }
}

export class UpstreamGroup {
  readonly id: string;
  readonly config: UpstreamConfig;
  readonly targets: readonly Target[];
  #rr = 0;

  constructor(id: string, config: UpstreamConfig, targets: readonly Target[]) {
    this.id = id;
    this.config = config;
    this.targets = targets;
  }

  /** Whether any target is up at `now` (nothing is picked, no balancing state moves). */
  anyUp(now: number): boolean {
    for (const t of this.targets) if (t.downUntil <= now) return true;
    return false;
  }

  /**
   * Next healthy target not in `exclude`. When every target rests, returns undefined and the
   * earliest time one comes back.
   */
  pick(now: number, exclude?: ReadonlySet<Target>): { target: Target | undefined; retryAt: number } {
    const ts = this.targets;
    if (this.config.balance === 'weighted') {
      let best: Target | undefined;
      let total = 0;
      for (const t of ts) {
        if (t.downUntil > now || exclude?.has(t) === true) continue;
        t.current += t.weight;
        total += t.weight;
        if (best === undefined || t.current > best.current) best = t;
      }
      if (best !== undefined) {
        best.current -= total;
        return { target: best, retryAt: 0 };
      }
    } else {
      for (let n = 0; n < ts.length; n++) {
        const t = ts[(this.#rr + n) % ts.length] as Target;
        if (t.downUntil > now || exclude?.has(t) === true) continue;
        this.#rr = (this.#rr + n + 1) % ts.length;
        return { target: t, retryAt: 0 };
      }
    }
    // Nothing outside `exclude`: a retry goes back to a healthy target already tried rather than
    // reporting "no healthy target" while one is up.
    if (exclude !== undefined) return this.pick(now);
    let retryAt = Infinity;
    for (const t of ts) if (t.downUntil > now && t.downUntil < retryAt) retryAt = t.downUntil;
    return { target: undefined, retryAt: retryAt === Infinity ? now : retryAt };
  }

  success(t: Target): void {
    if (t.fails !== 0) t.fails = 0;
  }

  failure(t: Target, now: number): void {
    t.fails++;
    if (t.fails >= this.config.health.max_fails) {
      t.downUntil = now + this.config.health.fail_timeout_ms;
      t.fails = 0;
    }
  }
}

function poolOptions(cfg: UpstreamConfig) {
  return {
    connections: cfg.connections,
    connectTimeout: cfg.timeouts.connect_ms,
    headersTimeout: cfg.timeouts.response_ms,
    bodyTimeout: cfg.timeouts.idle_ms,
    keepAliveTimeout: 4_000,
    pipelining: 1,
  };
}

export class Upstreams {
  readonly groups: ReadonlyMap<string, UpstreamGroup>;
  readonly #pools: Map<string, Pool>;

  private constructor(groups: Map<string, UpstreamGroup>, pools: Map<string, Pool>) {
    this.groups = groups;
    this.#pools = pools;
  }

  /** Builds groups for `config`, taking pools (and health state) from `previous` where unchanged. */
  static build(config: Readonly<Record<string, UpstreamConfig>>, previous?: Upstreams): Upstreams {
    const pools = new Map<string, Pool>();
    const groups = new Map<string, UpstreamGroup>();
    for (const [id, cfg] of Object.entries(config)) {
      const opts = poolOptions(cfg);
      const targets = cfg.targets.map((t) => {
        const origin = new URL(t.url).origin;
        const key = `${origin} ${JSON.stringify(opts)}`;
        let pool = pools.get(key) ?? (previous !== undefined ? previous.#pools.get(key) : undefined);
        if (pool === undefined) pool = new Pool(origin, opts);
        pools.set(key, pool);
        const target = new Target(t.url, t.weight, pool, key);
        const old = previous?.groups.get(id)?.targets.find((o) => o.url === t.url);
        if (old !== undefined) {
          target.fails = old.fails;
          target.downUntil = old.downUntil;
        }
        return target;
      });
      groups.set(id, new UpstreamGroup(id, cfg, targets));
    }
    return new Upstreams(groups, pools);
  }

  /** Closes pools that `next` no longer uses, once their in-flight requests finish. */
  async retire(next: Upstreams | undefined): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [key, pool] of this.#pools) {
      if (next === undefined || next.#pools.get(key) !== pool) closing.push(pool.close());
    }
    await Promise.allSettled(closing);
  }
}

/** Maps an undici / socket error to a catalog code (RFC 9209 error types follow from it). */
export function classifyUpstreamError(err: unknown): Code {
  const code = (err as { code?: string } | null)?.code ?? '';
  switch (code) {
    case 'ECONNREFUSED':
      return 'UPSTREAM_CONNECT_REFUSED';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return 'UPSTREAM_CONNECT_TIMEOUT';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'UPSTREAM_RESPONSE_TIMEOUT';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return 'UPSTREAM_DNS_FAILED';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return code === 'EHOSTUNREACH' || code === 'ENETUNREACH' ? 'UPSTREAM_CONNECT_REFUSED' : 'UPSTREAM_RESET';
    case 'UND_ERR_NOT_SUPPORTED':
    case 'UND_ERR_INVALID_ARG':
      // undici refused what the gateway built: a gateway fault, not the upstream's.
      return 'GATEWAY_INTERNAL_ERROR';
    default:
      if (code.startsWith('HPE_') || code === 'UND_ERR_INFO' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
        return 'UPSTREAM_PROTOCOL_ERROR';
      }
      return 'UPSTREAM_RESET';
  }
}
