/**
 * `basic-auth`: authenticates the caller by HTTP Basic credentials (RFC 7617) checked against the
 * scrypt hashes on consumers (`consumers[].credentials.basic_auth`). Fails closed: missing,
 * unreadable or wrong credentials are denials, each kind with its own code; "unknown user" and
 * "wrong password" share one public code and differ only in the evidence (detailed mode, traces).
 */
import { BasicUserIndex, VerifiedCache } from '../../credentials/basic-auth.ts';
import { decoyHash, verifyPasswordAsync, type PasswordHash } from '../../credentials/password.ts';
import { ConfigError, type CompiledPolicy, type CompileContext, type ConsumerSpec, type Mode, type PolicyModule } from '../../pipeline/types.ts';
import { decideBasicAuth, type BasicAuthCompiled } from './decide.ts';
import { BasicAuthSchema, type BasicAuthConfig } from './schema.ts';

/** The user index is built once per config load, however many basic-auth instances share it. */
const indexes = new WeakMap<readonly ConsumerSpec[], ReturnType<typeof BasicUserIndex.build>>();

function usersOf(consumers: readonly ConsumerSpec[]): ReturnType<typeof BasicUserIndex.build> {
  let built = indexes.get(consumers);
  if (built === undefined) {
    built = BasicUserIndex.build(consumers);
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
}

/** compile with injectable dependencies; the module's compile uses the real scrypt. */
export function compileBasicAuth(config: BasicAuthConfig, meta: { readonly id: string; readonly mode: Mode }, ctx: CompileContext, deps: BasicAuthDeps = {}): CompiledPolicy {
  const { index, issues } = usersOf(ctx.consumers);
  if (issues.length > 0) throw new ConfigError(issues);
  if (/[\u0000-\u001f\u007f]/.test(config.realm)) throw new ConfigError([{ path: `${ctx.path}.realm`, message: 'the realm must not contain control characters' }]);
  const compiled: BasicAuthCompiled = Object.freeze({
    // RFC 7617 §2.1: charset="UTF-8" tells clients to encode user name and password as UTF-8.
    challenge: `Basic realm=${quote(config.realm)}, charset="UTF-8"`,
    users: index,
    scopes: Object.freeze(new Set(config.scopes)),
    cache: new VerifiedCache(config.cache.max_entries, config.cache.ttl_seconds * 1000),
    verify: deps.verify ?? verifyPasswordAsync,
    decoy: decoyHash(),
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
