import { Type, type Static } from '@sinclair/typebox';

const Source = Type.Object(
  {
    from: Type.Union([Type.Literal('param'), Type.Literal('header'), Type.Literal('query')], {
      description: 'Where the request names its tenant: param (a route path parameter), header or query (parameter).',
    }),
    name: Type.String({
      minLength: 1,
      description: 'param: the path parameter (team for /teams/{team}/projects); header: the header name, e.g. x-tenant-id; query: the query parameter, e.g. tenant.',
    }),
  },
  { additionalProperties: false, description: 'The request value that names the tenant the request acts in.' },
);

/**
 * `tenant` settings: where the request names its tenant, and where the caller's own tenant comes
 * from.
 */
export const TenantSchema = Type.Object(
  {
    tenant: Source,
    claim: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Verified token claim holding the caller\u2019s tenant (a top-level member of the JWT / introspection claims, e.g. tenant_id; a list claim means several tenants). Used when the credential carries it; otherwise the consumer\u2019s consumers[].team. Unset: consumers[].team only.',
      }),
    ),
    override_scopes: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'A caller holding one of these scopes may act in any tenant (e.g. tenants:admin for support staff). Default none: nobody crosses tenants.',
    }),
    challenge: Type.String({
      minLength: 1,
      default: 'Bearer realm="pinpoint"',
      description: 'WWW-Authenticate sent with AUTH_TENANT_UNAUTHENTICATED (RFC 9110 §11.6.1 requires one on a 401); use the challenge of the route\u2019s authentication policy.',
    }),
  },
  { additionalProperties: false },
);

export type TenantConfig = Static<typeof TenantSchema>;
export type TenantSource = TenantConfig['tenant']['from'];
