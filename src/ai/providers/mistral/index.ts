/**
 * Mistral (api.mistral.ai). OpenAI's format with Mistral's names and limits.
 *
 * Facts relied on:
 * - API reference (chat/completions, ChatCompletionRequest): `random_seed` (not `seed`),
 *   `max_tokens` (it has no `max_completion_tokens`), tool_choice `auto | none | any | required`
 *   or a function, top_p 0–1, presence/frequency_penalty −2–2; no `logit_bias`, `logprobs`,
 *   `top_logprobs`, `user` or `stream_options`. Unknown fields are refused with a 422
 *   (`extra_forbidden`), so none is sent.
 * - temperature: the reference gives no bound ("we recommend between 0.0 and 0.7"); the API
 *   refuses values above 1.5 (observed, SillyTavern PR #4856, Dec 2025; it was 1 before).
 * - Streams end with `data: [DONE]`; usage comes unasked on the last chunk, next to its
 *   finish_reason (its `stream_options` is refused: "Extra inputs are not permitted").
 * - Errors (docs: Error glossary): `{"object":"error","message","type","param","code"}`, the
 *   message sometimes a FastAPI detail object; also a bare FastAPI `{"detail":[…]}` 422 and, from
 *   its Kong gateway, `{"message":"Unauthorized","request_id":…}` or `{"message":"Requests rate
 *   limit exceeded"}`. Request ids: `mistral-correlation-id`, `x-kong-request-id`. 429s carry
 *   `Retry-After`.
 * - Embeddings (POST /v1/embeddings): text input only; `output_dimension` for OpenAI's
 *   `dimensions` (codestral-embed); no `user`.
 */
import type { ProviderAdapter } from '../../types.ts';
import { openAICompatible } from '../openai-compatible/base.ts';

export const mistral: ProviderAdapter = openAICompatible({
  type: 'mistral',
  defaultBaseUrl: 'https://api.mistral.ai/v1',
  auth: 'bearer',
  requestIdHeaders: ['mistral-correlation-id', 'x-kong-request-id'],
  streamUsage: 'always',
  chat: {
    ranges: {
      temperature: { min: 0, max: 1.5 },
      top_p: { min: 0, max: 1 },
      n: { min: 1 },
      presence_penalty: { min: -2, max: 2 },
      frequency_penalty: { min: -2, max: 2 },
    },
    unsupported: ['logit_bias', 'logprobs', 'top_logprobs', 'user'],
    renames: { seed: 'random_seed', max_completion_tokens: 'max_tokens' },
    toolChoice: { required: 'any' },
  },
  embeddings: {
    textInputOnly: true,
    unsupported: ['user'],
    renames: { dimensions: 'output_dimension' },
  },
});
