/**
 * `basic-auth`: authenticates the caller by HTTP Basic credentials (RFC 7617) checked against the
 * scrypt hashes on consumers (`consumers[].credentials.basic_auth`). Fails closed: missing,
 * unreadable or wrong credentials are denials, each kind with its own code; "unknown user" and
 * "wrong password" share one public code and differ only in the evidence (detailed mode, traces).
 */
import { BasicUserIndex, VerifiedCache } from '../../credentials/basic-auth.ts';
import { decoyHash, parsePasswordHash, verifyPasswordAsync, type PasswordHash } from '../../credentials/password.ts';
import { ConfigError, type CompiledPolicy, type CompileContext, type ConsumerSpec, type Mode, type PolicyModule } from '../../pipeline/types.ts';
import { PASSWORD_CHECKS, type PasswordCheckAdmission } from './admission.ts';
import { decideBasicAuth, type BasicAuthCompiled } from './decide.ts';
import { BasicAuthSchema, type BasicAuthConfig } from './schema.ts';

interface Users extends ReturnType<typeof BasicUserIndex.build> {
  /** The decoy for unknown users, with the parameters of the configured users' hashes. */
  readonly decoy: PasswordHash;
}

/**
 * The user index and the decoy are built once per config load, however many basic-auth instances
 * share them.
 */
const indexes = new WeakMap<readonly ConsumerSpec[], Users>();

function usersOf(consumers: readonly ConsumerSpec[]): Users {
  let built = indexes.get(consumers);
  if (built === undefined) {
    const { index, issues } = BasicUserIndex.build(consumers);
    // The index does not list its users, so the hashes are read again from the same specs; with any
    // issue compile refuses the config, so a hash the index skipped never shapes a live decoy.
    const hashes = consumers.flatMap((c) => (c.credentials?.basic_auth ?? []).map((u) => parsePasswordHash(u.password_hash))).filter((h) => typeof h !== 'string');
    built = { index, issues, decoy: decoyHash(hashes) };
    indexes.set(consumers, built);
  }
  return built;
}

/** RFC 9110 §5.6.4 quoted-string: escape `\` and `"`. */
export function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, (ch) => `\\${ch}`)}"`;
}

export interface BasicAuthDeps {
  /** Replaces the scrypt check (tests count calls with it). */
  readonly verify?: (password: string, hash: PasswordHash) => Promise<boolean>;
  /** Replaces the process-wide admission (tests use one of their own, so they do not share counts). */
  readonly admission?: PasswordCheckAdmission;
}

/** compile with injectable dependencies; the module's compile uses the real scrypt. */
export function compileBasicAuth(config: BasicAuthConfig, meta: { readonly id: string; readonly mode: Mode }, ctx: CompileContext, deps: BasicAuthDeps = {}): CompiledPolicy {
  const { index, issues, decoy } = usersOf(ctx.consumers);
  if (issues.length > 0) throw new ConfigError(issues);
  if (/[\u0000-\u001f\u007f]/.test(config.realm)) throw new ConfigError([{ path: `${ctx.path}.realm`, message: 'the realm must not contain control characters' }]);
  const compiled: BasicAuthCompiled = Object.freeze({
    // RFC 7617 §2.1: charset="UTF-8" tells clients to encode user name and password as UTF-8.
    challenge: `Basic realm=${quote(config.realm)}, charset="UTF-8"`,
    users: index,
    scopes: Object.freeze(new Set(config.scopes)),
    cache: new VerifiedCache(config.cache.max_entries, config.cache.ttl_seconds * 1000),
    verify: deps.verify ?? verifyPasswordAsync,
    decoy,
    admission: deps.admission ?? PASSWORD_CHECKS,
    limits: Object.freeze({ maxConcurrent: config.checks.max_concurrent, maxQueued: config.checks.max_queued }),
    inflight: new Map(),
    identities: new WeakMap(),
  });
  return { id: meta.id, type: 'basic-auth', mode: meta.mode, decide: (dctx) => decideBasicAuth(compiled, dctx) };
}

export const basicAuth: PolicyModule<typeof BasicAuthSchema> = {
  type: 'basic-auth',
  summary: 'HTTP Basic user name and password (RFC 7617) against scrypt hashes on consumers; cached verification.',
  schema: BasicAuthSchema,
  compile: (config, meta, ctx) => compileBasicAuth(config, meta, ctx),
};
