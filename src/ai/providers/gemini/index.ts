/**
 * Google Gemini API (AI Studio, generativelanguage.googleapis.com v1beta) adapter.
 *
 * - Chat: POST models/{model}:generateContent, or :streamGenerateContent?alt=sse for SSE (without
 *   `alt=sse` Gemini streams one JSON array instead).
 * - Embeddings: POST models/{model}:batchEmbedContents (one request per input string).
 * - Auth: the `x-goog-api-key` header (the API-key guide's REST examples), never a `key=` query
 *   parameter, so the key stays out of URLs and access logs.
 * - Errors: google.rpc.Status, see ./errors.ts.
 */
import type { ChatRequest, EmbeddingsRequest, HttpCall, ProviderAdapter, ProviderTarget } from '../../types.ts';
import { geminiError } from './errors.ts';
import { chatRequestBody, embeddingsRequestBody, geminiModelId } from './request.ts';
import { chatCompletion, embeddingsList } from './response.ts';
import { GeminiStreamMapper } from './stream.ts';

export const GEMINI_DEFAULT_BASE_URL = 'https://generativelanguage.googleapis.com/v1beta';

function headersFor(target: ProviderTarget, apiKey: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  // Config headers first, so they can never replace the credential or the content type.
  for (const [name, value] of Object.entries(target.headers)) headers[name.toLowerCase()] = value;
  headers['content-type'] = 'application/json';
  if (apiKey !== undefined) headers['x-goog-api-key'] = apiKey;
  return headers;
}

export const gemini: ProviderAdapter = {
  type: 'gemini',
  defaultBaseUrl: GEMINI_DEFAULT_BASE_URL,
  // Google documents no request-id response header for the Gemini API.
  requestIdHeaders: [],

  chat(req: ChatRequest, target: ProviderTarget, apiKey: string | undefined): HttpCall {
    const model = geminiModelId(target.model);
    const url =
      req.stream === true
        ? `${target.baseUrl}/models/${model}:streamGenerateContent?alt=sse`
        : `${target.baseUrl}/models/${model}:generateContent`;
    return { method: 'POST', url, headers: headersFor(target, apiKey), body: JSON.stringify(chatRequestBody(req)) };
  },

  chatResult: chatCompletion,

  chatStream: (ctx, req) => new GeminiStreamMapper(ctx, req),

  embeddings(req: EmbeddingsRequest, target: ProviderTarget, apiKey: string | undefined): HttpCall {
    return {
      method: 'POST',
      url: `${target.baseUrl}/models/${geminiModelId(target.model)}:batchEmbedContents`,
      headers: headersFor(target, apiKey),
      body: JSON.stringify(embeddingsRequestBody(req, target.model)),
    };
  },

  embeddingsResult: embeddingsList,

  error: geminiError,
};
