/**
 * Gemini API (v1beta, generativelanguage.googleapis.com) wire shapes, as far as the chat and
 * embeddings mappings use them. Field names follow the REST reference: GenerateContentRequest,
 * Content, Part, FunctionDeclaration, ToolConfig/FunctionCallingConfig, GenerationConfig,
 * GenerateContentResponse, Candidate, PromptFeedback, UsageMetadata, BatchEmbedContentsRequest /
 * BatchEmbedContentsResponse, and google.rpc.Status with its ErrorInfo, RetryInfo, QuotaFailure and
 * BadRequest details (https://ai.google.dev/api, https://cloud.google.com/apis/design/errors).
 *
 * JSON follows the proto3 JSON mapping: fields at their default value (0, "", false) are left out,
 * so a candidate's `index` 0 usually does not appear, and every read side treats a field as optional.
 */

// ---------------------------------------------------------------------------------------------
// Request.

export interface GeminiTextPart {
  readonly text: string;
}
/** Inline bytes (Blob): base64 `data` with its MIME type. */
export interface GeminiInlineDataPart {
  readonly inlineData: { readonly mimeType: string; readonly data: string };
}
export interface GeminiFunctionCallPart {
  readonly functionCall: { readonly name: string; readonly args: Readonly<Record<string, unknown>> };
}
export interface GeminiFunctionResponsePart {
  /** `response` is a Struct: "Use "output" … and "error" …; otherwise the whole response is the output". */
  readonly functionResponse: { readonly name: string; readonly response: Readonly<Record<string, unknown>> };
}
export type GeminiPart = GeminiTextPart | GeminiInlineDataPart | GeminiFunctionCallPart | GeminiFunctionResponsePart;

export interface GeminiContent {
  readonly role: 'user' | 'model';
  readonly parts: readonly GeminiPart[];
}

export interface GeminiFunctionDeclaration {
  readonly name: string;
  readonly description?: string;
  /** JSON Schema of the arguments (FunctionDeclaration.parametersJsonSchema; exclusive with the OpenAPI-subset `parameters`). */
  readonly parametersJsonSchema?: Readonly<Record<string, unknown>>;
}

export interface GeminiTool {
  readonly functionDeclarations: readonly GeminiFunctionDeclaration[];
}

export type GeminiFunctionCallingMode = 'AUTO' | 'ANY' | 'NONE';

export interface GeminiToolConfig {
  readonly functionCallingConfig: {
    readonly mode: GeminiFunctionCallingMode;
    /** Only with mode ANY: the calls the model may make. */
    readonly allowedFunctionNames?: readonly string[];
  };
}

export interface GeminiGenerationConfig {
  readonly stopSequences?: readonly string[];
  readonly responseMimeType?: 'application/json';
  /** JSON Schema of the response (exclusive with the OpenAPI-subset `responseSchema`). */
  readonly responseJsonSchema?: Readonly<Record<string, unknown>>;
  readonly candidateCount?: number;
  readonly maxOutputTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly seed?: number;
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
}

/** Body of models/{model}:generateContent and :streamGenerateContent. */
export interface GeminiGenerateContentRequest {
  readonly contents: readonly GeminiContent[];
  /** "Currently, text only." */
  readonly systemInstruction?: { readonly parts: readonly GeminiTextPart[] };
  readonly tools?: readonly GeminiTool[];
  readonly toolConfig?: GeminiToolConfig;
  readonly generationConfig?: GeminiGenerationConfig;
}

/** One EmbedContentRequest inside models/{model}:batchEmbedContents. */
export interface GeminiEmbedContentRequest {
  /** `models/{model}`; must match the model in the URL. */
  readonly model: string;
  readonly content: { readonly parts: readonly GeminiTextPart[] };
  readonly outputDimensionality?: number;
}

export interface GeminiBatchEmbedContentsRequest {
  readonly requests: readonly GeminiEmbedContentRequest[];
}

// ---------------------------------------------------------------------------------------------
// Response, as read back (every field optional: see the proto3 note above).

export interface GeminiResponsePart {
  readonly text?: string;
  /** A thought summary (only sent when thoughts are asked for); never part of the answer. */
  readonly thought?: boolean;
  readonly functionCall?: { readonly id?: string; readonly name?: string; readonly args?: Readonly<Record<string, unknown>> };
}

export interface GeminiCandidate {
  readonly index?: number;
  readonly content?: { readonly role?: string; readonly parts?: readonly GeminiResponsePart[] };
  /** STOP, MAX_TOKENS, SAFETY, RECITATION, LANGUAGE, OTHER, BLOCKLIST, PROHIBITED_CONTENT, SPII, MALFORMED_FUNCTION_CALL, IMAGE_SAFETY, … */
  readonly finishReason?: string;
}

export interface GeminiUsageMetadata {
  readonly promptTokenCount?: number;
  readonly candidatesTokenCount?: number;
  /** Tokens spent thinking: billed as output, not included in candidatesTokenCount. */
  readonly thoughtsTokenCount?: number;
  readonly totalTokenCount?: number;
}

export interface GeminiGenerateContentResponse {
  readonly candidates?: readonly GeminiCandidate[];
  /** Present when the prompt itself was blocked: then there are no candidates. */
  readonly promptFeedback?: { readonly blockReason?: string };
  readonly usageMetadata?: GeminiUsageMetadata;
  readonly modelVersion?: string;
  readonly responseId?: string;
}

// ---------------------------------------------------------------------------------------------
// Errors.

/** google.rpc.Status, the `error` member of every Gemini API error body. */
export interface GoogleRpcStatus {
  /** HTTP status (the Interactions API puts a string code such as `invalid_request` here). */
  readonly code?: number | string;
  readonly message?: string;
  /** Canonical code name: INVALID_ARGUMENT, RESOURCE_EXHAUSTED, … */
  readonly status?: string;
  readonly details?: readonly Readonly<Record<string, unknown>>[];
}

/** The canonical code names and the HTTP status Google maps each to (google.rpc.Code). */
export const GOOGLE_RPC_HTTP_STATUS: Readonly<Record<string, number>> = {
  OK: 200,
  CANCELLED: 499,
  UNKNOWN: 500,
  INVALID_ARGUMENT: 400,
  DEADLINE_EXCEEDED: 504,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PERMISSION_DENIED: 403,
  UNAUTHENTICATED: 401,
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 400,
  ABORTED: 409,
  OUT_OF_RANGE: 400,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DATA_LOSS: 500,
};
