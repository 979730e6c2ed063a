/**
 * The AI gateway's live state, rebuilt on each config load: one undici Agent per provider (keep-
 * alive pool; the SSRF guard on every connection unless the provider allows private networks),
 * which targets and keys are resting after failures, and the smooth weighted round-robin
 * positions. Health survives a reload for targets and keys that are still configured.
 */
import { Agent } from 'undici';
import type { CompiledAi, CompiledModel, CompiledProvider, CompiledTarget, ProviderKey } from './compile.ts';
import { TtlLru } from '../cache/ttl-lru.ts';
import { guardedLookup } from './ssrf.ts';

interface Wrr {
  current: number;
}

/** Rest periods: long enough to stop hammering a failing target, short enough to come back soon. */
const REST_AFTER_FAILURE_MS = 10_000;
const REST_KEY_AFTER_AUTH_MS = 60_000;
/**
 * Rest periods kept at once, least recently set out first. Targets of a provider that lists
 * `models: ['*']` are named by the client (`provider/<any name>`), so while that provider fails,
 * each new name adds one; evicting a rest only means that target is tried again sooner.
 */
export const REST_ENTRIES_MAX = 4096;

export class AiRuntime {
  readonly ai: CompiledAi;
  readonly #agents = new Map<string, Agent>();
  /** Resting until (ms since epoch), by target id and by `<provider>#<key id>`. */
  readonly #restUntil: TtlLru<number>;
  readonly #wrr = new Map<string, Wrr>();

  private constructor(ai: CompiledAi, restUntil: TtlLru<number>) {
    this.ai = ai;
    this.#restUntil = restUntil;
  }

  static build(ai: CompiledAi, previous?: AiRuntime): AiRuntime {
    const rt = new AiRuntime(ai, previous !== undefined ? previous.#restUntil.clone() : new TtlLru<number>(REST_ENTRIES_MAX));
    for (const p of ai.providers.values()) {
      const key = agentKey(p);
      const old = previous !== undefined ? previous.#agents.get(key) : undefined;
      rt.#agents.set(
        key,
        old ??
          new Agent({
            connections: p.connections,
            headersTimeout: p.timeoutMs,
            bodyTimeout: p.timeoutMs,
            keepAliveTimeout: 30_000,
            connect: p.allowPrivate ? { timeout: p.connectTimeoutMs } : { timeout: p.connectTimeoutMs, lookup: guardedLookup },
          }),
      );
    }
    return rt;
  }

  agent(p: CompiledProvider): Agent {
    return this.#agents.get(agentKey(p)) as Agent;
  }

  /** Closes agents `next` does not reuse, once their requests finish. */
  async retire(next: AiRuntime | undefined): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [key, agent] of this.#agents) if (next === undefined || next.#agents.get(key) !== agent) closing.push(agent.close());
    await Promise.allSettled(closing);
  }

  /**
   * The next target for a model, skipping those already tried and those resting. When every
   * untried target rests, the one that comes back soonest is used rather than failing outright.
   */
  pick(model: CompiledModel, tried: ReadonlySet<CompiledTarget>, now: number): CompiledTarget | undefined {
    const open = model.targets.filter((t) => !tried.has(t));
    if (open.length === 0) return undefined;
    const until = (t: CompiledTarget): number => this.#restUntil.get(t.id, now, false) ?? 0;
    const healthy = open.filter((t) => until(t) <= now);
    const pool = healthy.length > 0 ? healthy : [open.reduce((a, b) => (until(a) <= until(b) ? a : b))];
    if (model.balance === 'ordered' || pool.length === 1) return pool[0];
    return this.#smoothWeighted(`m:${model.name}`, pool, (t) => t.id, (t) => t.weight);
  }

  /** The next key of a provider, skipping resting keys (all resting: the soonest back). */
  key(p: CompiledProvider, tried: ReadonlySet<string>, now: number): ProviderKey | undefined {
    const open = p.keys.filter((k) => !tried.has(k.id));
    if (open.length === 0) return undefined;
    const healthy = open.filter((k) => this.#restUntil.get(`${p.id}#${k.id}`, now, false) === undefined);
    const pool = healthy.length > 0 ? healthy : open;
    if (pool.length === 1) return pool[0];
    return this.#smoothWeighted(`k:${p.id}`, pool, (k) => k.id, (k) => k.weight);
  }

  restTarget(t: CompiledTarget, now: number, ms = REST_AFTER_FAILURE_MS): void {
    const until = now + ms;
    this.#restUntil.set(t.id, until, until, now);
  }

  restKey(p: CompiledProvider, k: ProviderKey, now: number, ms = REST_KEY_AFTER_AUTH_MS): void {
    const until = now + ms;
    this.#restUntil.set(`${p.id}#${k.id}`, until, until, now);
  }

  /** Rest periods held (for tests and diagnostics). */
  get resting(): number {
    return this.#restUntil.size;
  }

  targetOk(t: CompiledTarget): void {
    this.#restUntil.delete(t.id);
  }

  /**
   * Smooth weighted round-robin (as nginx's upstream module does it): each pick adds every
   * candidate's weight to its running score, takes the highest, and subtracts the total from it,
   * which spreads a 5:1:1 split as a,a,b,a,c,a,a rather than in bursts.
   */
  #smoothWeighted<T>(scope: string, pool: readonly T[], id: (t: T) => string, weight: (t: T) => number): T {
    let total = 0;
    let best: T | undefined;
    let bestState: Wrr | undefined;
    for (const c of pool) {
      const k = `${scope}|${id(c)}`;
      let st = this.#wrr.get(k);
      if (st === undefined) {
        st = { current: 0 };
        this.#wrr.set(k, st);
      }
      const w = weight(c);
      st.current += w;
      total += w;
      if (bestState === undefined || st.current > bestState.current) {
        best = c;
        bestState = st;
      }
    }
    (bestState as Wrr).current -= total;
    return best as T;
  }
}

function agentKey(p: CompiledProvider): string {
  return `${p.id} ${p.origin} ${p.connections} ${p.timeoutMs} ${p.connectTimeoutMs} ${p.allowPrivate}`;
}
