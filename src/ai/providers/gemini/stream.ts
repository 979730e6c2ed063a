/**
 * Gemini `:streamGenerateContent?alt=sse` → OpenAI chat.completion.chunk events.
 *
 * With `alt=sse` every event is an unnamed `data:` line holding one GenerateContentResponse with the
 * next piece of each candidate; there is no terminator (no `[DONE]`): the stream ends when the
 * connection closes. Function calls arrive whole (name and args in one part), so each becomes one
 * complete tool_calls delta. usageMetadata, when present, holds the counts so far (the last one is
 * the total). An error after the 200 arrives as a `data:` object with an `error` member
 * (google.rpc.Status).
 */
import type { ChatCompletionChunk, ChatRequest, ChunkToolCallDelta, FinishReason, ResponseContext, StreamMapper, StreamStep, Usage } from '../../types.ts';
import { errorFromStatusObject, foreignStreamError } from './errors.ts';
import { asRecord } from '../shared/json.ts';
import { answerParts, mapFinishReason, mapUsage, readGenerateContentResponse, toolCallOf } from './response.ts';

type Choice = ChatCompletionChunk['choices'][number];
type Delta = Choice['delta'];

/** What has been said so far for one candidate (choice) index. */
interface ChoiceState {
  roleSent: boolean;
  /** Tool calls sent so far: the next call's index and `call_<n>` id. */
  calls: number;
  finished: boolean;
}

export class GeminiStreamMapper implements StreamMapper {
  readonly #ctx: ResponseContext;
  readonly #includeUsage: boolean;
  readonly #choices = new Map<number, ChoiceState>();
  #usage: Usage | undefined;
  #ended = false;

  constructor(ctx: ResponseContext, req: ChatRequest) {
    this.#ctx = ctx;
    this.#includeUsage = req.stream_options?.include_usage === true;
  }

  event(ev: { readonly event?: string | undefined; readonly data: string }): StreamStep {
    // Blank data carries nothing (the SSE parser already drops comments).
    if (ev.data.trim() === '') return { chunks: [] };
    let json: unknown;
    try {
      json = JSON.parse(ev.data);
    } catch {
      return { chunks: [], error: foreignStreamError(ev.data) };
    }
    const obj = asRecord(json);
    if (!obj) return { chunks: [], error: foreignStreamError(ev.data) };
    if (obj['error'] !== undefined) return { chunks: [], error: errorFromStatusObject(obj['error'], null, {}, ev.data) };

    const res = readGenerateContentResponse(obj);
    const chunks: ChatCompletionChunk[] = [];
    const candidates = res.candidates ?? [];
    candidates.forEach((c, position) => {
      const index = c.index ?? position;
      const st = this.#state(index);
      let content: string | undefined;
      const toolCalls: ChunkToolCallDelta[] = [];
      for (const p of answerParts(c)) {
        if (p.functionCall) {
          const call = toolCallOf(p.functionCall, st.calls);
          toolCalls.push({ index: st.calls, id: call.id, type: 'function', function: { name: call.function.name, arguments: call.function.arguments } });
          st.calls += 1;
        } else if (p.text !== undefined && p.text !== '') {
          content = (content ?? '') + p.text;
        }
      }
      if (content !== undefined || toolCalls.length > 0) {
        chunks.push(this.#chunk(index, { ...(content !== undefined ? { content } : {}), ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) }, null));
      }
      const finish = mapFinishReason(c.finishReason, st.calls > 0);
      if (finish !== null && !st.finished) {
        st.finished = true;
        chunks.push(this.#chunk(index, {}, finish));
      }
    });
    // A blocked prompt: no candidates at all, only promptFeedback.blockReason.
    if (candidates.length === 0 && res.promptFeedback?.blockReason !== undefined) {
      const st = this.#state(0);
      if (!st.finished) {
        st.finished = true;
        chunks.push(this.#chunk(0, { content: '' }, 'content_filter'));
      }
    }
    const usage = mapUsage(res.usageMetadata);
    if (usage) this.#usage = usage;
    return { chunks, ...(usage ? { usage } : {}) };
  }

  end(): StreamStep {
    if (this.#ended) return { chunks: [], done: true };
    this.#ended = true;
    const chunks: ChatCompletionChunk[] = [];
    // stream_options.include_usage: one last chunk with empty choices and the usage (null when
    // Gemini reported none: the count is unknown, not zero).
    if (this.#includeUsage) chunks.push({ ...this.#base(), choices: [], usage: this.#usage ?? null });
    return { chunks, done: true, ...(this.#usage ? { usage: this.#usage } : {}) };
  }

  #state(index: number): ChoiceState {
    let st = this.#choices.get(index);
    if (!st) {
      st = { roleSent: false, calls: 0, finished: false };
      this.#choices.set(index, st);
    }
    return st;
  }

  /** One chunk for one choice; that choice's first chunk carries the role, as OpenAI's does. */
  #chunk(index: number, delta: Delta, finish: FinishReason | null): ChatCompletionChunk {
    const st = this.#state(index);
    const withRole: Delta = st.roleSent ? delta : { role: 'assistant', ...delta };
    st.roleSent = true;
    return { ...this.#base(), choices: [{ index, delta: withRole, finish_reason: finish, logprobs: null }] };
  }

  #base(): Omit<ChatCompletionChunk, 'choices'> {
    return { id: this.#ctx.id, object: 'chat.completion.chunk', created: this.#ctx.created, model: this.#ctx.model };
  }
}
