/**
 * `subscription`: the caller must hold an active subscription to the API the route belongs to.
 * Subscriptions are consumers[].subscriptions entries (`{ api, status, expires_at?, plan? }`),
 * written in config today and by the developer portal later. Each state that refuses has its own
 * code, so "not subscribed", "waiting for approval", "rejected", "expired" and "suspended" are
 * five different answers instead of one bare 403.
 *
 * Without an identity it answers 401 AUTH_SUBSCRIPTION_UNAUTHENTICATED, as rbac and ownership do:
 * a subscription belongs to a consumer, so there is nothing to check until authentication has
 * said who is calling (an authentication policy missing from the route, or one letting anonymous
 * callers through, is the fix).
 *
 * @example
 * ```yaml
 * policies:
 *   orders-subscribers:
 *     type: subscription
 *     config: { api: orders-v2 }
 * consumers:
 *   - id: shop
 *     subscriptions:
 *       - { api: orders-v2, status: active, plan: pro, expires_at: "2026-12-31T23:59:59Z" }
 * ```
 */
import { ConfigError, type CompileContext, type ConfigIssue, type PolicyModule } from '../../pipeline/types.ts';
import { decideSubscription, type SubscriptionCompiled, type SubscriptionRecord } from './decide.ts';
import { SubscriptionSchema, type SubscriptionPolicyConfig } from './schema.ts';

export function compileSubscription(config: SubscriptionPolicyConfig, consumers: CompileContext['consumers']): SubscriptionCompiled {
  const issues: ConfigIssue[] = [];
  const byConsumer = new Map<string, SubscriptionRecord>();
  const apisOf = new Map<string, readonly string[]>();
  consumers.forEach((consumer, i) => {
    const subs = consumer.subscriptions ?? [];
    if (!apisOf.has(consumer.id)) apisOf.set(consumer.id, Object.freeze([...new Set(subs.map((s) => s.api))].sort()));
    let first: number | undefined;
    subs.forEach((s, j) => {
      if (s.api !== config.api) return;
      const at = `consumers[${i}].subscriptions[${j}]`;
      if (first !== undefined) {
        issues.push({ path: `${at}.api`, message: `${consumer.id} already has a subscription to API ${s.api} (subscriptions[${first}]): keep one entry per API, so its state is not ambiguous` });
        return;
      }
      first = j;
      let expiresAt: number | null = null;
      if (s.expires_at !== undefined) {
        expiresAt = Date.parse(s.expires_at);
        // RFC 3339 allows a leap second (":60") that Date cannot represent; a NaN here would mean
        // "never ends", so refuse it rather than fail open.
        if (Number.isNaN(expiresAt)) {
          issues.push({ path: `${at}.expires_at`, message: `"${s.expires_at}" is not a time this gateway can represent` });
          return;
        }
      }
      if (byConsumer.has(consumer.id)) return; // a duplicate consumer id is reported by config compile
      byConsumer.set(
        consumer.id,
        Object.freeze({ status: s.status, expiresAt, expiresAtText: expiresAt === null ? null : new Date(expiresAt).toISOString(), plan: s.plan ?? null }),
      );
    });
  });
  if (issues.length > 0) throw new ConfigError(issues);
  return Object.freeze({ api: config.api, allowPending: config.allow_pending, challenge: config.challenge, byConsumer, apisOf });
}

export const subscription: PolicyModule<typeof SubscriptionSchema> = {
  type: 'subscription',
  summary: 'The caller must hold an active subscription to the API (consumers[].subscriptions): not subscribed, pending approval, rejected, expired and suspended each have their own 403.',
  schema: SubscriptionSchema,
  compile(config, meta, ctx) {
    const compiled = compileSubscription(config, ctx.consumers);
    return { id: meta.id, type: 'subscription', mode: meta.mode, decide: (dctx) => decideSubscription(compiled, dctx) };
  },
};
