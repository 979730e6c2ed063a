/**
 * Replays a logged request through a compiled config: the same route match (`admit`) and the same
 * `evaluate` as live traffic, as a dry run, with the request rebuilt from its replay record
 * (src/calllog/replay-record.ts) and `facts.now` set to the time it was logged, so expiry is
 * judged as it would have been then.
 *
 * Secrets were never recorded, so authentication policies get a {@link ReplayContext} through
 * `DecisionContext.replay` and decide from what the gateway established when it logged the
 * request. Anything the record cannot answer (a signature under other keys, a changed password, a
 * body that was not kept) throws {@link NotReplayable} from inside the decision: the request is
 * then reported as not replayable with that reason, never guessed.
 *
 * Counters (rate-limit, ai-limits) are not re-decided: they depend on every request on every node,
 * in the order they arrived, and on what was counted before the window. The replay passes over
 * them (a `skip` in the trace) and records which counters the request met (docs/call-log.md).
 */
import { authorizationPlaceholder, claimsRead, parsePlaceholder } from '../calllog/replay-record.ts';
import type { CallLogEntry, ReplayRecord } from '../calllog/types.ts';
import type { CompiledConfig } from '../config/compile.ts';
import type { KeyIndex, KeyRecord } from '../credentials/api-keys.ts';
import { CATALOG, type Code } from '../errors/catalog.ts';
import type { PlannedPolicy } from '../pipeline/plan.ts';
import { evaluate, type ConsumerPolicies } from '../pipeline/run.ts';
import type { CompiledPolicy, Decision, DecisionContext, ReplayContext, RequestFacts, TraceEntry } from '../pipeline/types.ts';
import { clientAddress } from '../proxy/forwarded.ts';
import { admit, hostOnly, requestFacts } from '../routing/admit.ts';

/** Policy types that decide from counters shared by all traffic: never re-decided by a replay. */
export const STATEFUL_TYPES: ReadonlySet<string> = new Set(['rate-limit', 'ai-limits']);

/** Thrown inside a decision when the record does not hold what it needs. */
export class NotReplayable extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(`not replayable: ${reason}`);
    this.name = 'NotReplayable';
    this.reason = reason;
  }
}

/** What a config decided for a replayed request. */
export interface Verdict {
  readonly outcome: 'allowed' | 'answered' | 'denied';
  /** The catalog code of a denial; null otherwise. */
  readonly code: Code | null;
  /** The deciding policy ('router', 'http' or a policy id) of a denial or a local answer. */
  readonly policy: string | null;
  /** The status of a denial or a local answer; null when forwarded. */
  readonly status: number | null;
  readonly route: string | null;
  readonly consumer: string | null;
  /** Counter policies (rate-limit, ai-limits) the request passed without them being re-decided. */
  readonly counters: readonly string[];
}

export type ReplayResult =
  | { readonly kind: 'decided'; readonly verdict: Verdict }
  | { readonly kind: 'unreplayable'; readonly reason: string };

/** Keys in sorted order, so two configs that say the same thing compare equal however written. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function record(v: unknown): Readonly<Record<string, unknown>> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/**
 * How a token policy checks what it cannot re-check in a replay: its keys (jwt) or its endpoint
 * (introspection). Two policies with the same fingerprint accept the same signatures.
 */
function verifierOf(cfg: CompiledConfig, policyId: string): string | undefined {
  const inst = cfg.source.policies[policyId];
  if (inst === undefined) return undefined;
  const c = record(inst.config);
  if (inst.type === 'jwt') return stableJson({ type: inst.type, keys: c.keys ?? [], jwks_url: c.jwks_url ?? null });
  if (inst.type === 'oauth2-introspection') return stableJson({ type: inst.type, endpoint: c.endpoint ?? null, client_id: c.client_id ?? null });
  return undefined;
}

/** Basic users' password hashes by NFC user name. */
function passwordHashes(cfg: CompiledConfig): Map<string, string> {
  const out = new Map<string, string>();
  for (const consumer of cfg.source.consumers) {
    for (const u of consumer.credentials.basic_auth) out.set(u.username.normalize('NFC'), u.password_hash);
  }
  return out;
}

/** The first trace entry of an authenticator of `type` that accepted the caller. */
function accepted(trace: readonly TraceEntry[], type: string): TraceEntry | undefined {
  return trace.find((t) => t.type === type && t.outcome === 'allow');
}

/** One config as a replay target. The config the log was recorded under is `recorded`. */
export class ReplayTarget {
  readonly cfg: CompiledConfig;
  readonly recorded: CompiledConfig;
  readonly #plans = new WeakMap<readonly PlannedPolicy[], readonly PlannedPolicy[]>();
  readonly #wrapped = new WeakMap<CompiledPolicy, CompiledPolicy>();
  readonly #consumers = new Map<string, readonly CompiledPolicy[]>();
  readonly #replays = new WeakMap<RequestFacts, Replay>();
  readonly #claimsRead: ReadonlySet<string>;
  readonly #passwords: Map<string, string>;
  readonly #recordedPasswords: Map<string, string>;
  /** Whether this config has a key the recorded config lacks (an unknown value could now be one). */
  readonly #addsKeys: boolean;

  /**
   * @param cfg the config to replay through.
   * @param recorded the config the requests were logged under (the running one); a placeholder's
   *   key id and a user's password verdict are interpreted in it.
   */
  constructor(cfg: CompiledConfig, recorded: CompiledConfig) {
    this.cfg = cfg;
    this.recorded = recorded;
    this.#claimsRead = claimsRead(cfg.source);
    this.#passwords = passwordHashes(cfg);
    this.#recordedPasswords = cfg === recorded ? this.#passwords : passwordHashes(recorded);
    this.#addsKeys = cfg.apiKeys !== recorded.apiKeys && [...cfg.apiKeys.records()].some((k) => recorded.apiKeys.byDigest(k.hash) === undefined);
  }

  /** Replays one logged request. Never rejects for a request the record cannot answer: that is a result. */
  async replay(entry: CallLogEntry): Promise<ReplayResult> {
    const rec = entry.replay;
    if (rec === undefined || rec === null) return { kind: 'unreplayable', reason: 'no replay record (logged before replay records existed, or with call_log.replay off)' };
    const cfg = this.cfg;
    const headers = rec.headers as Readonly<Record<string, string | string[] | undefined>>;
    const method = entry.method;
    const path = entry.path;
    const hostHeader = headers.host;
    const host = hostOnly(typeof hostHeader === 'string' ? hostHeader : entry.host);
    // A repeated single-value header is refused before any config is consulted; the log's own
    // verdict says whether there was one (the parsed headers no longer show repeats).
    const first = entry.trace[0];
    const dup = first?.code === 'REQUEST_HEADER_DUPLICATED' ? first.evidence?.header : undefined;
    const a = admit(cfg, method, path, host, typeof dup === 'string' ? [dup, '', dup, ''] : undefined, headers['transfer-encoding']);
    if (a.kind === 'deny') {
      return { kind: 'decided', verdict: { outcome: 'denied', code: a.code, policy: a.policy, status: statusOf(a.code), route: null, consumer: null, counters: [] } };
    }
    const route = a.route;
    const client = clientAddress(rec.peer, headers, cfg.trustedProxies, cfg.source.trusted_proxy_header);
    const cl = headers['content-length'];
    // Decisions that depend on time (key expiry, token exp/nbf) are judged when the request came.
    const facts = requestFacts({ method, path, query: rec.query, host, headers }, a.params, client, typeof cl === 'string' ? Number(cl) : undefined, entry.ts);

    const replay = new Replay(this, entry, rec);
    this.#replays.set(facts, replay);
    try {
      const v = await evaluate(this.#plan(route.plan), facts, route.id, this.#consumerPolicies, [], { dryRun: true, body: () => replay.body(undefined), protocol: route.protocol });
      const counters = [...replay.counters];
      const consumer = v.identity?.consumer ?? null;
      const missing = replay.bodyMissing;
      // A policy may carry on without a body in a dry run (openapi-validate checks what it can):
      // only its own denial, from what it could check, is certain. Anything else would be a guess.
      if (missing !== undefined && !(v.denyPolicy !== undefined && v.denyPolicy.id === missing.policy)) {
        return { kind: 'unreplayable', reason: missing.reason };
      }
      if (!v.allowed && v.deny !== undefined && v.denyPolicy !== undefined) {
        return { kind: 'decided', verdict: { outcome: 'denied', code: v.deny.code, policy: v.denyPolicy.id, status: statusOf(v.deny.code), route: route.id, consumer, counters } };
      }
      if (v.respond !== undefined) {
        return { kind: 'decided', verdict: { outcome: 'answered', code: null, policy: v.respond.policy, status: v.respond.status, route: route.id, consumer, counters } };
      }
      return { kind: 'decided', verdict: { outcome: 'allowed', code: null, policy: null, status: null, route: route.id, consumer, counters } };
    } catch (err) {
      if (err instanceof NotReplayable) return { kind: 'unreplayable', reason: err.reason };
      throw err;
    }
  }

  // --- what Replay asks of the target -------------------------------------------------------

  /** The key a logged value was, followed into this config by its hash. */
  apiKey(presented: string, keys: KeyIndex): KeyRecord | undefined {
    const ph = parsePlaceholder(presented);
    // A value the logging config did not treat as secret was stored as sent: look it up as is.
    if (ph === undefined) return keys.find(presented);
    if (ph.key !== undefined) {
      const then = this.recorded.apiKeys.byId(ph.key);
      if (then === undefined) throw new NotReplayable(`api-key: key ${ph.key} is not in the current config, so it cannot be followed into this one`);
      return keys.byDigest(then.hash);
    }
    // The value matched no key when logged. It still matches none unless this config adds keys.
    if (keys === this.recorded.apiKeys || !this.#addsKeys) return undefined;
    throw new NotReplayable('api-key: the presented value matched no key when logged, and this config adds keys it might match (keys are not recorded)');
  }

  passwordChanged(username: string): boolean {
    return this.#passwords.get(username) !== this.#recordedPasswords.get(username);
  }

  verifierChanged(policyId: string, loggedBy: string): boolean {
    const here = verifierOf(this.cfg, policyId);
    return here === undefined || here !== verifierOf(this.recorded, loggedBy);
  }

  get claimsRead(): ReadonlySet<string> {
    return this.#claimsRead;
  }

  // --- plans whose policies see the replay --------------------------------------------------

  #plan(base: readonly PlannedPolicy[]): readonly PlannedPolicy[] {
    let p = this.#plans.get(base);
    if (p === undefined) {
      p = Object.freeze(base.map((pp) => ({ ...pp, policy: this.#wrap(pp.policy) })));
      this.#plans.set(base, p);
    }
    return p;
  }

  readonly #consumerPolicies: ConsumerPolicies = {
    get: (consumer: string) => {
      let list = this.#consumers.get(consumer);
      if (list === undefined) {
        const own = this.cfg.consumerPolicies.get(consumer);
        if (own === undefined) return undefined;
        list = Object.freeze(own.map((p) => this.#wrap(p)));
        this.#consumers.set(consumer, list);
      }
      return list;
    },
  };

  /**
   * The same policy, deciding with `ctx.replay` set. Its own decide runs unchanged: only counter
   * policies are passed over.
   */
  #wrap(policy: CompiledPolicy): CompiledPolicy {
    let w = this.#wrapped.get(policy);
    if (w === undefined) {
      const decide = (ctx: DecisionContext): Decision | Promise<Decision> => {
        const replay = this.#replays.get(ctx.facts);
        if (replay === undefined) return policy.decide(ctx);
        if (STATEFUL_TYPES.has(policy.type)) {
          replay.counters.add(policy.id);
          return { outcome: 'skip', rule: 'counter not re-decided in a replay' };
        }
        return policy.decide({ ...ctx, replay: replay.contextFor(policy), body: () => replay.body(policy.id) });
      };
      // Object.create keeps every other member (id, type, mode, bodyLimit, needsBody) as it is.
      w = Object.create(policy, { decide: { value: decide, enumerable: true } }) as CompiledPolicy;
      this.#wrapped.set(policy, w);
    }
    return w;
  }
}

function statusOf(code: Code): number {
  return CATALOG[code].status;
}

/** The state of replaying one request through one target. */
class Replay {
  readonly #target: ReplayTarget;
  readonly #entry: CallLogEntry;
  readonly #rec: ReplayRecord;
  readonly counters = new Set<string>();
  /** Set when a policy asked for a body the record does not hold. */
  bodyMissing: { readonly policy: string | undefined; readonly reason: string } | undefined;

  constructor(target: ReplayTarget, entry: CallLogEntry, rec: ReplayRecord) {
    this.#target = target;
    this.#entry = entry;
    this.#rec = rec;
  }

  /** The body as recorded for `policy`; a request that had none replays with none. */
  body(policy: string | undefined): Promise<Buffer> {
    const b = this.#rec.body;
    let reason: string;
    if (b !== undefined) {
      const buf = Buffer.from(b.base64, 'base64');
      if (buf.length === b.bytes) return Promise.resolve(buf);
      reason = `body not recorded (${buf.length} of ${b.bytes} bytes kept, call_log.replay_body_bytes)`;
    } else {
      const h = this.#rec.headers;
      const declared = h['content-length'];
      if (h['transfer-encoding'] === undefined && (declared === undefined || declared === '0')) return Promise.resolve(Buffer.alloc(0));
      reason = 'body not recorded';
    }
    this.bodyMissing ??= { policy, reason };
    return Promise.reject(new NotReplayable(reason));
  }

  contextFor(policy: CompiledPolicy): ReplayContext {
    const target = this.#target;
    const rec = this.#rec;
    const trace = this.#entry.trace;
    const stop = (reason: string): never => {
      throw new NotReplayable(reason);
    };
    return {
      identity: rec.identity,
      claims: rec.claims,
      apiKey: (presented, keys) => target.apiKey(presented, keys),
      basicCredentials: (authorization) => {
        const a = authorizationPlaceholder(authorization);
        if (a === undefined || a.scheme?.toLowerCase() !== 'basic') return undefined;
        if (a.placeholder.user !== undefined) return { username: a.placeholder.user };
        if (a.placeholder.malformed !== undefined) return { malformed: a.placeholder.malformed };
        // Only configured user names are recorded (src/calllog/replay-record.ts): this one was
        // none, and what it was is not known, so neither is what a new config would decide.
        return stop('basic-auth: the user name was no configured user when the request was logged, and is not recorded');
      },
      basicPasswordCorrect: (username) => {
        if (target.passwordChanged(username)) stop(`basic-auth: the password of ${username} changed, and passwords are not recorded`);
        const id = rec.identity;
        if (id?.credentialType === 'basic-auth' && id.credentialId === username) return true;
        // A wrong password leaves no identity, only the trace of the denial (its operator-only reason).
        const denied = trace.find((t) => t.type === 'basic-auth' && t.code === 'BASIC_AUTH_INVALID' && t.evidence?.username === username);
        if (denied?.evidence?.reason === 'wrong_password') return false;
        return stop(`basic-auth: the password of ${username} was not checked when the request was logged`);
      },
      verifiedToken: (type) => {
        const id = rec.identity;
        const by = accepted(trace, type);
        if (id?.credentialType !== type || rec.claims === null || by === undefined) {
          return stop(`${type}: no token was accepted when the request was logged, and tokens are not recorded`);
        }
        if (target.verifierChanged(policy.id, by.policy)) {
          return stop(`${type}: ${policy.id} verifies tokens differently from ${by.policy} when logged (keys or endpoint changed); a signature cannot be checked again without the token`);
        }
        const other = rec.otherClaims ?? [];
        for (const name of target.claimsRead) if (other.includes(name)) stop(`${type}: claim ${name} is read by this config but was not recorded`);
        const ev = by.evidence;
        return {
          claims: rec.claims,
          alg: typeof ev?.alg === 'string' ? ev.alg : null,
          kid: typeof ev?.kid === 'string' ? ev.kid : null,
        };
      },
      unreplayable: stop,
    };
  }
}
