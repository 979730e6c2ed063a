/**
 * The configuration schema: the single source of truth. It validates the YAML file (and later the
 * admin API), types the code through `Static<>`, and is published as JSON Schema for editors
 * (`npm run schema` writes schema/pinpoint.schema.json, with each policy type's own config schema).
 *
 * Every field has a description and, where it has one, a default. Policy configs are validated
 * per type against the policy module's schema (src/policies/<type>/schema.ts) so that errors name
 * the policy instance (`policies.orders-write-key.config.required_scopes`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { AiRouteSchema, AiSchema, PromptRouteSchema } from '../ai/schema.ts';

const Id = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$',
  description: 'Stable identifier: letters, digits, and _ . : - (it appears in denials and logs).',
});

export const Duration = Type.String({
  pattern: '^[0-9]+(ms|s|m|h|d)$',
  description: 'A duration such as 500ms, 30s, 15m, 24h or 7d.',
});

export const ErrorsMode = Type.Union([Type.Literal('public'), Type.Literal('detailed')], {
  description:
    'public: code, layer, policy and request id only (safe for the internet). detailed: adds the human detail, the remediation and non-secret evidence.',
});

const Target = Type.Object(
  {
    url: Type.String({
      pattern: '^https?://',
      description: 'Base URL of the target, e.g. http://10.0.0.5:8080. A path here is prefixed to every request path.',
    }),
    weight: Type.Integer({ minimum: 1, maximum: 1000, default: 1, description: 'Relative share of requests with balance: weighted.' }),
  },
  { additionalProperties: false },
);

const Upstream = Type.Object(
  {
    targets: Type.Array(Target, { minItems: 1, description: 'Where requests go.' }),
    balance: Type.Union([Type.Literal('round_robin'), Type.Literal('weighted')], {
      default: 'round_robin',
      description: 'round_robin cycles through healthy targets; weighted uses smooth weighted round-robin (target weights).',
    }),
    timeouts: Type.Object(
      {
        connect_ms: Type.Integer({ minimum: 1, default: 5000, description: 'Time allowed to open a TCP/TLS connection.' }),
        response_ms: Type.Integer({ minimum: 1, default: 60000, description: 'Time allowed until the response headers arrive.' }),
        idle_ms: Type.Integer({ minimum: 1, default: 60000, description: 'Longest gap between body chunks before the exchange is aborted.' }),
      },
      { additionalProperties: false, default: {}, description: 'Upstream timeouts; each failure has its own code (UPSTREAM_CONNECT_TIMEOUT, UPSTREAM_RESPONSE_TIMEOUT).' },
    ),
    retries: Type.Object(
      {
        attempts: Type.Integer({
          minimum: 0,
          maximum: 5,
          default: 1,
          description: 'Extra attempts on another target, only for idempotent methods (RFC 9110 §9.2.2) without a streamed body.',
        }),
        on_status: Type.Array(Type.Integer({ minimum: 500, maximum: 599 }), {
          default: [502, 503, 504],
          description: 'Upstream statuses that trigger a retry (connection failures always do).',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Retries on another target.' },
    ),
    health: Type.Object(
      {
        max_fails: Type.Integer({ minimum: 1, default: 3, description: 'Consecutive failures that take a target out: connect errors, resets, timeouts, and answers with a status in retries.on_status. Other 5xx answers count as the target working (as nginx max_fails with proxy_next_upstream): a 500 is usually one request failing, and resting a target for it would spread one bad request to every client.' }),
        fail_timeout_ms: Type.Integer({ minimum: 100, default: 10000, description: 'How long a failed target rests before it is tried again.' }),
      },
      { additionalProperties: false, default: {}, description: 'Passive health checks, judged from live traffic.' },
    ),
    connections: Type.Integer({ minimum: 1, maximum: 10000, default: 128, description: 'Keep-alive connection pool size per target.' }),
  },
  { additionalProperties: false },
);

const PolicyRefs = Type.Array(Id, {
  default: [],
  description: 'Ids of entries in `policies`, attached here. Order inside a list does not matter: the pipeline order does.',
});

const ApiKey = Type.Object(
  {
    id: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'Non-secret key id shown in logs, traces and denials.' }),
    hash: Type.Optional(
      Type.String({
        pattern: '^sha256:[0-9a-f]{64}$',
        description: 'SHA-256 of the key, as printed by `pinpoint hash-key`. The key itself is never stored.',
      }),
    ),
    key_env: Type.Optional(
      Type.String({ description: 'Name of an environment variable holding the key; it is hashed at load and not kept.' }),
    ),
    scopes: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Scopes granted to this key.' }),
    expires_at: Type.Optional(Type.String({ format: 'date-time', description: 'RFC 3339 time after which the key is refused.' })),
    revoked: Type.Boolean({ default: false, description: 'A revoked key is refused with its own code (not just "invalid").' }),
  },
  { additionalProperties: false },
);

const Subscription = Type.Object(
  {
    api: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$',
      description: 'Id of the API subscribed to: the api a subscription policy names for the routes of that API. An id no policy names yet is allowed.',
    }),
    status: Type.Union([Type.Literal('active'), Type.Literal('pending'), Type.Literal('rejected'), Type.Literal('expired'), Type.Literal('suspended')], {
      description:
        'active: calls pass (until expires_at). pending: applied for, waiting for the API owner\u2019s approval (SUBSCRIPTION_PENDING, unless the policy sets allow_pending). rejected: the owner refused it (SUBSCRIPTION_REJECTED). expired: ended (SUBSCRIPTION_EXPIRED). suspended: stopped by the owner for now (SUBSCRIPTION_SUSPENDED).',
    }),
    expires_at: Type.Optional(
      Type.String({ format: 'date-time', description: 'RFC 3339 time the subscription ends; from then on it is refused as SUBSCRIPTION_EXPIRED whatever its status says. Unset: no end.' }),
    ),
    plan: Type.Optional(Type.String({ minLength: 1, description: 'The plan (tier) subscribed to, e.g. free or pro; shown in denials\u2019 evidence.' })),
  },
  { additionalProperties: false, description: 'This consumer\u2019s subscription to one API and its approval state.' },
);

const Consumer = Type.Object(
  {
    id: Id,
    description: Type.Optional(Type.String({ description: 'Free text for people reading the config.' })),
    errors: Type.Optional(ErrorsMode),
    groups: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Consumer groups (rbac grants permissions to groups).' }),
    team: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$',
        description: 'The team (tenant) this consumer belongs to: the tenant policy allows it only into its own tenant, ai-limits can limit and budget a whole team, and the call log can be queried by team.',
      }),
    ),
    credentials: Type.Object(
      {
        api_keys: Type.Array(ApiKey, { default: [], description: 'API keys of this consumer (stored as hashes).' }),
        basic_auth: Type.Array(
          Type.Object(
            {
              username: Type.String({ minLength: 1, description: 'User name for HTTP Basic authentication (RFC 7617).' }),
              password_hash: Type.String({
                pattern: '^scrypt\\$',
                description: 'scrypt hash of the password, as printed by `pinpoint hash-password`. The password itself is never stored.',
              }),
            },
            { additionalProperties: false },
          ),
          { default: [], description: 'HTTP Basic credentials of this consumer.' },
        ),
      },
      { additionalProperties: false, default: {}, description: 'How this consumer proves who it is.' },
    ),
    subscriptions: Type.Array(Subscription, {
      default: [],
      description:
        'The APIs this consumer has subscribed to, one entry per API, checked by subscription policies. Written by hand today; the developer portal will write them once subscriptions and approvals live there.',
    }),
    policies: PolicyRefs,
  },
  { additionalProperties: false },
);

const PolicyInstance = Type.Object(
  {
    type: Type.String({ description: 'Policy type, e.g. api-key, ip-rules, request-size.' }),
    mode: Type.Union([Type.Literal('enforce'), Type.Literal('monitor')], {
      default: 'enforce',
      description: 'monitor: a would-be denial is traced and counted, and the request goes on.',
    }),
    description: Type.Optional(Type.String({ description: 'Free text for people reading the config.' })),
    config: Type.Unknown({ default: {}, description: 'The policy type\u2019s own settings (see docs/policies).' }),
  },
  { additionalProperties: false },
);

const HttpMethod = Type.Union(
  ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'].map((m) => Type.Literal(m)),
);

const Route = Type.Object(
  {
    id: Id,
    description: Type.Optional(Type.String({ description: 'Free text for people reading the config.' })),
    hosts: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Host names this route answers (exact, or *.example.com). Empty: any host.',
    }),
    paths: Type.Array(
      Type.String({
        pattern: '^/',
        description: 'Path template: /orders, /orders/{id} (one segment), /files/* (prefix: anything below).',
      }),
      { minItems: 1, description: 'Paths this route answers.' },
    ),
    methods: Type.Array(HttpMethod, { default: [], description: 'Accepted methods. Empty: all.' }),
    upstream: Type.Optional(
      Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$', description: 'Id of the upstream this route proxies to. Exactly one of upstream, ai and prompt.' }),
    ),
    ai: Type.Optional({ ...AiRouteSchema, description: 'Serve the AI gateway API here instead of proxying (docs/ai-gateway.md).' }),
    prompt: Type.Optional({ ...PromptRouteSchema, description: 'Publish a prompt template as a REST endpoint (POST a JSON object of its variables).' }),
    strip_prefix: Type.Optional(
      Type.String({ pattern: '^/', description: 'Remove this leading path before forwarding (/api/orders → /orders).' }),
    ),
    preserve_host: Type.Boolean({
      default: false,
      description: 'Send the client\u2019s Host header upstream instead of the target\u2019s host (the original is always in X-Forwarded-Host).',
    }),
    errors: Type.Optional(ErrorsMode),
    policies: PolicyRefs,
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    version: Type.Literal(1, { description: 'Config format version.' }),
    listen: Type.Object(
      {
        host: Type.String({ default: '0.0.0.0', description: 'Address the proxy binds.' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'Proxy port.' }),
      },
      { additionalProperties: false, default: {}, description: 'Where the proxy listens.' },
    ),
    admin: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Run the admin listener.' }),
        host: Type.String({ default: '127.0.0.1', description: 'Admin API address; keep it off the internet.' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 9180, description: 'Admin API port.' }),
        token_hash: Type.Optional(
          Type.String({ pattern: '^sha256:[0-9a-f]{64}$', description: 'SHA-256 of the admin bearer token (`pinpoint hash-key`).' }),
        ),
        token_env: Type.String({
          default: 'PINPOINT_ADMIN_TOKEN',
          description: 'Environment variable holding the admin token when token_hash is not set. With neither, the admin API answers only /healthz and /metrics.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'The admin API: health, metrics, call-log queries, explain, reload.' },
    ),
    trusted_proxies: Type.Array(Type.String(), {
      default: [],
      description:
        'CIDRs of proxies/load balancers in front of the gateway. Only their X-Forwarded-For / Forwarded entries are believed when deciding the client IP.',
    }),
    trusted_proxy_header: Type.Union([Type.Literal('x-forwarded-for'), Type.Literal('forwarded')], {
      default: 'x-forwarded-for',
      description:
        'The one header your trusted proxies write (X-Forwarded-For, or RFC 7239 Forwarded). Only it is read: a proxy passes the other through from the client untouched, so believing both would let a client pick its own address.',
    }),
    errors: Type.Object(
      {
        mode: Type.Union([Type.Literal('public'), Type.Literal('detailed')], {
          default: 'public',
          description: 'Default for every route and consumer (each may override it). public: code, layer, policy and request id only; detailed: adds detail, remediation and evidence.',
        }),
        type_base: Type.String({
          default: 'urn:pinpoint:error:',
          description: 'Prefix of the RFC 9457 `type` member; the lower-case code is appended. Point it at your copy of docs/errors.md to make it resolvable.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'How the gateway answers when it denies or fails (RFC 9457 problem details).' },
    ),
    request_id: Type.Object(
      {
        header: Type.String({
          default: 'x-request-id',
          pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
          description: 'Header carrying the request id both ways (an RFC 9110 field name).',
        }),
        trust_incoming: Type.Union([Type.Literal('trusted_proxies'), Type.Literal('always'), Type.Literal('never')], {
          default: 'trusted_proxies',
          description:
            'When to keep a valid incoming id (1–200 chars of [A-Za-z0-9._:-]) instead of making one: from trusted_proxies only (default: a client cannot plant ids that collide with other calls in the log), always, or never.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Request ids, kept from the client when valid or generated.' },
    ),
    request_paths: Type.Object(
      {
        allow_encoded_slashes: Type.Boolean({
          default: false,
          description: 'Accept %2F and %5C in a path (APIs that put ids such as group%2Fproject in one segment need it). Refused by default: routes match the path as sent, and an upstream that decodes them sees other segments.',
        }),
        allow_backslashes: Type.Boolean({ default: false, description: 'Accept \\ in a path. Refused by default: some servers read it as /.' }),
        allow_semicolons: Type.Boolean({
          default: false,
          description: 'Accept ; (and %3B) in a path, as matrix parameters. Refused by default: servlet containers drop ;parameters, so /admin;x/users is /admin/users to them.',
        }),
        allow_empty_segments: Type.Boolean({ default: false, description: 'Accept // in a path. Refused by default: servers that merge slashes read //admin as /admin.' }),
      },
      {
        additionalProperties: false,
        default: {},
        description:
          'Path forms the gateway refuses (400 REQUEST_PATH_NOT_CANONICAL) because the gateway and an upstream could read them as different paths and so different routes. Dot-segments are always refused (REQUEST_PATH_INVALID).',
      },
    ),
    call_log: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Record every call.' }),
        path: Type.String({ default: 'var/pinpoint-calls.db', description: 'SQLite file (relative to the config file).' }),
        retention: Type.Union([Duration, Type.Null()], { default: '7d', description: 'Entries older than this are deleted; null keeps everything.' }),
        batch_size: Type.Integer({ minimum: 1, maximum: 10000, default: 500, description: 'Entries per write transaction.' }),
        flush_interval_ms: Type.Integer({ minimum: 1, maximum: 60000, default: 100, description: 'Longest time an entry waits in memory before it is written.' }),
        queue_limit: Type.Integer({ minimum: 1, default: 100000, description: 'Entries held in memory before overload applies.' }),
        writer: Type.Union([Type.Literal('thread'), Type.Literal('event_loop')], {
          default: 'thread',
          description:
            'thread (default): a log thread of its own decodes, inserts and commits; requests only copy the encoded row into a shared ring. event_loop: rows are written on the thread that serves requests (every commit pauses it).',
        }),
        thread_nice: Type.Integer({
          minimum: 0,
          maximum: 19,
          default: 19,
          description:
            'Scheduling priority of the log thread (Linux nice value): 19 lets it run when the request thread has nothing to do, 0 competes equally. A burst waits in the ring; at queue_limit or queue_bytes the overload behaviour applies.',
        }),
        queue_bytes: Type.Integer({
          minimum: 1048576,
          maximum: 1073741824,
          default: 67108864,
          description: 'Size of the shared ring between requests and the log thread (writer: thread); overload applies when a row does not fit.',
        }),
        overload: Type.Union([Type.Literal('block'), Type.Literal('drop_oldest'), Type.Literal('sample')], {
          default: 'block',
          description: 'At queue_limit: block (write now, slowing requests, nothing lost), drop_oldest, or sample. Drops are counted in metrics and logged.',
        }),
        sample_rate: Type.Number({ minimum: 0, maximum: 1, default: 0.1, description: 'Share kept under overload: sample.' }),
        upstream_body_bytes: Type.Integer({ minimum: 0, maximum: 65536, default: 4096, description: 'How much of an upstream 4xx/5xx body is kept in the log.' }),
        replay: Type.Boolean({
          default: true,
          description:
            'Keep a replay record with each entry (query, client address, headers with every credential replaced by a placeholder, the established identity and verified token claims) so `pinpoint impact` can replay logged requests against a new config. Secrets are never stored (docs/call-log.md).',
        }),
        replay_body_bytes: Type.Integer({
          minimum: 0,
          maximum: 65536,
          default: 0,
          description:
            'How much of a request body that a policy buffered anyway is kept in the replay record. 0 (default) keeps none: bodies can hold personal data. Requests whose deciding policy needs a body that was not kept are reported as not replayable.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'The call log: one entry per request in the embedded SQLite store (docs/call-log.md).' },
    ),
    alerts: Type.Object(
      {
        denial_spikes: Type.Object(
          {
            enabled: Type.Boolean({ default: false, description: 'Watch denials per code, route and consumer for spikes.' }),
            window: Type.String({ pattern: '^[0-9]+(ms|s|m|h|d)$', default: '1m', description: 'Length of a counting window (e.g. 1m).' }),
            factor: Type.Number({ minimum: 1, default: 3, description: 'A window counts as a spike at this multiple of the rolling baseline…' }),
            min_count: Type.Integer({ minimum: 1, default: 20, description: '…and with at least this many denials (quiet keys never alert on noise).' }),
            cooldown: Type.String({ pattern: '^[0-9]+(ms|s|m|h|d)$', default: '10m', description: 'No second alert for the same code, route and consumer within this time.' }),
            webhook_url: Type.Optional(
              Type.String({ pattern: '^https?://', description: 'Where alerts are POSTed as JSON (with example request ids). Without it, alerts are only logged.' }),
            ),
          },
          { additionalProperties: false, default: {}, description: 'Denial spike alerts: rolling baseline per code, route and consumer; a spike is logged and sent to a webhook.' },
        ),
      },
      { additionalProperties: false, default: {}, description: 'Alerts raised by the gateway.' },
    ),
    upstreams: Type.Record(Id, Upstream, { default: {}, description: 'Named groups of targets.' }),
    ai: AiSchema,
    policies: Type.Record(Id, PolicyInstance, { default: {}, description: 'Policy instances by id.' }),
    global: Type.Object({ policies: PolicyRefs }, { additionalProperties: false, default: {}, description: 'Policies applied to every route.' }),
    consumers: Type.Array(Consumer, { default: [], description: 'Known callers and their credentials.' }),
    routes: Type.Array(Route, { minItems: 1, description: 'What the gateway serves: host, paths and methods mapped to an upstream (or the AI gateway, or a prompt API), with policies.' }),
  },
  { additionalProperties: false, title: 'Pinpoint gateway configuration' },
);

export type Config = Static<typeof ConfigSchema>;
export type RouteConfig = Static<typeof Route>;
export type UpstreamConfig = Static<typeof Upstream>;
export type ConsumerConfig = Static<typeof Consumer>;
export type PolicyInstanceConfig = Static<typeof PolicyInstance>;
