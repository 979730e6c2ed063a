/**
 * Anthropic Message (POST /v1/messages, 2xx) → OpenAI chat.completion, and the usage arithmetic
 * shared with the stream mapper and the native route.
 *
 * Facts relied on (SDK resources/messages/messages.ts, Message / Usage / StopReason):
 * - `content` is an array of blocks; `text` and `tool_use` ({id, name, input}) are the ones a
 *   client-tools request can produce.
 * - "Total input tokens in a request is the summation of `input_tokens`,
 *   `cache_creation_input_tokens`, and `cache_read_input_tokens`" — OpenAI's prompt_tokens counts
 *   cached tokens too, so all three are added.
 * - stop_reason: end_turn, max_tokens, stop_sequence, tool_use, pause_turn, refusal,
 *   model_context_window_exceeded.
 */
import type { ChatCompletion, FinishReason, ResponseContext, ToolCall, Usage } from '../../types.ts';
import { JSON_TOOL_NAME } from './request.ts';
import { isRecord, num, str } from '../shared/json.ts';

/**
 * Anthropic stop_reason → OpenAI finish_reason. In JSON mode the forced tool call is the answer,
 * so its `tool_use` stop is a plain 'stop' for the client.
 */
export function finishReason(stopReason: string, jsonMode: boolean): FinishReason {
  switch (stopReason) {
    case 'end_turn':
    case 'stop_sequence':
      return 'stop';
    case 'max_tokens':
    // The context window filled up before the model finished: the answer is cut short.
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return jsonMode ? 'stop' : 'tool_calls';
    case 'refusal':
      return 'content_filter';
    // The turn paused (long-running server tools); what was produced is complete as far as it goes.
    case 'pause_turn':
      return 'stop';
    default:
      // A stop reason added after this was written: the model did stop, for a reason we cannot name.
      return 'stop';
  }
}

/** Cumulative Anthropic token counts, as message_start / message_delta / Message.usage report them. */
export class UsageTracker {
  #input: number | undefined;
  #cacheCreation = 0;
  #cacheRead = 0;
  #output = 0;

  /** Folds in one `usage` object; fields that are absent or null keep their last value. */
  add(u: unknown): void {
    if (!isRecord(u)) return;
    const input = num(u['input_tokens']);
    if (input !== undefined) this.#input = input;
    this.#cacheCreation = num(u['cache_creation_input_tokens']) ?? this.#cacheCreation;
    this.#cacheRead = num(u['cache_read_input_tokens']) ?? this.#cacheRead;
    this.#output = num(u['output_tokens']) ?? this.#output;
  }

  /** Undefined until some usage with input_tokens was seen. */
  get usage(): Usage | undefined {
    if (this.#input === undefined) return undefined;
    const prompt = this.#input + this.#cacheCreation + this.#cacheRead;
    return { prompt_tokens: prompt, completion_tokens: this.#output, total_tokens: prompt + this.#output };
  }
}

/** The OpenAI usage of one Anthropic `usage` object (a whole Message's). */
export function usageOf(u: unknown): Usage | undefined {
  const t = new UsageTracker();
  t.add(u);
  return t.usage;
}

/** A 2xx Messages body → chat.completion; id, created and model are the gateway's (ctx). */
export function toChatCompletion(body: unknown, ctx: ResponseContext): ChatCompletion {
  if (!isRecord(body)) throw new TypeError('Anthropic answered 2xx with a body that is not a Message object');
  const blocks = Array.isArray(body['content']) ? (body['content'] as readonly unknown[]) : [];
  let text = '';
  let sawText = false;
  let json = false;
  const toolCalls: ToolCall[] = [];
  for (const b of blocks) {
    if (!isRecord(b)) continue;
    if (b['type'] === 'text') {
      text += str(b['text']) ?? '';
      sawText = true;
    } else if (b['type'] === 'tool_use') {
      const name = str(b['name']) ?? '';
      const args = JSON.stringify(b['input'] ?? {});
      if (name === JSON_TOOL_NAME) {
        // JSON mode: the forced tool's input is the answer (request.ts, JSON_TOOL_NAME).
        text += args;
        sawText = true;
        json = true;
      } else {
        toolCalls.push({ id: str(b['id']) ?? '', type: 'function', function: { name, arguments: args } });
      }
    }
    // Other blocks (thinking, server tool results) have no place in a chat.completion message.
  }
  const stop = str(body['stop_reason']);
  const usage = usageOf(body['usage']);
  return {
    id: ctx.id,
    object: 'chat.completion',
    created: ctx.created,
    model: ctx.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: sawText ? text : null,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
          refusal: null,
        },
        finish_reason: stop === undefined ? null : finishReason(stop, json),
        logprobs: null,
      },
    ],
    ...(usage !== undefined ? { usage } : {}),
  };
}
