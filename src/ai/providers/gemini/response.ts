/**
 * Gemini GenerateContentResponse / BatchEmbedContentsResponse → OpenAI chat.completion / embeddings
 * list. Bodies arrive as `unknown` JSON and are read field by field: a missing or mistyped field is
 * treated as absent (proto3 JSON leaves default values out), never guessed.
 */
import type { ChatChoice, ChatCompletion, EmbeddingsResponse, FinishReason, ResponseContext, ToolCall, Usage } from '../../types.ts';
import type { GeminiCandidate, GeminiGenerateContentResponse, GeminiResponsePart, GeminiUsageMetadata } from './wire.ts';
import { asRecord, list, num, str } from '../shared/json.ts';

function readPart(v: unknown): GeminiResponsePart | undefined {
  const p = asRecord(v);
  if (!p) return undefined;
  const fc = asRecord(p['functionCall']);
  const text = str(p['text']);
  const id = fc ? str(fc['id']) : undefined;
  const name = fc ? str(fc['name']) : undefined;
  const args = fc ? asRecord(fc['args']) : undefined;
  return {
    ...(text !== undefined ? { text } : {}),
    ...(p['thought'] === true ? { thought: true } : {}),
    ...(fc ? { functionCall: { ...(id !== undefined ? { id } : {}), ...(name !== undefined ? { name } : {}), ...(args ? { args } : {}) } } : {}),
  };
}

function readCandidate(v: unknown): GeminiCandidate | undefined {
  const c = asRecord(v);
  if (!c) return undefined;
  const index = num(c['index']);
  const content = asRecord(c['content']);
  const finishReason = str(c['finishReason']);
  const parts = content ? list(content['parts']).map(readPart).filter((p) => p !== undefined) : undefined;
  return {
    ...(index !== undefined ? { index } : {}),
    ...(parts ? { content: { parts } } : {}),
    ...(finishReason !== undefined ? { finishReason } : {}),
  };
}

function readUsage(v: unknown): GeminiUsageMetadata | undefined {
  const u = asRecord(v);
  if (!u) return undefined;
  const out: { -readonly [K in keyof GeminiUsageMetadata]: GeminiUsageMetadata[K] } = {};
  for (const k of ['promptTokenCount', 'candidatesTokenCount', 'thoughtsTokenCount', 'totalTokenCount'] as const) {
    const n = num(u[k]);
    if (n !== undefined) out[k] = n;
  }
  return out;
}

/** A GenerateContentResponse (one whole answer, or one `alt=sse` event) read from JSON. */
export function readGenerateContentResponse(body: unknown): GeminiGenerateContentResponse {
  const r = asRecord(body);
  if (!r) throw new TypeError('Gemini answered with JSON that is not a GenerateContentResponse object');
  const candidates = list(r['candidates']).map(readCandidate).filter((c) => c !== undefined);
  const feedback = asRecord(r['promptFeedback']);
  const blockReason = feedback ? str(feedback['blockReason']) : undefined;
  const usage = readUsage(r['usageMetadata']);
  return {
    candidates,
    ...(feedback ? { promptFeedback: blockReason !== undefined ? { blockReason } : {} } : {}),
    ...(usage ? { usageMetadata: usage } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Mapping.

/** Finish reasons that mean a filter stopped the output (Candidate.FinishReason). */
const CONTENT_FILTER_REASONS: ReadonlySet<string> = new Set([
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'IMAGE_SAFETY',
  'IMAGE_PROHIBITED_CONTENT',
  'IMAGE_RECITATION',
]);

/**
 * Candidate.finishReason → OpenAI finish_reason. A filter wins over everything; a turn that called
 * functions is `tool_calls` (Gemini says STOP there); MAX_TOKENS is `length`. OTHER, LANGUAGE,
 * MALFORMED_FUNCTION_CALL and reasons added later have no OpenAI counterpart and end as `stop`, the
 * one OpenAI value that claims nothing more than "the model stopped". No reason (or
 * FINISH_REASON_UNSPECIFIED) means the candidate is not finished: null.
 */
export function mapFinishReason(reason: string | undefined, calledFunctions: boolean): FinishReason | null {
  if (reason === undefined || reason === 'FINISH_REASON_UNSPECIFIED') return null;
  if (CONTENT_FILTER_REASONS.has(reason)) return 'content_filter';
  if (calledFunctions) return 'tool_calls';
  if (reason === 'MAX_TOKENS') return 'length';
  return 'stop';
}

/**
 * UsageMetadata → OpenAI usage. Thinking tokens are output the client pays for, so they count as
 * completion tokens (OpenAI counts its reasoning tokens in completion_tokens the same way).
 */
export function mapUsage(u: GeminiUsageMetadata | undefined): Usage | undefined {
  if (!u) return undefined;
  const prompt = u.promptTokenCount ?? 0;
  const completion = (u.candidatesTokenCount ?? 0) + (u.thoughtsTokenCount ?? 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: u.totalTokenCount ?? prompt + completion };
}

/** The answer-bearing parts of a candidate: thought summaries are not part of the answer. */
export function answerParts(c: GeminiCandidate): readonly GeminiResponsePart[] {
  return (c.content?.parts ?? []).filter((p) => p.thought !== true);
}

/**
 * A functionCall part → OpenAI tool call. Gemini gives calls no id unless it has one of its own;
 * `call_<n>` (n = position among the calls of that candidate) is stable for the same response, and
 * the request mapping finds a tool result's function by the nearest earlier call with that id.
 */
export function toolCallOf(fc: NonNullable<GeminiResponsePart['functionCall']>, n: number): ToolCall {
  return { id: fc.id ?? `call_${n}`, type: 'function', function: { name: fc.name ?? '', arguments: JSON.stringify(fc.args ?? {}) } };
}

function choiceOf(c: GeminiCandidate, position: number): ChatChoice {
  const parts = answerParts(c);
  const texts = parts.flatMap((p) => (p.text !== undefined && p.functionCall === undefined ? [p.text] : []));
  const calls = parts.flatMap((p) => (p.functionCall ? [p.functionCall] : [])).map(toolCallOf);
  return {
    index: c.index ?? position,
    message: {
      role: 'assistant',
      // OpenAI sends null content beside tool calls; a candidate with nothing (e.g. filtered) has "".
      content: texts.length > 0 ? texts.join('') : calls.length > 0 ? null : '',
      ...(calls.length > 0 ? { tool_calls: calls } : {}),
    },
    finish_reason: mapFinishReason(c.finishReason, calls.length > 0),
    logprobs: null,
  };
}

/** The one choice that stands for a blocked prompt: promptFeedback.blockReason and no candidates. */
export function blockedChoice(): ChatChoice {
  return { index: 0, message: { role: 'assistant', content: '' }, finish_reason: 'content_filter', logprobs: null };
}

export function chatCompletion(body: unknown, ctx: ResponseContext): ChatCompletion {
  const res = readGenerateContentResponse(body);
  const candidates = res.candidates ?? [];
  const choices =
    candidates.length > 0 ? candidates.map(choiceOf) : res.promptFeedback?.blockReason !== undefined ? [blockedChoice()] : [];
  const usage = mapUsage(res.usageMetadata);
  return {
    id: ctx.id,
    object: 'chat.completion',
    created: ctx.created,
    model: ctx.model,
    choices,
    ...(usage ? { usage } : {}),
  };
}

export function embeddingsList(body: unknown, ctx: ResponseContext): EmbeddingsResponse {
  const r = asRecord(body);
  if (!r) throw new TypeError('Gemini answered with JSON that is not a BatchEmbedContentsResponse object');
  // BatchEmbedContentsResponse.embeddings is "in the same order as provided in the batch request".
  const data = list(r['embeddings']).map((e, index) => ({
    object: 'embedding' as const,
    index,
    embedding: list(asRecord(e)?.['values']).flatMap((x) => (typeof x === 'number' ? [x] : [])),
  }));
  return {
    object: 'list',
    data,
    model: ctx.model,
    // BatchEmbedContentsResponse carries embeddings only: Gemini reports no token counts for them,
    // so usage is 0 rather than an estimate the provider never made.
    usage: { prompt_tokens: 0, total_tokens: 0 },
  };
}
