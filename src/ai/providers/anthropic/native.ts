/**
 * Helpers for the native route: Anthropic SDK clients call the gateway's own `/v1/messages` and
 * the request goes to an Anthropic target as the client wrote it (only `model` is replaced), the
 * response bytes coming back unchanged. The gateway only checks what it can see cheaply and meters
 * usage on the way.
 */
import { UnsupportedParameterError } from '../../types.ts';
import type { HttpCall, ProviderError, ProviderTarget, Usage } from '../../types.ts';
import { anthropicStreamError } from './errors.ts';
import { messagesCall } from './http.ts';
import { usageOf, UsageTracker } from './response.ts';
import { ANTHROPIC_VERSION } from './wire.ts';
import { isRecord, parseJson } from '../shared/json.ts';

/**
 * The first API version without sampling parameters: with it, `temperature`, `top_p` and `top_k`
 * are answered 400 even at their defaults (Anthropic's 2026-10-21 migration notes; SDK 1.x, which
 * sends this version, no longer has the fields).
 */
export const NO_SAMPLING_VERSION = '2026-10-21';

function unsupported(param: string, accepted: string): UnsupportedParameterError {
  return new UnsupportedParameterError('anthropic', param, accepted);
}

/** True for a YYYY-MM-DD version on or after 2026-10-21 (ISO dates order as strings). */
function withoutSampling(version: string | undefined): boolean {
  return version !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(version) && version >= NO_SAMPLING_VERSION;
}

/** Tracks usage of one streamed native response and reports in-stream errors; it changes nothing. */
export class NativeStreamWatcher {
  readonly #usage = new UsageTracker();

  event(ev: { readonly event?: string | undefined; readonly data: string }): { usage?: Usage; error?: ProviderError } {
    switch (ev.event) {
      case 'message_start': {
        const d = parseJson(ev.data);
        if (isRecord(d) && isRecord(d['message'])) this.#usage.add(d['message']['usage']);
        return this.#report();
      }
      case 'message_delta': {
        const d = parseJson(ev.data);
        if (isRecord(d)) this.#usage.add(d['usage']);
        return this.#report();
      }
      case 'error':
        return { error: anthropicStreamError(ev.data) };
      case undefined:
      default:
        return {};
    }
  }

  #report(): { usage?: Usage } {
    const usage = this.#usage.usage;
    return usage === undefined ? {} : { usage };
  }
}

export const anthropicNative = {
  /**
   * The client's body sent to `target`, with `model` replaced by the provider's model name.
   * `pass` carries the client's `anthropic-version` and `anthropic-beta` headers.
   */
  messages(
    body: Readonly<Record<string, unknown>>,
    target: ProviderTarget,
    apiKey: string | undefined,
    pass: { readonly version?: string; readonly beta?: string },
  ): HttpCall {
    return messagesCall(target, apiKey, JSON.stringify({ ...body, model: target.model }), pass.version ?? ANTHROPIC_VERSION, pass.beta);
  },

  /**
   * What Anthropic would refuse that is cheap to see, or undefined. `version` is the
   * anthropic-version the request will carry (2023-06-01 when absent).
   *
   * max_tokens may be 0: Anthropic documents `max_tokens: 0` as the way to write the prompt cache
   * without generating (MessageCreateParamsBase.max_tokens, "pre-warming the cache").
   */
  check(body: unknown, version?: string): UnsupportedParameterError | undefined {
    if (!isRecord(body)) return unsupported('body', 'a JSON object');
    if (typeof body['model'] !== 'string' || body['model'] === '') return unsupported('model', 'a model name string');
    const maxTokens = body['max_tokens'];
    if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 0) {
      return unsupported('max_tokens', 'an integer of 0 or more (it is required)');
    }
    const messages = body['messages'];
    if (!Array.isArray(messages) || messages.length === 0) return unsupported('messages', 'a non-empty array of messages');
    if (withoutSampling(version)) {
      for (const p of ['temperature', 'top_p', 'top_k']) {
        if (body[p] !== undefined && body[p] !== null) {
          return unsupported(p, `no ${p} with anthropic-version ${version ?? ''} (send anthropic-version 2023-06-01 to use sampling parameters)`);
        }
      }
      return undefined;
    }
    const t = body['temperature'];
    if (t !== undefined && t !== null && (typeof t !== 'number' || !(t >= 0 && t <= 1))) {
      return unsupported('temperature', 'a number from 0 to 1');
    }
    return undefined;
  },

  /** Usage of a non-streamed Messages response, or undefined when it reports none. */
  usage(body: unknown): Usage | undefined {
    return isRecord(body) ? usageOf(body['usage']) : undefined;
  },

  NativeStreamWatcher,
} as const;
