/**
 * The Anthropic provider: OpenAI Chat Completions in, Anthropic Messages on the wire
 * (request.ts, response.ts, stream.ts, errors.ts), plus the native `/v1/messages` pass-through
 * helpers (native.ts). Anthropic has no embeddings API, so `embeddings` is left undefined.
 *
 * The chat mapping sends `anthropic-version: 2023-06-01`: version 2026-10-21 answers 400 to
 * `temperature` and `top_p`, which OpenAI clients send routinely (see wire.ts).
 */
import type { ProviderAdapter } from '../../types.ts';
import { anthropicError } from './errors.ts';
import { messagesCall } from './http.ts';
import { toMessagesRequest } from './request.ts';
import { toChatCompletion } from './response.ts';
import { anthropicStream } from './stream.ts';
import { ANTHROPIC_VERSION } from './wire.ts';

export const anthropic: ProviderAdapter = {
  type: 'anthropic',
  defaultBaseUrl: 'https://api.anthropic.com',
  requestIdHeaders: ['request-id'],
  chat(req, target, apiKey) {
    return messagesCall(target, apiKey, JSON.stringify(toMessagesRequest(req, target.model)), ANTHROPIC_VERSION);
  },
  chatResult: toChatCompletion,
  chatStream: anthropicStream,
  error: anthropicError,
};

export { anthropicNative, NativeStreamWatcher, NO_SAMPLING_VERSION } from './native.ts';
export { ANTHROPIC_DEFAULT_MAX_TOKENS, JSON_TOOL_NAME } from './request.ts';
export { ANTHROPIC_VERSION } from './wire.ts';
