/**
 * `ai` config → compiled, frozen form: providers with their adapter, base URL and keys (decrypted
 * or read from the environment once, kept only in memory), and the model table clients name.
 * Every problem is an issue naming its config path, so a bad AI config never goes live.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isIP } from 'node:net';
import type { ConfigIssue } from '../pipeline/types.ts';
import { PROVIDERS } from './providers/index.ts';
import type { AiConfig, AiModelConfig, FallbackCause } from './schema.ts';
import { decryptSecret, parseSecretKey } from './secrets.ts';
import { isPrivateAddress } from './ssrf.ts';
import { idEntries } from '../json/one-byte.ts';
import type { ProviderAdapter, ProviderType } from './types.ts';

export interface ProviderKey {
  readonly id: string;
  /** The key itself; undefined for providers without auth. Never logged, never in a trace. */
  readonly secret: string | undefined;
  readonly weight: number;
}

export interface CompiledProvider {
  readonly id: string;
  readonly type: ProviderType;
  readonly adapter: ProviderAdapter;
  readonly baseUrl: string;
  readonly origin: string;
  readonly apiVersion: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly keys: readonly ProviderKey[];
  readonly allowPrivate: boolean;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly connections: number;
  /** Models callable as `<id>/<model>`: '*' for any, else the listed ones. */
  readonly directModels: '*' | ReadonlySet<string>;
}

export interface CompiledTarget {
  readonly provider: CompiledProvider;
  readonly model: string;
  readonly weight: number;
  /** `<provider id>/<model>`: stable id in headers, logs and health state. */
  readonly id: string;
}

export interface CompiledModel {
  /** The configured name (for a direct `provider/model` request: that text). */
  readonly name: string;
  readonly targets: readonly CompiledTarget[];
  readonly balance: 'weighted' | 'ordered';
  readonly fallbackOn: ReadonlySet<FallbackCause>;
  readonly maxAttempts: number;
  readonly maxRetryAfterMs: number;
  readonly price: { readonly input_per_mtok: number; readonly output_per_mtok: number } | undefined;
}

export interface CompiledAi {
  readonly providers: ReadonlyMap<string, CompiledProvider>;
  /** Configured names and aliases → model. */
  readonly models: ReadonlyMap<string, CompiledModel>;
  /** Public model names (no aliases), in config order, for GET /v1/models. */
  readonly names: readonly string[];
  /** A configured name or alias, or a permitted `provider/model`; undefined when neither. */
  resolve(name: string): CompiledModel | undefined;
}

/** provider/model names remembered per compiled config (see resolve). */
export const DIRECT_CACHE_MAX = 1024;

const DEFAULT_FALLBACK: ReadonlySet<FallbackCause> = new Set(['rate_limited', 'overloaded', 'server', 'timeout', 'unreachable']);

export function compileAi(
  ai: AiConfig,
  env: Readonly<Record<string, string | undefined>>,
  baseDir: string,
  issues: ConfigIssue[],
): CompiledAi {
  let secretKey: Buffer | undefined | null = null; // null: not loaded yet
  const loadSecretKey = (where: string): Buffer | undefined => {
    if (secretKey !== null) return secretKey;
    secretKey = undefined;
    try {
      if (ai.secret_key_file !== undefined) secretKey = parseSecretKey(readFileSync(path.resolve(baseDir, ai.secret_key_file), 'utf8'));
      else {
        const text = env[ai.secret_key_env];
        if (text === undefined || text === '') {
          issues.push({ path: where, message: `cannot decrypt: no secret key in $${ai.secret_key_env} (or set ai.secret_key_file)` });
          return undefined;
        }
        secretKey = parseSecretKey(text);
      }
    } catch (err) {
      issues.push({ path: ai.secret_key_file !== undefined ? 'ai.secret_key_file' : where, message: (err as Error).message });
    }
    return secretKey;
  };

  const providers = new Map<string, CompiledProvider>();
  for (const [id, p] of idEntries(ai.providers)) {
    const where = `ai.providers.${id}`;
    const adapter = PROVIDERS[p.type];
    const base = (p.base_url ?? adapter.defaultBaseUrl)?.replace(/\/+$/, '');
    if (base === undefined) {
      issues.push({ path: `${where}.base_url`, message: `required for type ${p.type}` });
      continue;
    }
    let url: URL;
    try {
      url = new URL(base);
    } catch {
      issues.push({ path: `${where}.base_url`, message: `"${base}" is not a valid URL` });
      continue;
    }
    if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
      issues.push({ path: `${where}.base_url`, message: 'a base URL cannot carry credentials, a query or a fragment' });
    }
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (!p.allow_private_network && isIP(host) !== 0 && isPrivateAddress(host)) {
      issues.push({
        path: `${where}.base_url`,
        message: `${host} is a private, loopback or metadata address; provider calls carry the provider key, so this needs allow_private_network: true`,
      });
    }
    if (p.type === 'azure-openai' && p.api_version === undefined) issues.push({ path: `${where}.api_version`, message: 'required for azure-openai' });
    const keys: ProviderKey[] = [];
    p.keys.forEach((k, i) => {
      const kp = `${where}.keys[${i}]`;
      if ((k.key_env === undefined) === (k.encrypted === undefined)) {
        issues.push({ path: kp, message: 'give exactly one of key_env and encrypted' });
        return;
      }
      if (k.key_env !== undefined) {
        const v = env[k.key_env];
        if (v === undefined || v === '') issues.push({ path: `${kp}.key_env`, message: `environment variable ${k.key_env} is not set` });
        else keys.push({ id: k.id, secret: v, weight: k.weight });
        return;
      }
      const sk = loadSecretKey(`${kp}.encrypted`);
      if (sk === undefined) return;
      try {
        keys.push({ id: k.id, secret: decryptSecret(k.encrypted as string, sk), weight: k.weight });
      } catch (err) {
        issues.push({ path: `${kp}.encrypted`, message: (err as Error).message });
      }
    });
    if (keys.length === 0) keys.push({ id: 'none', secret: undefined, weight: 1 });
    providers.set(
      id,
      Object.freeze({
        id,
        type: p.type,
        adapter,
        baseUrl: base,
        origin: url.origin,
        apiVersion: p.api_version,
        headers: Object.fromEntries(Object.entries(p.headers).map(([k, v]) => [k.toLowerCase(), v])),
        keys: Object.freeze(keys),
        allowPrivate: p.allow_private_network,
        timeoutMs: p.timeout_ms,
        connectTimeoutMs: p.connect_timeout_ms,
        connections: p.connections,
        directModels: p.models.includes('*') ? '*' : new Set(p.models),
      }),
    );
  }

  const models = new Map<string, CompiledModel>();
  const names: string[] = [];
  const claimed = new Map<string, string>();
  const build = (name: string, m: AiModelConfig, where: string): CompiledModel | undefined => {
    const targets: CompiledTarget[] = [];
    m.targets.forEach((t, i) => {
      const prov = providers.get(t.provider);
      if (prov === undefined) {
        if (!Object.hasOwn(ai.providers, t.provider)) {
          issues.push({ path: `${where}.targets[${i}].provider`, message: `no provider "${t.provider}" in ai.providers (known: ${Object.keys(ai.providers).join(', ') || 'none'})` });
        }
        return;
      }
      targets.push({ provider: prov, model: t.model, weight: t.weight, id: `${prov.id}/${t.model}` });
    });
    if (targets.length !== m.targets.length) return undefined;
    return Object.freeze({
      name,
      targets: Object.freeze(targets),
      balance: m.balance,
      fallbackOn: new Set(m.fallback_on),
      maxAttempts: m.max_attempts,
      maxRetryAfterMs: m.max_retry_after_ms,
      price: m.price,
    });
  };
  for (const [name, m] of idEntries(ai.models)) {
    const where = `ai.models.${name}`;
    const cm = build(name, m, where);
    for (const [i, n] of [name, ...m.aliases].entries()) {
      const p = i === 0 ? where : `${where}.aliases[${i - 1}]`;
      const other = claimed.get(n);
      if (other !== undefined) issues.push({ path: p, message: `"${n}" already names ${other}` });
      else claimed.set(n, where);
      if (cm !== undefined) models.set(n, cm);
    }
    names.push(name);
  }

  const direct = new Map<string, CompiledModel | null>();
  const resolve = (name: string): CompiledModel | undefined => {
    const m = models.get(name);
    if (m !== undefined) return m;
    let d = direct.get(name);
    if (d === undefined) {
      d = null;
      const slash = name.indexOf('/');
      const prov = slash > 0 ? providers.get(name.slice(0, slash)) : undefined;
      const model = name.slice(slash + 1);
      if (prov !== undefined && model !== '' && (prov.directModels === '*' || prov.directModels.has(model))) {
        d = Object.freeze({
          name,
          targets: [{ provider: prov, model, weight: 1, id: name }],
          balance: 'ordered' as const,
          fallbackOn: DEFAULT_FALLBACK,
          maxAttempts: 2,
          maxRetryAfterMs: 2_000,
          price: undefined,
        });
      }
      // Bounded whatever the names: a provider listing `*` makes every provider/<name> a model,
      // so names from clients could otherwise grow this map without end. Past the bound a name
      // is resolved again on each request, which is correct, only slower.
      if (direct.size < DIRECT_CACHE_MAX) direct.set(name, d);
    }
    return d ?? undefined;
  };

  return Object.freeze({ providers, models, names: Object.freeze(names), resolve });
}
