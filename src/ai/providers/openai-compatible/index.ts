/**
 * Servers that copy OpenAI's Chat Completions API: Ollama (/v1), vLLM, LM Studio, llama.cpp's
 * server and hosted Llama endpoints. There is no default base URL (each is its own server), a key
 * is sent as `Authorization: Bearer` only when one is configured (Ollama needs none), and the
 * ranges are OpenAI's: these servers document OpenAI's API as theirs, so a value OpenAI accepts is
 * passed and the server's own answer decides.
 *
 * `stream_options.include_usage` is sent like to OpenAI: vLLM and Ollama's OpenAI endpoint honour
 * it (their OpenAI-compatibility docs); a server that ignores it simply reports no usage.
 */
import type { ProviderAdapter } from '../../types.ts';
import { OPENAI_CHAT_RULES, openAICompatible } from './base.ts';

export const openAICompatibleServer: ProviderAdapter = openAICompatible({
  type: 'openai-compatible',
  defaultBaseUrl: undefined,
  auth: 'bearer',
  requestIdHeaders: ['x-request-id'],
  streamUsage: 'stream_options',
  chat: OPENAI_CHAT_RULES,
  embeddings: {},
});
