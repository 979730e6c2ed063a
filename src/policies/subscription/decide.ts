/**
 * Pure decision for `subscription`: look up the caller's subscription to the route's API, compiled
 * from consumers[].subscriptions once per config load, and answer with the state it is in.
 *
 * Order: identity (401) → no subscription → rejected → suspended → expired (by status, or by
 * expires_at at `facts.now`) → pending (unless allow_pending) → allow. A final refusal by the API
 * owner (rejected, suspended) is named before expiry: renewing would not help while it stands.
 */
import type { Decision, DecisionContext, Deny, Evidence, SubscriptionSpec } from '../../pipeline/types.ts';
import { unauthenticated } from '../rbac/decide.ts';

export type SubscriptionStatus = SubscriptionSpec['status'];

/** One consumer's subscription to this policy's API. */
export interface SubscriptionRecord {
  readonly status: SubscriptionStatus;
  /** End of the subscription in ms since the epoch; null when it has none. */
  readonly expiresAt: number | null;
  /** The same end as an ISO 8601 string, for evidence; null when none. */
  readonly expiresAtText: string | null;
  readonly plan: string | null;
}

export interface SubscriptionCompiled {
  readonly api: string;
  readonly allowPending: boolean;
  readonly challenge: string;
  /** The subscription to `api`, by consumer id. */
  readonly byConsumer: ReadonlyMap<string, SubscriptionRecord>;
  /** Every configured consumer → the APIs it has subscriptions to (any state), sorted. */
  readonly apisOf: ReadonlyMap<string, readonly string[]>;
}

export function decideSubscription(c: SubscriptionCompiled, ctx: DecisionContext): Decision {
  const facts = ctx.facts;
  const route = ctx.routeId ?? null;
  const id = ctx.identity;
  if (id === undefined) return unauthenticated('AUTH_SUBSCRIPTION_UNAUTHENTICATED', 'no identity', { route, method: facts.method, api: c.api }, c.challenge);
  const consumer = id.consumer;
  const sub = c.byConsumer.get(consumer);
  const evidence = (extra: Evidence = {}): Evidence => ({
    consumer,
    api: c.api,
    status: sub?.status ?? null,
    expires_at: sub?.expiresAtText ?? null,
    plan: sub?.plan ?? null,
    route,
    ...extra,
  });
  const deny = (code: Deny['code'], rule: string, extra?: Evidence): Deny => ({ outcome: 'deny', code, rule, evidence: evidence(extra) });

  if (sub === undefined) {
    return deny('SUBSCRIPTION_MISSING', `${consumer} has no subscription to ${c.api}`, {
      // Subscribed to v1 while calling v2 is a common form of this cause: say what it does have.
      subscribed_apis: c.apisOf.get(consumer) ?? [],
      // A caller no consumer entry describes (say, a token's subject) can have no subscriptions.
      known_consumer: c.apisOf.has(consumer),
    });
  }
  if (sub.status === 'rejected') return deny('SUBSCRIPTION_REJECTED', `subscription of ${consumer} to ${c.api} rejected`);
  if (sub.status === 'suspended') return deny('SUBSCRIPTION_SUSPENDED', `subscription of ${consumer} to ${c.api} suspended`);
  const ended = sub.expiresAt !== null && facts.now >= sub.expiresAt;
  if (sub.status === 'expired' || ended) {
    const secondsAgo = ended && sub.expiresAt !== null ? Math.floor((facts.now - sub.expiresAt) / 1000) : null;
    return deny('SUBSCRIPTION_EXPIRED', `subscription of ${consumer} to ${c.api} expired`, {
      expired: ended ? `at ${sub.expiresAtText ?? '?'}, ${secondsAgo ?? 0} s ago` : 'its status is expired',
      expired_by: ended ? 'expires_at' : 'status',
      expired_seconds_ago: secondsAgo,
    });
  }
  if (sub.status === 'pending') {
    if (!c.allowPending) return deny('SUBSCRIPTION_PENDING', `subscription of ${consumer} to ${c.api} awaits approval`);
    return { outcome: 'allow', rule: `pending subscription to ${c.api} (allow_pending)`, evidence: { api: c.api, status: 'pending', plan: sub.plan } };
  }
  return { outcome: 'allow', rule: `subscribed to ${c.api}`, evidence: { api: c.api, status: sub.status, plan: sub.plan, expires_at: sub.expiresAtText } };
}
