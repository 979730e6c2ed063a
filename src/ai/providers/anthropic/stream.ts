/**
 * Anthropic Messages stream (named SSE events) → OpenAI chat.completion.chunk events.
 *
 * Anthropic's order (streaming docs; SDK RawMessageStreamEvent): `message_start` (a Message with
 * empty content and the input usage), then per content block `content_block_start`, one or more
 * `content_block_delta` (text_delta, input_json_delta = a piece of the tool input's JSON text,
 * thinking/signature/citations deltas), `content_block_stop`; then `message_delta` (stop_reason and
 * cumulative usage) and `message_stop`. `ping` may come anywhere, `error` may come after the 200,
 * and new event types may be added, so unknown events are ignored. There is no `[DONE]`.
 *
 * OpenAI's side (chat streaming reference): the first chunk carries `delta.role`, tool calls
 * stream as `tool_calls[{index, id, type, function:{name, arguments:''}}]` then argument pieces
 * under the same index, a last chunk carries `finish_reason` with an empty delta, and with
 * `stream_options.include_usage` a final chunk has `choices: []` and `usage`, every other chunk
 * having `usage: null`.
 */
import type { ChatCompletionChunk, ChatRequest, ChunkToolCallDelta, FinishReason, ResponseContext, StreamMapper, StreamStep, Usage } from '../../types.ts';
import { anthropicStreamError, malformedEvent } from './errors.ts';
import { isJsonMode, JSON_TOOL_NAME } from './request.ts';
import { finishReason, UsageTracker } from './response.ts';
import { isRecord, parseJson, str } from '../shared/json.ts';

type Delta = ChatCompletionChunk['choices'][number]['delta'];

const NOTHING: StreamStep = { chunks: [] };

export class AnthropicStreamMapper implements StreamMapper {
  readonly #ctx: ResponseContext;
  readonly #includeUsage: boolean;
  readonly #jsonMode: boolean;
  readonly #usage = new UsageTracker();
  /** Anthropic block index → OpenAI tool_calls index, for client tool blocks. */
  readonly #toolIndex = new Map<number, number>();
  /** Anthropic block indexes of the forced JSON tool, whose input is streamed as content. */
  readonly #jsonBlocks = new Set<number>();
  #finished = false;
  #done = false;

  constructor(ctx: ResponseContext, req: Pick<ChatRequest, 'stream_options' | 'response_format'>) {
    this.#ctx = ctx;
    this.#includeUsage = req.stream_options?.include_usage === true;
    this.#jsonMode = isJsonMode(req);
  }

  event(ev: { readonly event?: string | undefined; readonly data: string }): StreamStep {
    if (this.#done) return NOTHING;
    switch (ev.event) {
      case 'error':
        this.#done = true;
        return { chunks: [], error: anthropicStreamError(ev.data) };
      case 'message_start':
        return this.#parsed(ev, (d) => this.#messageStart(d));
      case 'content_block_start':
        return this.#parsed(ev, (d) => this.#blockStart(d));
      case 'content_block_delta':
        return this.#parsed(ev, (d) => this.#blockDelta(d));
      case 'message_delta':
        return this.#parsed(ev, (d) => this.#messageDelta(d));
      case 'message_stop':
        return this.#messageStop();
      case undefined:
      default:
        // ping, content_block_stop, and event types added after this was written: nothing to send.
        return NOTHING;
    }
  }

  end(): StreamStep {
    // Nothing is held back: every event is mapped as it arrives.
    return NOTHING;
  }

  /** Runs `f` on the event's JSON object; data that is not one breaks the protocol and ends the stream. */
  #parsed(ev: { readonly event?: string | undefined; readonly data: string }, f: (data: Readonly<Record<string, unknown>>) => StreamStep): StreamStep {
    const data = parseJson(ev.data);
    if (isRecord(data)) return f(data);
    this.#done = true;
    return { chunks: [], error: malformedEvent(ev.event, ev.data) };
  }

  #chunk(delta: Delta, finish: FinishReason | null = null): ChatCompletionChunk {
    return {
      id: this.#ctx.id,
      object: 'chat.completion.chunk',
      created: this.#ctx.created,
      model: this.#ctx.model,
      choices: [{ index: 0, delta, finish_reason: finish }],
      ...(this.#includeUsage ? { usage: null } : {}),
    };
  }

  #withUsage(chunks: readonly ChatCompletionChunk[]): StreamStep {
    const usage: Usage | undefined = this.#usage.usage;
    return usage === undefined ? { chunks } : { chunks, usage };
  }

  #messageStart(data: Readonly<Record<string, unknown>>): StreamStep {
    const message = data['message'];
    if (isRecord(message)) this.#usage.add(message['usage']);
    return this.#withUsage([this.#chunk({ role: 'assistant', content: '' })]);
  }

  #blockStart(data: Readonly<Record<string, unknown>>): StreamStep {
    const index = data['index'];
    const block = data['content_block'];
    if (typeof index !== 'number' || !isRecord(block)) return NOTHING;
    if (block['type'] === 'text') {
      // Text blocks start empty; should one ever start with text, it is not lost.
      const text = str(block['text']) ?? '';
      return text === '' ? NOTHING : { chunks: [this.#chunk({ content: text })] };
    }
    if (block['type'] !== 'tool_use') return NOTHING;
    const name = str(block['name']) ?? '';
    if (this.#jsonMode && name === JSON_TOOL_NAME) {
      this.#jsonBlocks.add(index);
      return NOTHING;
    }
    const toolIndex = this.#toolIndex.size;
    this.#toolIndex.set(index, toolIndex);
    const call: ChunkToolCallDelta = { index: toolIndex, id: str(block['id']) ?? '', type: 'function', function: { name, arguments: '' } };
    return { chunks: [this.#chunk({ tool_calls: [call] })] };
  }

  #blockDelta(data: Readonly<Record<string, unknown>>): StreamStep {
    const index = data['index'];
    const delta = data['delta'];
    if (!isRecord(delta)) return NOTHING;
    if (delta['type'] === 'text_delta') {
      const text = str(delta['text']) ?? '';
      return text === '' ? NOTHING : { chunks: [this.#chunk({ content: text })] };
    }
    if (delta['type'] !== 'input_json_delta' || typeof index !== 'number') return NOTHING;
    const part = str(delta['partial_json']) ?? '';
    // Anthropic may send an empty first piece; an empty delta tells the client nothing.
    if (part === '') return NOTHING;
    if (this.#jsonBlocks.has(index)) return { chunks: [this.#chunk({ content: part })] };
    const toolIndex = this.#toolIndex.get(index);
    if (toolIndex === undefined) return NOTHING;
    return { chunks: [this.#chunk({ tool_calls: [{ index: toolIndex, function: { arguments: part } }] })] };
  }

  #messageDelta(data: Readonly<Record<string, unknown>>): StreamStep {
    this.#usage.add(data['usage']);
    const delta = data['delta'];
    const stop = isRecord(delta) ? str(delta['stop_reason']) : undefined;
    // One finish chunk per choice, as OpenAI sends; a later message_delta only updates usage.
    if (stop === undefined || this.#finished) return this.#withUsage([]);
    this.#finished = true;
    return this.#withUsage([this.#chunk({}, finishReason(stop, this.#jsonMode && this.#jsonBlocks.size > 0))]);
  }

  #messageStop(): StreamStep {
    this.#done = true;
    const usage = this.#usage.usage;
    if (this.#includeUsage && usage !== undefined) {
      const last: ChatCompletionChunk = {
        id: this.#ctx.id,
        object: 'chat.completion.chunk',
        created: this.#ctx.created,
        model: this.#ctx.model,
        choices: [],
        usage,
      };
      return { chunks: [last], usage, done: true };
    }
    return usage === undefined ? { chunks: [], done: true } : { chunks: [], usage, done: true };
  }
}

/** A mapper for one streamed Messages response to `req`. */
export function anthropicStream(ctx: ResponseContext, req: ChatRequest): StreamMapper {
  return new AnthropicStreamMapper(ctx, req);
}
