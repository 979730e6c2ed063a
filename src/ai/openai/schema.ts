/**
 * Validation of the unified API's request bodies (OpenAI Chat Completions and Embeddings), with
 * the ranges the OpenAI API reference states (chat/create: temperature 0–2, top_p 0–1, n ≥ 1,
 * presence/frequency_penalty −2–2, top_logprobs 0–20, logit_bias −100–100). A value out of range
 * is a 400 naming the field, never clamped. Provider-specific limits (Anthropic's temperature
 * 0–1…) are the adapters' (UnsupportedParameterError).
 *
 * Unknown top-level fields are allowed here: OpenAI adds parameters often and an OpenAI-family
 * provider takes them as they are; the handler refuses them for providers that would have to
 * drop them (see OPENAI_CHAT_FIELDS).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Type } from '@sinclair/typebox';

const Text = Type.Object({ type: Type.Literal('text'), text: Type.String() });
const Image = Type.Object({
  type: Type.Literal('image_url'),
  image_url: Type.Object({ url: Type.String({ minLength: 1 }), detail: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('low'), Type.Literal('high')])) }),
});
const Part = Type.Union([Text, Image, Type.Object({ type: Type.String() })]);

const ToolCall = Type.Object({
  id: Type.String(),
  type: Type.Literal('function'),
  function: Type.Object({ name: Type.String({ minLength: 1 }), arguments: Type.String() }),
});

const Message = Type.Object({
  role: Type.Union(['system', 'developer', 'user', 'assistant', 'tool'].map((r) => Type.Literal(r))),
  content: Type.Optional(Type.Union([Type.String(), Type.Array(Part), Type.Null()])),
  name: Type.Optional(Type.String()),
  tool_calls: Type.Optional(Type.Array(ToolCall)),
  tool_call_id: Type.Optional(Type.String()),
});

const Tool = Type.Object({
  type: Type.Literal('function'),
  function: Type.Object({
    name: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
    description: Type.Optional(Type.String()),
    parameters: Type.Optional(Type.Object({})),
    strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  }),
});

export const ChatRequestSchema = Type.Object({
  model: Type.String({ minLength: 1 }),
  messages: Type.Array(Message, { minItems: 1 }),
  stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  stream_options: Type.Optional(Type.Union([Type.Object({ include_usage: Type.Optional(Type.Boolean()) }), Type.Null()])),
  temperature: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 2 }), Type.Null()])),
  top_p: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()])),
  n: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 128 }), Type.Null()])),
  stop: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 4 }), Type.Null()])),
  max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
  max_completion_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
  presence_penalty: Type.Optional(Type.Union([Type.Number({ minimum: -2, maximum: 2 }), Type.Null()])),
  frequency_penalty: Type.Optional(Type.Union([Type.Number({ minimum: -2, maximum: 2 }), Type.Null()])),
  seed: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  tools: Type.Optional(Type.Array(Tool)),
  tool_choice: Type.Optional(
    Type.Union([
      Type.Literal('none'),
      Type.Literal('auto'),
      Type.Literal('required'),
      Type.Object({ type: Type.Literal('function'), function: Type.Object({ name: Type.String() }) }),
    ]),
  ),
  parallel_tool_calls: Type.Optional(Type.Boolean()),
  response_format: Type.Optional(
    Type.Union([
      Type.Object({ type: Type.Literal('text') }),
      Type.Object({ type: Type.Literal('json_object') }),
      Type.Object({
        type: Type.Literal('json_schema'),
        json_schema: Type.Object({ name: Type.String({ minLength: 1 }), schema: Type.Optional(Type.Object({})), strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])), description: Type.Optional(Type.String()) }),
      }),
    ]),
  ),
  user: Type.Optional(Type.String()),
  logprobs: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  top_logprobs: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 20 }), Type.Null()])),
  logit_bias: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Number({ minimum: -100, maximum: 100 })), Type.Null()])),
});

/** Every field the typed mapping knows; others pass only to OpenAI-family providers. */
export const OPENAI_CHAT_FIELDS: ReadonlySet<string> = new Set(Object.keys(ChatRequestSchema.properties));

export const EmbeddingsRequestSchema = Type.Object({
  model: Type.String({ minLength: 1 }),
  input: Type.Union([
    Type.String(),
    Type.Array(Type.String(), { minItems: 1, maxItems: 2048 }),
    Type.Array(Type.Integer(), { minItems: 1 }),
    Type.Array(Type.Array(Type.Integer(), { minItems: 1 }), { minItems: 1, maxItems: 2048 }),
  ]),
  encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')])),
  dimensions: Type.Optional(Type.Integer({ minimum: 1 })),
  user: Type.Optional(Type.String()),
});

const ajv = new Ajv({ allErrors: false, strict: false });
export const validateChat: ValidateFunction = ajv.compile(ChatRequestSchema);
export const validateEmbeddings: ValidateFunction = ajv.compile(EmbeddingsRequestSchema);

/** JSON pointer → `messages[0].content` style, as OpenAI names params; '' for the body itself. */
function pathOf(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~'); // RFC 6901 §4
    out += /^\d+$/.test(seg) ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** JSON pointer → `messages[0].content` style, as OpenAI names params; `body` for the body itself. */
export function paramOf(pointer: string): string {
  return pathOf(pointer) || 'body';
}

/**
 * The first validation error as (param, problem); unions report their most specific branch.
 * A missing or unknown field is named itself (`messages`, `text`), not the object that lacks or
 * holds it: that is the field the client has to fix.
 */
export function firstProblem(errors: readonly ErrorObject[] | null | undefined): { param: string; problem: string } {
  const list = errors ?? [];
  // The deepest error is the most specific: a bad `messages[2].role` beats "must match a schema in anyOf".
  let best = list[0];
  for (const e of list) if (best === undefined || e.instancePath.length > best.instancePath.length) best = e;
  if (best === undefined) return { param: 'body', problem: 'invalid' };
  const at = pathOf(best.instancePath);
  const child = (name: string): string => (at === '' ? name : `${at}.${name}`);
  if (best.keyword === 'required') return { param: child((best.params as { missingProperty: string }).missingProperty), problem: 'is required' };
  if (best.keyword === 'additionalProperties') return { param: child((best.params as { additionalProperty: string }).additionalProperty), problem: 'is not a known field' };
  return { param: at || 'body', problem: best.message ?? 'invalid' };
}
