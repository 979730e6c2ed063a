/**
 * Config schema of the AI gateway: provider accounts, the models clients may name, and what an AI
 * or prompt route serves. Part of the one config schema (src/config/schema.ts imports it).
 */
import { Type, type Static } from '@sinclair/typebox';

const Id = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$',
  description: 'Stable identifier: letters, digits, and _ . : - (it appears in errors, headers and logs).',
});

export const PROVIDER_TYPES = ['openai', 'azure-openai', 'mistral', 'openai-compatible', 'anthropic', 'gemini'] as const;

const ProviderKey = Type.Object(
  {
    id: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'Non-secret key id shown in logs and traces.' }),
    key_env: Type.Optional(Type.String({ minLength: 1, description: 'Environment variable holding the provider key (read at load, kept only in memory).' })),
    encrypted: Type.Optional(
      Type.String({
        pattern: '^pp1:[A-Za-z0-9+/=]+$',
        description:
          'The provider key encrypted with AES-256-GCM, as printed by `pinpoint encrypt-secret`; decrypted at load with the key from ai.secret_key_env or ai.secret_key_file.',
      }),
    ),
    weight: Type.Integer({ minimum: 1, maximum: 1000, default: 1, description: 'Share of requests this key carries among the provider\u2019s keys.' }),
  },
  { additionalProperties: false, description: 'One provider credential. Exactly one of key_env / encrypted.' },
);

const Provider = Type.Object(
  {
    type: Type.Union(
      PROVIDER_TYPES.map((t) => Type.Literal(t)),
      { description: 'Wire format of the provider. openai-compatible covers Ollama, vLLM, LM Studio and hosted Llama servers.' },
    ),
    base_url: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description:
          'Base URL. Defaults: openai https://api.openai.com/v1, anthropic https://api.anthropic.com, gemini https://generativelanguage.googleapis.com/v1beta, mistral https://api.mistral.ai/v1. Required for azure-openai (https://<resource>.openai.azure.com) and openai-compatible.',
      }),
    ),
    api_version: Type.Optional(Type.String({ minLength: 1, description: 'azure-openai api-version query parameter (required there), e.g. 2024-10-21.' })),
    keys: Type.Array(ProviderKey, {
      default: [],
      description: 'Provider credentials, rotated by weight; a key the provider rejects (401/403/quota) rests while the others carry on. Empty only for servers without auth (Ollama).',
    }),
    headers: Type.Record(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }), Type.String(), {
      default: {},
      description: 'Static headers added to every provider call (e.g. OpenAI-Organization). The client\u2019s headers are never forwarded.',
    }),
    models: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Provider models clients may call directly as `<provider id>/<model>`. Empty: none (only the names under ai.models). ["*"]: any.',
    }),
    allow_private_network: Type.Boolean({
      default: false,
      description:
        'Allow a base_url that resolves to a loopback, private, link-local or cloud-metadata address. Off by default (fails closed): a config change cannot point provider calls, carrying the provider key, at an internal service (SSRF).',
    }),
    timeout_ms: Type.Integer({ minimum: 100, default: 120_000, description: 'Time allowed until the provider\u2019s response headers arrive (and between streamed chunks).' }),
    connect_timeout_ms: Type.Integer({ minimum: 100, default: 10_000, description: 'Time allowed to open the connection.' }),
    connections: Type.Integer({ minimum: 1, maximum: 10_000, default: 128, description: 'Keep-alive connection pool size.' }),
  },
  { additionalProperties: false },
);

export const FALLBACK_CAUSES = ['rate_limited', 'overloaded', 'server', 'timeout', 'unreachable', 'auth', 'quota'] as const;

const ModelTarget = Type.Object(
  {
    provider: Id,
    model: Type.String({ minLength: 1, description: 'The provider\u2019s model name (azure-openai: the deployment name).' }),
    weight: Type.Integer({ minimum: 1, maximum: 1000, default: 1, description: 'Share of requests with balance: weighted.' }),
  },
  { additionalProperties: false },
);

const Model = Type.Object(
  {
    description: Type.Optional(Type.String({ description: 'Free text for people reading the config.' })),
    aliases: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Other names clients may use for this model.' }),
    targets: Type.Array(ModelTarget, { minItems: 1, description: 'Deployments serving this model.' }),
    balance: Type.Union([Type.Literal('weighted'), Type.Literal('ordered')], {
      default: 'weighted',
      description: 'weighted: smooth weighted round-robin over targets; ordered: the first target that is not resting, the rest are fallbacks in order.',
    }),
    fallback_on: Type.Array(
      Type.Union(FALLBACK_CAUSES.map((c) => Type.Literal(c))),
      {
        default: ['rate_limited', 'overloaded', 'server', 'timeout', 'unreachable'],
        description:
          'Provider outcomes that move the request to the next target. auth and quota are off by default: they are the gateway\u2019s key problem, yet another key of the pool is always tried first.',
      },
    ),
    max_attempts: Type.Integer({ minimum: 1, maximum: 10, default: 3, description: 'Provider calls per request at most, retries and fallbacks included.' }),
    max_retry_after_ms: Type.Integer({
      minimum: 0,
      default: 2_000,
      description:
        'A provider 429/503 with a Retry-After up to this long is retried on the same target after waiting; a longer one falls back to another target at once (or is returned, naming when to retry).',
    }),
    price: Type.Optional(
      Type.Object(
        {
          input_per_mtok: Type.Number({ minimum: 0, description: 'USD per million prompt tokens.' }),
          output_per_mtok: Type.Number({ minimum: 0, description: 'USD per million completion tokens.' }),
        },
        { additionalProperties: false, description: 'Prices used for cost in the call log and for budgets (ai-limits).' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const AiSchema = Type.Object(
  {
    providers: Type.Record(Id, Provider, { default: {}, description: 'Provider accounts by id.' }),
    models: Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,127}$' }), Model, {
      default: {},
      description: 'Models clients name in requests (`model`), each served by one or more provider deployments.',
    }),
    secret_key_env: Type.String({
      default: 'PINPOINT_SECRET_KEY',
      description: 'Environment variable holding the 32-byte key (base64 or hex) that decrypts `encrypted` provider keys.',
    }),
    secret_key_file: Type.Optional(Type.String({ description: 'File holding that key instead (relative to the config file); wins over the environment.' })),
  },
  { additionalProperties: false, default: {}, description: 'The AI gateway: providers, models, credentials (docs/ai-gateway.md).' },
);

/** What an AI route serves. */
export const AiRouteSchema = Type.Object(
  {
    protocol: Type.Union([Type.Literal('openai'), Type.Literal('anthropic')], {
      description:
        'openai: /chat/completions, /embeddings and /models below the route path (OpenAI SDK baseURL = <gateway>/v1); anthropic: the native /v1/messages (Anthropic SDK baseURL = <gateway>), passed through to Anthropic targets.',
    }),
    models: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Models (names, aliases or provider/model) this route offers. Empty: every configured model.' }),
  },
  { additionalProperties: false },
);

const PromptVariable = Type.Object(
  {
    type: Type.Union([Type.Literal('string'), Type.Literal('number'), Type.Literal('integer'), Type.Literal('boolean')], {
      default: 'string',
      description: 'JSON type the request body must give for this variable.',
    }),
    description: Type.Optional(Type.String({ description: 'What the variable is, for people and for the published schema.' })),
    required: Type.Boolean({ default: true, description: 'A request without it is refused (400 naming the field).' }),
    max_length: Type.Optional(Type.Integer({ minimum: 1, description: 'Longest string accepted.' })),
    enum: Type.Optional(Type.Array(Type.Union([Type.String(), Type.Number()]), { minItems: 1, description: 'The only values accepted.' })),
  },
  { additionalProperties: false },
);

/** A prompt published as a REST endpoint. */
export const PromptRouteSchema = Type.Object(
  {
    model: Type.String({ minLength: 1, description: 'A model name from ai.models (or provider/model).' }),
    system: Type.Optional(Type.String({ description: 'System message; may use {{variables}}.' })),
    template: Type.String({ minLength: 1, description: 'The user message, with {{variable}} placeholders filled from the request body.' }),
    variables: Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' }), PromptVariable, {
      default: {},
      description: 'The request body schema: one JSON field per variable. Unknown fields are refused.',
    }),
    parameters: Type.Object(
      {
        temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2, description: 'Sampling temperature (the provider may accept less: Anthropic 0–1).' })),
        top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Nucleus sampling mass.' })),
        max_tokens: Type.Optional(Type.Integer({ minimum: 1, description: 'Most tokens the model may generate.' })),
      },
      { additionalProperties: false, default: {}, description: 'Model parameters fixed by the publisher.' },
    ),
    output: Type.Union([Type.Literal('text'), Type.Literal('json')], {
      default: 'text',
      description: 'text: `output` is the model\u2019s text; json: JSON mode, and `output` is the parsed object.',
    }),
  },
  { additionalProperties: false },
);

export type AiConfig = Static<typeof AiSchema>;
export type AiProviderConfig = Static<typeof Provider>;
export type AiModelConfig = Static<typeof Model>;
export type AiRouteConfig = Static<typeof AiRouteSchema>;
export type PromptRouteConfig = Static<typeof PromptRouteSchema>;
export type FallbackCause = (typeof FALLBACK_CAUSES)[number];
