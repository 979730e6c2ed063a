/**
 * OpenAI (api.openai.com). The reference the other OpenAI-style providers deviate from.
 *
 * Facts relied on (OpenAI API reference, chat/create and embeddings/create; the `openai` SDK's
 * core/error.ts): Bearer auth; base URL includes `/v1`; ranges temperature 0–2, top_p 0–1,
 * n 1–128, presence/frequency_penalty −2–2, top_logprobs 0–20, logit_bias values −100–100;
 * usage in a stream only with stream_options.include_usage; request id in `x-request-id`.
 */
import type { ProviderAdapter } from '../../types.ts';
import { OPENAI_CHAT_RULES, openAICompatible } from '../openai-compatible/base.ts';

export const openai: ProviderAdapter = openAICompatible({
  type: 'openai',
  defaultBaseUrl: 'https://api.openai.com/v1',
  auth: 'bearer',
  requestIdHeaders: ['x-request-id'],
  streamUsage: 'stream_options',
  chat: OPENAI_CHAT_RULES,
  embeddings: {},
});
