import { Type, type Static } from '@sinclair/typebox';

const HttpMethod = Type.Union(
  ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'].map((m) => Type.Literal(m)),
  { description: 'An HTTP method.' },
);

const Resource = Type.Object(
  {
    from: Type.Union([Type.Literal('path'), Type.Literal('query'), Type.Literal('header'), Type.Literal('body')], {
      description: 'Where the request names the owner of the resource it acts on. body reads the JSON request body (buffered; only then).',
    }),
    name: Type.String({
      minLength: 1,
      description:
        'path: the route path parameter (id for /orders/{id}); query: the query parameter; header: the header name; body: a JSON pointer (RFC 6901), e.g. /owner_id or /order/customer/id.',
    }),
  },
  { additionalProperties: false, description: 'The request value compared with the caller.' },
);

/**
 * `ownership` settings: the caller may act only on resources whose owner value in the request
 * equals its own identity claim.
 */
export const OwnershipSchema = Type.Object(
  {
    resource: Resource,
    claim: Type.String({
      minLength: 1,
      default: 'sub',
      description:
        'Identity claim holding the caller\u2019s id (a top-level member of the verified token claims, e.g. sub, tenant_id). "consumer" means the consumer id, which every authentication policy sets. An array claim matches when it contains the value.',
    }),
    override_permissions: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'A caller with one of these as a scope or a role bypasses the check (e.g. orders:admin, support). Default none: nobody bypasses.',
    }),
    methods: Type.Array(HttpMethod, {
      default: [],
      description: 'Methods checked; others pass unchecked (skip). Empty: every method. Listing GET also checks HEAD (RFC 9110 §9.3.2).',
    }),
    missing: Type.Union([Type.Literal('deny'), Type.Literal('skip')], {
      default: 'deny',
      description:
        'When the request carries no value at resource: deny (400 OWNERSHIP_RESOURCE_ID_MISSING, or 500 OWNERSHIP_PATH_PARAM_MISSING for a path parameter the route lacks; fails closed, the default) or skip the check (fails open; for a route serving both /orders and /orders/{id}).',
    }),
    challenge: Type.String({
      minLength: 1,
      default: 'Bearer realm="pinpoint"',
      description: 'WWW-Authenticate sent with AUTH_OWNERSHIP_UNAUTHENTICATED (RFC 9110 §11.6.1 requires one on a 401); use the challenge of the route\u2019s authentication policy.',
    }),
  },
  { additionalProperties: false },
);

export type OwnershipConfig = Static<typeof OwnershipSchema>;
export type ResourceSource = OwnershipConfig['resource']['from'];
