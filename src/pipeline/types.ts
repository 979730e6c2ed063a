/**
 * The policy contract. A policy is a folder under src/policies/<type>/ exporting a
 * {@link PolicyModule}: its config schema, a `compile` step run once per config load, and the
 * compiled policy's pure `decide`. The same `decide` runs in live enforcement, in dry-run
 * diagnosis and in traces: there is no second implementation that could drift.
 */
import type { TSchema, Static } from '@sinclair/typebox';
import type { Code } from '../errors/catalog.ts';
import type { KeyIndex, KeyRecord } from '../credentials/api-keys.ts';
import type { Digests } from '../credentials/digests.ts';

/** What a policy may read about a request. Built once per request; never mutated by policies. */
export interface RequestFacts {
  readonly method: string;
  /** Path without the query string, as received (not decoded). */
  readonly path: string;
  /** Raw query string without '?', or '' when none. */
  readonly rawQuery: string;
  readonly host: string;
  /** Lower-cased header names, as Node's IncomingMessage exposes them. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The client IP after applying trusted_proxies (see src/proxy/forwarded.ts). */
  readonly clientIp: string;
  /** Where clientIp came from: 'socket' or the forwarding header that carried it. */
  readonly clientIpSource: 'socket' | 'x-forwarded-for' | 'forwarded';
  /** Route path parameters, e.g. { id: '42' } for /orders/{id}. */
  readonly params: Readonly<Record<string, string | undefined>>;
  /** Declared body length, or undefined for chunked / absent bodies. */
  readonly contentLength: number | undefined;
  /** Wall-clock time of the decision in ms since the epoch (injected so decide stays pure). */
  readonly now: number;
  /**
   * The request's memo of credential digests (src/credentials/digests.ts), so policies and the call
   * log hash each presented value once. Absent where facts are built by hand (tests): each
   * lookup then hashes.
   */
  readonly digests?: Digests | undefined;
}

/** The caller, once an authentication policy has identified it. */
export interface Identity {
  readonly consumer: string;
  /** Non-secret id of the credential used (a key's id, never the key). */
  readonly credentialId: string;
  readonly credentialType: string;
  /** Scopes / permissions granted (API key scopes, JWT `scope`/`scp`, introspection `scope`). */
  readonly scopes: ReadonlySet<string>;
  /** Roles (JWT / introspection role claims); empty when the credential has none. */
  readonly roles?: ReadonlySet<string>;
  /** Verified token claims (JWT payload, introspection response), for ownership rules. Never raw tokens. */
  readonly claims?: Readonly<Record<string, unknown>>;
  /** Consumer groups the consumer belongs to (from config). */
  readonly groups?: ReadonlySet<string>;
}

/** The per-request state a policy can see: facts plus what earlier policies established. */
export interface DecisionContext {
  readonly facts: RequestFacts;
  readonly identity: Identity | undefined;
  readonly routeId: string | undefined;
  /**
   * True in `diagnose` / `trace`: a stateful policy (rate limits, concurrency) must look at its
   * counters without consuming them, and must not call out to remote services it can answer
   * from cache.
   */
  readonly dryRun: boolean;
  /**
   * The request body, buffered on first call (bounded by the route's body limit). Only policies
   * that declare `needsBody` may call it; others keep the body streaming.
   */
  readonly body: () => Promise<Buffer>;
  /**
   * The client protocol of an AI route (`openai` Chat Completions, `anthropic` Messages, `prompt`
   * APIs), undefined on plain proxy routes. AI policies answer in that protocol's headers.
   */
  readonly protocol?: AiProtocol | undefined;
  /**
   * Set only when `pinpoint impact` replays a logged request: the secrets were not recorded, so
   * authentication policies decide from what the gateway established when it logged the request
   * (see {@link ReplayContext}). Undefined in live traffic, `diagnose` and `trace`.
   */
  readonly replay?: ReplayContext | undefined;
}

/**
 * What a replayed request carries instead of its credentials. Header and query values that held a
 * secret are placeholders (src/calllog/replay-record.ts); authenticators resolve them through these
 * methods, never by guessing: what cannot be known stops the replay of that request with
 * {@link ReplayContext.unreplayable}, and the request is reported as not replayable.
 */
export interface ReplayContext {
  /** Who the gateway identified when it logged the request; null when nobody. */
  readonly identity: { readonly consumer: string; readonly credentialType: string; readonly credentialId: string } | null;
  /** The verified token claims recorded with the request (the ones policies read); null when none. */
  readonly claims: Readonly<Record<string, unknown>> | null;
  /**
   * The API key a presented value was when the request was logged, looked up in `keys` (the
   * replayed config's index, so a key removed, revoked or re-scoped there counts); undefined when
   * it is none of `keys`. Values stored as sent (not secret in the logging config) are looked up
   * as they are.
   */
  apiKey(presented: string, keys: KeyIndex): KeyRecord | undefined;
  /**
   * An Authorization value whose Basic credentials were redacted: the user name, or why the
   * credentials could not be read; undefined when the value is not a redacted one.
   */
  basicCredentials(authorization: string): { readonly username: string } | { readonly malformed: string } | undefined;
  /** Whether `username`'s password was right when logged, still judged by the same hash here. */
  basicPasswordCorrect(username: string): boolean;
  /**
   * The recorded verified claims of the token a `type` policy accepted, with the JWT header's
   * `alg` and `kid`. Stops the replay when no such token was verified when logged, when this policy
   * verifies with other keys or another endpoint than the one that did (a signature cannot be
   * checked again without the token), or when a claim it reads was not recorded.
   */
  verifiedToken(type: 'jwt' | 'oauth2-introspection'): { readonly claims: Readonly<Record<string, unknown>>; readonly alg: string | null; readonly kid: string | null };
  /** Stops replaying this request: the decision depends on something the record does not hold. */
  unreplayable(reason: string): never;
}

export type AiProtocol = 'openai' | 'anthropic' | 'prompt';

/** What an AI exchange used, reported to policies that count it (ai-limits) once known. */
export interface AiUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Cost in micro-dollars (1e-6 USD) from the model's price table; 0 when it has none. */
  readonly costMicroUsd: number;
}

/** Changes a policy asks the proxy to make to the request on its way upstream. */
export interface RequestTransform {
  readonly setHeaders?: Readonly<Record<string, string>>;
  readonly removeHeaders?: readonly string[];
  readonly setQuery?: Readonly<Record<string, string>>;
  readonly removeQuery?: readonly string[];
}

export type Evidence = Readonly<Record<string, string | number | boolean | readonly string[] | null>>;

export interface Allow {
  readonly outcome: 'allow';
  /** Which rule allowed, for the trace (e.g. 'key k_read', 'allow 10.0.0.0/8'). */
  readonly rule: string;
  readonly evidence?: Evidence;
  /** Set by authentication policies. */
  readonly identity?: Identity;
  /** Headers to add to the response the client gets (e.g. RateLimit, Access-Control-*). */
  readonly responseHeaders?: Readonly<Record<string, string>>;
  /** Answer now with this non-error response (e.g. a CORS preflight); no upstream call. */
  readonly respond?: { readonly status: number; readonly headers: Readonly<Record<string, string>> };
  /** Changes to the upstream request. */
  readonly transform?: RequestTransform;
  /** Called once when the exchange ends (e.g. to release a concurrency slot). Not called in dry runs. */
  readonly release?: () => void;
  /**
   * The request body to send on instead of the client's (e.g. with secrets masked by
   * ai-guardrails). Only policies that declare `needsBody` may set it; the last one wins. AI and
   * prompt routes build the provider call from it; the proxy path does not read it (ai-guardrails,
   * its only setter, skips off AI routes), so a policy meant for proxy routes must not set it.
   */
  readonly replaceBody?: Buffer;
  /** Called once with what the AI exchange used (tokens, cost); not called in dry runs. */
  readonly charge?: (usage: AiUsage) => void;
}

export interface Skip {
  readonly outcome: 'skip';
  readonly rule: string;
}

export interface Deny {
  readonly outcome: 'deny';
  readonly code: Code;
  readonly rule: string;
  /** Non-secret facts that explain the denial; also fills the catalog remediation template. */
  readonly evidence: Evidence;
  /** Extra response headers the denial needs (WWW-Authenticate, Retry-After, Allow…). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Set when the caller was identified but is not allowed (e.g. a valid key lacking a scope). */
  readonly identity?: Identity;
  /**
   * Facts for operators only: kept in the trace and the call log (so `explain` has them) but never
   * sent to the client, even in detailed mode — e.g. whether a user name exists.
   */
  readonly internal?: Evidence;
}

export type Decision = Allow | Skip | Deny;

export type Mode = 'enforce' | 'monitor';

/** A policy instance after compile: frozen config and a pure decision function. */
export interface CompiledPolicy {
  readonly id: string;
  readonly type: string;
  readonly mode: Mode;
  /** Set by policies that limit the request body; the proxy enforces it while the body streams. */
  readonly bodyLimit?: number;
  /** Set by policies that read the body (ctx.body()); the route then buffers it. */
  readonly needsBody?: boolean;
  /** Synchronous for local checks; a promise only when the policy must wait (remote keys, body). */
  decide(ctx: DecisionContext): Decision | Promise<Decision>;
}

export interface CompileContext {
  /** Consumers as configured. */
  readonly consumers: readonly ConsumerSpec[];
  /** Every consumer's API keys, indexed once per config load (src/credentials/api-keys.ts). */
  readonly apiKeys: KeyIndex;
  /** Resolves an environment variable for `*_env` fields; injected for tests. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** JSON-pointer-ish path of this policy in the config, for error messages. */
  readonly path: string;
  /** Folder of the config file: relative file references (OpenAPI documents) resolve against it. */
  readonly baseDir: string;
}

/** A problem found while compiling, naming the config path. */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

export interface PolicyModule<S extends TSchema = TSchema> {
  /** The public id users type in config (`type: api-key`). */
  readonly type: string;
  /** One line on what it does, shown in docs and the console. */
  readonly summary: string;
  /** Config schema; every field carries a description and default. */
  readonly schema: S;
  /**
   * Turns validated config into a compiled policy. Throws {@link ConfigError} (with paths) for
   * problems the schema cannot express, so a bad config never goes live.
   */
  compile(
    config: Static<S>,
    meta: { readonly id: string; readonly mode: Mode },
    ctx: CompileContext,
  ): CompiledPolicy;
}

/** A consumer as written in config (see src/config/schema.ts). */
export interface ConsumerSpec {
  readonly id: string;
  readonly errors?: 'public' | 'detailed' | undefined;
  readonly groups?: readonly string[] | undefined;
  readonly team?: string | undefined;
  /** The APIs this consumer subscribed to (consumers[].subscriptions), for the subscription policy. */
  readonly subscriptions?: readonly SubscriptionSpec[] | undefined;
  readonly credentials?: {
    readonly api_keys?: readonly ApiKeySpec[] | undefined;
    readonly basic_auth?: readonly BasicAuthSpec[] | undefined;
  } | undefined;
}

/** One consumer's subscription to one API, as written in config (consumers[].subscriptions[]). */
export interface SubscriptionSpec {
  readonly api: string;
  readonly status: 'active' | 'pending' | 'rejected' | 'expired' | 'suspended';
  /** RFC 3339 end of the subscription. */
  readonly expires_at?: string | undefined;
  readonly plan?: string | undefined;
}

export interface BasicAuthSpec {
  readonly username: string;
  /** `scrypt$N$r$p$<salt b64>$<hash b64>` as printed by `pinpoint hash-password`. */
  readonly password_hash: string;
}

export interface ApiKeySpec {
  readonly id: string;
  readonly hash?: string | undefined;
  readonly key_env?: string | undefined;
  readonly scopes?: readonly string[] | undefined;
  readonly expires_at?: string | undefined;
  readonly revoked?: boolean | undefined;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** One line of the decision trace, stored in the call log and shown by explain/trace. */
export interface TraceEntry {
  /** Policy instance id from config, or a reserved id ('router', 'upstream:<id>'). */
  readonly policy: string;
  readonly type: string;
  readonly outcome: 'allow' | 'deny' | 'skip' | 'monitor';
  readonly rule: string;
  readonly code?: Code;
  readonly evidence?: Evidence;
  /** Time spent in decide, microseconds. */
  readonly us: number;
}
