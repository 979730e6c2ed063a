/**
 * The AI gateway's contracts. Clients speak the OpenAI Chat Completions / Embeddings format (or
 * Anthropic Messages on the native route); every provider is a folder under src/ai/providers/
 * exporting a {@link ProviderAdapter} that maps that one format to its wire format and back.
 *
 * Wire formats: OpenAI API reference (chat/create, embeddings/create, streaming events),
 * Anthropic Messages API (messages, streaming, errors), Gemini API (generateContent,
 * streamGenerateContent?alt=sse, google.rpc.Status errors). Facts we rely on are collected in
 * docs/ai-gateway.md.
 */

// ---------------------------------------------------------------------------------------------
// The unified (OpenAI Chat Completions) request and response.

export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

export interface TextPart {
  readonly type: 'text';
  readonly text: string;
}
export interface ImagePart {
  readonly type: 'image_url';
  /** An https URL or a `data:<mime>;base64,<data>` URL. */
  readonly image_url: { readonly url: string; readonly detail?: 'auto' | 'low' | 'high' };
}
export type ContentPart = TextPart | ImagePart;

export interface ToolCall {
  readonly id: string;
  readonly type: 'function';
  readonly function: { readonly name: string; /** JSON text, as OpenAI sends it. */ readonly arguments: string };
}

export interface ChatMessage {
  readonly role: Role;
  readonly content?: string | readonly ContentPart[] | null;
  readonly name?: string;
  /** Assistant messages that called tools. */
  readonly tool_calls?: readonly ToolCall[];
  /** Tool result messages: the call they answer. */
  readonly tool_call_id?: string;
}

export interface FunctionTool {
  readonly type: 'function';
  readonly function: {
    readonly name: string;
    readonly description?: string;
    /** JSON Schema of the arguments. */
    readonly parameters?: Readonly<Record<string, unknown>>;
    readonly strict?: boolean;
  };
}

export type ToolChoice = 'none' | 'auto' | 'required' | { readonly type: 'function'; readonly function: { readonly name: string } };

export type ResponseFormat =
  | { readonly type: 'text' }
  | { readonly type: 'json_object' }
  | { readonly type: 'json_schema'; readonly json_schema: { readonly name: string; readonly schema?: Readonly<Record<string, unknown>>; readonly strict?: boolean; readonly description?: string } };

/** POST /v1/chat/completions, after validation (src/ai/openai/schema.ts): ranges already checked. */
export interface ChatRequest {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly stream?: boolean;
  readonly stream_options?: { readonly include_usage?: boolean };
  readonly temperature?: number;
  readonly top_p?: number;
  readonly n?: number;
  readonly stop?: string | readonly string[];
  /** Legacy name of max_completion_tokens; both are accepted, never both. */
  readonly max_tokens?: number;
  readonly max_completion_tokens?: number;
  readonly presence_penalty?: number;
  readonly frequency_penalty?: number;
  readonly seed?: number;
  readonly tools?: readonly FunctionTool[];
  readonly tool_choice?: ToolChoice;
  readonly parallel_tool_calls?: boolean;
  readonly response_format?: ResponseFormat;
  readonly user?: string;
  readonly logprobs?: boolean;
  readonly top_logprobs?: number;
  readonly logit_bias?: Readonly<Record<string, number>>;
}

export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call';

export interface ChatChoice {
  readonly index: number;
  readonly message: {
    readonly role: 'assistant';
    readonly content: string | null;
    readonly tool_calls?: readonly ToolCall[];
    readonly refusal?: string | null;
  };
  readonly finish_reason: FinishReason | null;
  readonly logprobs?: unknown;
}

/** `object: "chat.completion"`. */
export interface ChatCompletion {
  readonly id: string;
  readonly object: 'chat.completion';
  readonly created: number;
  readonly model: string;
  readonly choices: readonly ChatChoice[];
  readonly usage?: Usage;
  readonly system_fingerprint?: string | null;
}

export interface ChunkToolCallDelta {
  readonly index: number;
  readonly id?: string;
  readonly type?: 'function';
  readonly function?: { readonly name?: string; readonly arguments?: string };
}

/** `object: "chat.completion.chunk"`, one per SSE `data:` line. */
export interface ChatCompletionChunk {
  readonly id: string;
  readonly object: 'chat.completion.chunk';
  readonly created: number;
  readonly model: string;
  readonly choices: readonly {
    readonly index: number;
    readonly delta: { readonly role?: 'assistant'; readonly content?: string | null; readonly tool_calls?: readonly ChunkToolCallDelta[]; readonly refusal?: string | null };
    readonly finish_reason: FinishReason | null;
    readonly logprobs?: unknown;
  }[];
  /** Only on the final chunk when stream_options.include_usage is set (choices is then empty). */
  readonly usage?: Usage | null;
}

/** POST /v1/embeddings. */
export interface EmbeddingsRequest {
  readonly model: string;
  readonly input: string | readonly string[] | readonly number[] | readonly (readonly number[])[];
  readonly encoding_format?: 'float' | 'base64';
  readonly dimensions?: number;
  readonly user?: string;
}

export interface EmbeddingsResponse {
  readonly object: 'list';
  readonly data: readonly { readonly object: 'embedding'; readonly index: number; readonly embedding: readonly number[] | string }[];
  readonly model: string;
  readonly usage: { readonly prompt_tokens: number; readonly total_tokens: number };
}

// ---------------------------------------------------------------------------------------------
// Providers.

export type ProviderType = 'openai' | 'azure-openai' | 'mistral' | 'openai-compatible' | 'anthropic' | 'gemini';

/** One deployment a request can go to: a provider account (from config) and the provider's model name. */
export interface ProviderTarget {
  /** Config id of the provider account (`ai.providers.<id>`). */
  readonly providerId: string;
  readonly type: ProviderType;
  /** Base URL without a trailing slash, e.g. https://api.openai.com/v1 (per-type default in the adapter). */
  readonly baseUrl: string;
  /** The model name the provider expects (for azure-openai: the deployment name). */
  readonly model: string;
  /** azure-openai `api-version` query parameter. */
  readonly apiVersion?: string;
  /** Extra static headers from config (e.g. OpenAI-Organization). Never the client's headers. */
  readonly headers: Readonly<Record<string, string>>;
}

/** An HTTP call to make to a provider. The handler sends it with undici. */
export interface HttpCall {
  readonly method: 'GET' | 'POST';
  /** Absolute URL. */
  readonly url: string;
  /** Lower-case names. Includes the credential header and content-type. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** Normalised cause of a provider error: drives fallback and the client's error class. */
export type ProviderErrorKind =
  | 'bad_request'
  | 'auth'
  | 'permission'
  | 'not_found'
  | 'too_large'
  | 'rate_limited'
  /** Out of credit / quota: a 429 that retrying does not fix (OpenAI insufficient_quota, Anthropic billing). */
  | 'quota'
  | 'overloaded'
  | 'server'
  | 'timeout'
  | 'other';

/** A provider's error, read from its own envelope. Nothing is invented: absent fields are null. */
export interface ProviderError {
  /** HTTP status the provider answered (for in-stream errors: the status its type maps to). */
  readonly status: number;
  readonly kind: ProviderErrorKind;
  /** The provider's error type (`rate_limit_error`, `RESOURCE_EXHAUSTED`, `insufficient_quota`…). */
  readonly type: string | null;
  /** The provider's error code, when it has one besides the type (`invalid_api_key`, ErrorInfo reason…). */
  readonly code: string | null;
  readonly message: string;
  /** The provider's request id (x-request-id, request-id…), for the provider's support. */
  readonly requestId: string | null;
  /** From retry-after-ms / retry-after / RetryInfo.retryDelay. */
  readonly retryAfterMs: number | null;
  /** The parameter the provider blamed, when it says (OpenAI `param`). */
  readonly param: string | null;
}

/** What one provider stream event turns into. */
export interface StreamStep {
  /** OpenAI chunks to send to the client, in order. */
  readonly chunks: readonly ChatCompletionChunk[];
  /** Usage as known so far (cumulative); the last one seen wins. */
  readonly usage?: Usage;
  /** An error the provider sent inside the stream (after a 200). The stream ends after it. */
  readonly error?: ProviderError;
  /** The provider said the stream is over (OpenAI `[DONE]`, Anthropic `message_stop`). */
  readonly done?: boolean;
}

/** Turns one provider stream into OpenAI chunks. A new one per request (it holds state). */
export interface StreamMapper {
  /** One SSE event as parsed (event name absent for unnamed events). */
  event(ev: { readonly event?: string | undefined; readonly data: string }): StreamStep;
  /** The provider closed the stream; anything held back is flushed. */
  end(): StreamStep;
}

/** Fields the handler fixes for every response, whatever the provider returns. */
export interface ResponseContext {
  /** `chatcmpl-…` id for this completion (the provider's id is kept where it has one of its own). */
  readonly id: string;
  /** Seconds since the epoch. */
  readonly created: number;
  /** The model name the client asked for (alias or provider/model), echoed back as OpenAI does. */
  readonly model: string;
}

/** A parameter the provider cannot honour as asked: answered 400, never clamped or dropped silently. */
export class UnsupportedParameterError extends Error {
  /** The request field, e.g. `temperature` or `messages[2].content[0]`. */
  readonly param: string;
  /** What this provider accepts, e.g. `0..1` or `text and image parts`. */
  readonly accepted: string;
  readonly provider: ProviderType;
  constructor(provider: ProviderType, param: string, accepted: string, message?: string) {
    super(message ?? `${provider} does not accept this ${param}: it accepts ${accepted}`);
    this.name = 'UnsupportedParameterError';
    this.provider = provider;
    this.param = param;
    this.accepted = accepted;
  }
}

/**
 * One provider's mapping. Pure functions: no I/O, no clock (the handler sends the calls), so every
 * mapping is tested with recorded fixtures (src/ai/providers/<type>/fixtures/).
 */
export interface ProviderAdapter {
  readonly type: ProviderType;
  /** Base URL used when the config gives none; undefined when one is required (azure, compatible servers). */
  readonly defaultBaseUrl: string | undefined;
  /** Header names that carry this provider's request id, in order of preference. */
  readonly requestIdHeaders: readonly string[];
  /** Builds the chat call. Throws UnsupportedParameterError for what the provider cannot do. */
  chat(req: ChatRequest, target: ProviderTarget, apiKey: string | undefined): HttpCall;
  /** A 2xx JSON body → chat.completion (usage included when the provider reports it). */
  chatResult(body: unknown, ctx: ResponseContext): ChatCompletion;
  /** A new stream mapper for one streaming response (2xx text/event-stream). */
  chatStream(ctx: ResponseContext, req: ChatRequest): StreamMapper;
  /** Embeddings, for providers that have them. */
  embeddings?(req: EmbeddingsRequest, target: ProviderTarget, apiKey: string | undefined): HttpCall;
  embeddingsResult?(body: unknown, ctx: ResponseContext): EmbeddingsResponse;
  /** A non-2xx response → the provider's error as it stated it. `headers` have lower-case names. */
  error(status: number, headers: Readonly<Record<string, string>>, bodyText: string): ProviderError;
}
