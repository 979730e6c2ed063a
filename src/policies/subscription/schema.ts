import { Type, type Static } from '@sinclair/typebox';

/**
 * `subscription` settings: which API the routes using this policy belong to. Subscriptions
 * themselves live on consumers (consumers[].subscriptions).
 */
export const SubscriptionSchema = Type.Object(
  {
    api: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$',
      description:
        'Id of the API the routes using this policy belong to (e.g. orders-v2). A caller needs an entry in consumers[].subscriptions with this api and status active. An id no consumer has subscribed to yet is allowed: every caller is then refused with SUBSCRIPTION_MISSING.',
    }),
    allow_pending: Type.Boolean({
      default: false,
      description:
        'Let a subscription that is still waiting for approval through (for trial access while approvals are manual). Default false: pending is refused with SUBSCRIPTION_PENDING. An expires_at in the past still refuses.',
    }),
    challenge: Type.String({
      minLength: 1,
      default: 'Bearer realm="pinpoint"',
      description:
        'WWW-Authenticate sent with AUTH_SUBSCRIPTION_UNAUTHENTICATED (RFC 9110 §11.6.1 requires one on a 401); use the challenge of the route\u2019s authentication policy.',
    }),
  },
  { additionalProperties: false },
);

export type SubscriptionPolicyConfig = Static<typeof SubscriptionSchema>;
