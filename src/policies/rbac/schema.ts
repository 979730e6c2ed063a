import { Type, type Static } from '@sinclair/typebox';

const HttpMethod = Type.Union(
  ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'].map((m) => Type.Literal(m)),
  { description: 'An HTTP method.' },
);

const Permission = Type.String({ minLength: 1, description: 'A permission, conventionally <resource>:<level>, e.g. orders:write.' });

const Rule = Type.Object(
  {
    methods: Type.Array(HttpMethod, {
      default: [],
      description: 'Methods this rule decides. Empty: every method not decided by an earlier rule. A rule listing GET also decides HEAD (RFC 9110 §9.3.2).',
    }),
    permission: Type.Union([Permission, Type.Array(Permission, { minItems: 1 })], {
      description: 'The permission the caller needs, or a list of permissions the caller needs ALL of.',
    }),
  },
  { additionalProperties: false, description: 'Which permission a method needs on this route.' },
);

const Grant = Type.Object(
  {
    permission: Type.Optional(Type.String({ minLength: 1, description: 'Permission granted. Set exactly one of permission and role.' })),
    role: Type.Optional(Type.String({ minLength: 1, description: 'Role granted (a key of roles): all of its permissions. Set exactly one of permission and role.' })),
    consumers: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Consumer ids receiving it.' }),
    groups: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Consumer groups receiving it (consumers[].groups).' }),
  },
  { additionalProperties: false, description: 'A permission or role granted to consumers and consumer groups in config.' },
);

/**
 * `rbac` settings: which permission each method needs on the route, and where permissions come
 * from besides the credential's own scopes.
 */
export const RbacSchema = Type.Object(
  {
    rules: Type.Array(Rule, {
      minItems: 1,
      description:
        'Tried in order; the first rule whose methods include the request method decides, and the caller must hold every permission it lists. A method decided by an earlier rule may not be listed again (config error).',
    }),
    unmatched: Type.Union([Type.Literal('deny'), Type.Literal('allow')], {
      default: 'deny',
      description: 'A method no rule covers: deny (RBAC_METHOD_NOT_COVERED, fails closed, the default) or allow (fails open).',
    }),
    grants: Type.Array(Grant, { default: [], description: 'Permissions and roles granted to consumers and groups in config, on top of credential scopes and roles.' }),
    roles: Type.Record(Type.String({ minLength: 1 }), Type.Array(Permission), {
      default: {},
      description: 'Role name → the permissions it implies. Roles come from the identity (JWT / introspection role claims) or from grants.',
    }),
    levels: Type.Array(Type.String({ minLength: 1, pattern: '^[^:]+$' }), {
      default: [],
      description:
        'Permission levels, lowest first, e.g. [read, write, admin]. Holding <resource>:<level> then also satisfies <resource>:<any lower level> (orders:admin satisfies orders:write and orders:read). Default none: permissions match exactly.',
    }),
    challenge: Type.String({
      minLength: 1,
      default: 'Bearer realm="pinpoint"',
      description: 'WWW-Authenticate sent with AUTH_RBAC_UNAUTHENTICATED (RFC 9110 §11.6.1 requires one on a 401); use the challenge of the route\u2019s authentication policy.',
    }),
  },
  { additionalProperties: false },
);

export type RbacConfig = Static<typeof RbacSchema>;
