/**
 * Config lint: what will cause denials before any traffic arrives (denial cause 34). Each finding
 * has a stable code, the config path it is about, and the fix. Runs on a config that already
 * validated and compiled (lint finds what is legal but self-defeating, not what is malformed).
 */
import { parseCidr } from '../net/cidr.ts';
import type { CompiledConfig } from '../config/compile.ts';
import { compileOrigins } from '../policies/origin/origins.ts';
import type { ConfigIssue } from '../pipeline/types.ts';

export type LintCode = 'LINT_KEY_EXPIRED' | 'LINT_KEY_EXPIRING' | 'LINT_SCOPE_UNGRANTED' | 'LINT_TRUSTED_PROXIES_EVERYONE' | 'LINT_CORS_ORIGIN_BLOCKED' | 'LINT_POLICY_UNUSED';

export interface LintFinding {
  readonly code: LintCode;
  readonly severity: 'error' | 'warning';
  readonly path: string;
  readonly message: string;
  readonly fix: string;
}

export interface LintOptions {
  /** Keys expiring within this many days are reported. */
  readonly expiringDays?: number;
  readonly now?: number;
}

type Raw = Record<string, unknown>;

export function lint(cfg: CompiledConfig, opts: LintOptions = {}): LintFinding[] {
  const out: LintFinding[] = [];
  const src = cfg.source;
  const now = opts.now ?? Date.now();
  const soon = now + (opts.expiringDays ?? 14) * 86_400_000;

  // Keys that are expired or about to expire but still handed out.
  src.consumers.forEach((c, ci) =>
    c.credentials.api_keys.forEach((k, ki) => {
      if (k.expires_at === undefined || k.revoked) return;
      const at = Date.parse(k.expires_at);
      const path = `consumers[${ci}].credentials.api_keys[${ki}].expires_at`;
      if (at <= now) {
        out.push({ code: 'LINT_KEY_EXPIRED', severity: 'warning', path, message: `key ${k.id} of ${c.id} expired at ${k.expires_at}; every call with it gets AUTH_KEY_EXPIRED`, fix: `issue ${c.id} a new key and remove or revoke ${k.id}` });
      } else if (at <= soon) {
        out.push({ code: 'LINT_KEY_EXPIRING', severity: 'warning', path, message: `key ${k.id} of ${c.id} expires at ${k.expires_at}`, fix: `rotate ${k.id} before it expires, or extend expires_at` });
      }
    }),
  );

  // A required scope that no key has: the routes using that policy cannot be called with a key.
  const granted = new Set(src.consumers.flatMap((c) => c.credentials.api_keys.filter((k) => !k.revoked).flatMap((k) => k.scopes)));
  for (const [id, p] of Object.entries(src.policies)) {
    if (p.type !== 'api-key') continue;
    const required = ((p.config as Raw | undefined)?.required_scopes as string[] | undefined) ?? [];
    for (const [i, scope] of required.entries()) {
      if (granted.has(scope)) continue;
      const routes = src.routes.filter((r) => r.policies.includes(id) || src.global.policies.includes(id)).map((r) => r.id);
      out.push({
        code: 'LINT_SCOPE_UNGRANTED',
        severity: 'error',
        path: `policies.${id}.config.required_scopes[${i}]`,
        message: `scope ${scope} is required but no key has it: ${routes.length > 0 ? `routes ${routes.join(', ')} answer` : 'the policy answers'} AUTH_KEY_SCOPE_MISSING to every key`,
        fix: `grant ${scope} to the keys that should call it, or fix the scope name`,
      });
    }
  }

  // trusted_proxies that cover everyone: every client could set its own address.
  src.trusted_proxies.forEach((text, i) => {
    const c = parseCidr(text);
    if (typeof c === 'string') return;
    const prefix = text.includes('/') ? Number(text.slice(text.indexOf('/') + 1)) : 128;
    const v6 = text.includes(':');
    if (prefix <= (v6 ? 16 : 8)) {
      out.push({
        code: 'LINT_TRUSTED_PROXIES_EVERYONE',
        // /0 trusts the whole internet; a /8 still lets anyone inside it choose its address.
        severity: prefix === 0 ? 'error' : 'warning',
        path: `trusted_proxies[${i}]`,
        message: `${text} trusts nearly every address as a proxy: any client can choose its IP with ${src.trusted_proxy_header}, defeating ip-rules and per-IP rate limits`,
        fix: 'list only the addresses of the load balancers in front of the gateway',
      });
    }
  });

  // CORS lets a browser origin in that an origin policy on the same route then refuses.
  for (const r of src.routes) {
    const ids = [...src.global.policies, ...r.policies];
    const corsIds = ids.filter((id) => src.policies[id]?.type === 'cors');
    const originIds = ids.filter((id) => src.policies[id]?.type === 'origin');
    for (const cid of corsIds) {
      const allowed = ((src.policies[cid]?.config as Raw | undefined)?.allow_origins as string[] | undefined) ?? [];
      for (const oid of originIds) {
        const issues: ConfigIssue[] = [];
        const matcher = compileOrigins(((src.policies[oid]?.config as Raw | undefined)?.allowed_origins as string[] | undefined) ?? [], `policies.${oid}.config.allowed_origins`, issues, { allowStar: false });
        for (const o of allowed) {
          if (o.includes('*') || matcher.match(o) !== undefined) continue;
          out.push({
            code: 'LINT_CORS_ORIGIN_BLOCKED',
            severity: 'error',
            path: `policies.${cid}.config.allow_origins`,
            message: `route ${r.id}: cors allows ${o}, but origin policy ${oid} refuses it, so writes from that page always get ORIGIN_NOT_ALLOWED`,
            fix: `add ${o} to policies.${oid}.config.allowed_origins, or remove it from the cors list`,
          });
        }
      }
    }
  }

  // Policies defined but attached nowhere: likely a forgotten reference.
  const used = new Set([...src.global.policies, ...src.routes.flatMap((r) => r.policies), ...src.consumers.flatMap((c) => c.policies)]);
  for (const id of Object.keys(src.policies)) {
    if (!used.has(id)) out.push({ code: 'LINT_POLICY_UNUSED', severity: 'warning', path: `policies.${id}`, message: `policy ${id} is attached to no route, consumer or global list`, fix: `attach it where it should apply, or delete it` });
  }
  return out;
}
