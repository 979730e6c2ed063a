/**
 * OpenAI Chat Completions request → Anthropic Messages request (POST /v1/messages,
 * anthropic-version 2023-06-01).
 *
 * Facts relied on (Anthropic Messages API reference and SDK types, resources/messages/messages.ts):
 * - `system` is a top-level field, not a message role; `max_tokens` is required.
 * - Only `user` and `assistant` turns exist; tool results are `tool_result` blocks in a user turn,
 *   and "tool_result blocks must come first in the content array" of that turn (tool use guide).
 * - Text blocks must be non-empty.
 * - Image sources are `{type:'base64', media_type, data}` (jpeg, png, gif, webp) or `{type:'url', url}`.
 * - `tool_choice` is `{type:'auto'|'any'|'tool'|'none'}` with `disable_parallel_tool_use`.
 * - `temperature` ranges over 0..1 (OpenAI allows 0..2).
 *
 * Anything the client asked for that Anthropic cannot do throws UnsupportedParameterError: the
 * gateway never clamps a value or drops a parameter that would change the answer.
 */
import { UnsupportedParameterError } from '../../types.ts';
import type { ChatMessage, ChatRequest, ContentPart, FunctionTool, ImagePart, ResponseFormat } from '../../types.ts';
import { isRecord } from '../shared/json.ts';
import {
  ANTHROPIC_IMAGE_MEDIA_TYPES,
  type AnthropicContentBlock,
  type AnthropicImageBlock,
  type AnthropicImageMediaType,
  type AnthropicMessageParam,
  type AnthropicMessagesRequest,
  type AnthropicTextBlock,
  type AnthropicTool,
  type AnthropicToolChoice,
  type AnthropicToolResultBlock,
  type AnthropicToolUseBlock,
} from './wire.ts';

/**
 * `max_tokens` sent when the client gave neither `max_completion_tokens` nor `max_tokens`.
 * Anthropic requires the field while OpenAI treats it as optional, so most OpenAI clients never
 * send it; 4096 is a common output length every current Claude model supports, large enough not
 * to truncate ordinary answers. A client that needs more sends max_completion_tokens.
 */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

/**
 * JSON mode (`response_format` json_object / json_schema) is emulated with one tool of this name
 * that the model is forced to call; its input is the JSON answer (Anthropic tool use guide, "JSON
 * output"). The name is reserved: a client tool of the same name is refused, so a `tool_use` block
 * with this name always means JSON mode, also when reading a response without the request.
 */
export const JSON_TOOL_NAME = 'json_response';

const JSON_TOOL_DESCRIPTION = 'Give your final answer as the input of this tool.';

function unsupported(param: string, accepted: string, message?: string): UnsupportedParameterError {
  return new UnsupportedParameterError('anthropic', param, accepted, message);
}

/** True when the request asks for JSON output (so the forced JSON tool is in play). */
export function isJsonMode(req: Pick<ChatRequest, 'response_format'>): boolean {
  const rf = req.response_format;
  return rf !== undefined && rf.type !== 'text';
}

/** The Messages request body for `req`, sent to `model` (the provider's model name). */
export function toMessagesRequest(req: ChatRequest, model: string): AnthropicMessagesRequest {
  checkSampling(req);
  const { system, messages } = convertMessages(req.messages);
  const { tools, toolChoice } = convertTools(req);
  const stop = req.stop === undefined ? undefined : typeof req.stop === 'string' ? [req.stop] : req.stop;
  return {
    model,
    max_tokens: req.max_completion_tokens ?? req.max_tokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS,
    messages,
    ...(system.length > 0 ? { system } : {}),
    ...(stop !== undefined ? { stop_sequences: stop } : {}),
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    ...(req.top_p !== undefined ? { top_p: req.top_p } : {}),
    ...(tools !== undefined ? { tools } : {}),
    ...(toolChoice !== undefined ? { tool_choice: toolChoice } : {}),
    ...(req.user !== undefined ? { metadata: { user_id: req.user } } : {}),
    ...(req.stream !== undefined ? { stream: req.stream } : {}),
  };
}

/** Sampling and output options Anthropic has no equivalent for, or a narrower range of. */
function checkSampling(req: ChatRequest): void {
  if (req.temperature !== undefined && req.temperature > 1) {
    throw unsupported('temperature', 'a number from 0 to 1');
  }
  if (req.n !== undefined && req.n > 1) {
    throw unsupported('n', '1 (one choice per request)');
  }
  if (req.seed !== undefined) {
    throw unsupported('seed', 'no seed (it has no seeded sampling)');
  }
  if (req.logprobs === true) {
    throw unsupported('logprobs', 'false (it returns no log probabilities)');
  }
  if (req.top_logprobs !== undefined && req.top_logprobs > 0) {
    throw unsupported('top_logprobs', '0 or absent (it returns no log probabilities)');
  }
  if (req.logit_bias !== undefined && Object.keys(req.logit_bias).length > 0) {
    throw unsupported('logit_bias', 'an empty object or absent (it has no token biasing)');
  }
  if (req.presence_penalty !== undefined && req.presence_penalty !== 0) {
    throw unsupported('presence_penalty', '0 or absent (it has no presence penalty)');
  }
  if (req.frequency_penalty !== undefined && req.frequency_penalty !== 0) {
    throw unsupported('frequency_penalty', '0 or absent (it has no frequency penalty)');
  }
}

// ---------------------------------------------------------------------------------------------
// Messages.

interface Turn {
  readonly role: 'user' | 'assistant';
  readonly content: string | readonly AnthropicContentBlock[];
}

function convertMessages(input: readonly ChatMessage[]): { system: AnthropicTextBlock[]; messages: AnthropicMessageParam[] } {
  const system: AnthropicTextBlock[] = [];
  const turns: Turn[] = [];
  input.forEach((m, i) => {
    const at = `messages[${i}]`;
    // A participant name has nowhere to go on Anthropic. On tool messages it only repeats the
    // tool's name, which tool_call_id already identifies, so nothing is lost there.
    if (m.name !== undefined && m.role !== 'tool') {
      throw unsupported(`${at}.name`, 'no name (messages carry no participant name)');
    }
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push(...systemBlocks(m, at));
        return;
      case 'user':
        pushTurn(turns, { role: 'user', content: userContent(m.content, at) });
        return;
      case 'assistant':
        pushTurn(turns, { role: 'assistant', content: assistantContent(m, at) });
        return;
      case 'tool':
        pushTurn(turns, { role: 'user', content: [toolResult(m, at)] });
        return;
    }
  });
  return { system, messages: turns };
}

/**
 * Anthropic wants alternating turns, and OpenAI conversations often have two user turns in a row
 * (a tool result, then the user's words): same-role neighbours become one turn. In a merged user
 * turn the tool_result blocks go first, as Anthropic requires.
 */
function pushTurn(turns: Turn[], next: Turn): void {
  const last = turns.at(-1);
  if (last === undefined || last.role !== next.role) {
    turns.push(next);
    return;
  }
  const merged = [...asBlocks(last.content), ...asBlocks(next.content)];
  turns[turns.length - 1] = {
    role: last.role,
    content: last.role === 'user' ? [...merged.filter((b) => b.type === 'tool_result'), ...merged.filter((b) => b.type !== 'tool_result')] : merged,
  };
}

/** An empty string becomes no block: Anthropic refuses empty text blocks and it carries nothing. */
function asBlocks(content: string | readonly AnthropicContentBlock[]): readonly AnthropicContentBlock[] {
  if (typeof content !== 'string') return content;
  return content === '' ? [] : [{ type: 'text', text: content }];
}

function systemBlocks(m: ChatMessage, at: string): AnthropicTextBlock[] {
  const c = m.content;
  if (c === undefined || c === null) return [];
  // An empty system message says nothing; Anthropic would refuse the empty block it would make.
  if (typeof c === 'string') return c === '' ? [] : [{ type: 'text', text: c }];
  return c.flatMap((part, j): AnthropicTextBlock[] => {
    if (part.type !== 'text') throw unsupported(`${at}.content[${j}]`, 'text parts in system and developer messages');
    return part.text === '' ? [] : [{ type: 'text', text: part.text }];
  });
}

function userContent(c: ChatMessage['content'], at: string): string | AnthropicContentBlock[] {
  if (c === undefined || c === null) return '';
  if (typeof c === 'string') return c;
  return c.map((part, j) => partBlock(part, `${at}.content[${j}]`, true));
}

function partBlock(part: ContentPart, at: string, imagesAllowed: boolean): AnthropicTextBlock | AnthropicImageBlock {
  switch (part.type) {
    case 'text':
      return { type: 'text', text: part.text };
    case 'image_url':
      if (!imagesAllowed) throw unsupported(at, 'text parts in assistant messages');
      return imageBlock(part, at);
    default: {
      const type: unknown = (part as { readonly type?: unknown }).type;
      throw unsupported(at, 'text and image_url parts', `anthropic does not accept a content part of type ${JSON.stringify(type)} at ${at}`);
    }
  }
}

function isImageMediaType(v: string): v is AnthropicImageMediaType {
  return (ANTHROPIC_IMAGE_MEDIA_TYPES as readonly string[]).includes(v);
}

const IMAGE_URLS = 'a data:image/(jpeg|png|gif|webp);base64 URL or an https URL';

function imageBlock(part: ImagePart, at: string): AnthropicImageBlock {
  // Anthropic has no detail setting and always reads an image at its own full resolution:
  // 'auto' and 'high' are honoured as they are, 'low' (fewer tokens) cannot be.
  if (part.image_url.detail === 'low') {
    throw unsupported(`${at}.image_url.detail`, "'auto' or 'high' (images are always read at full resolution)");
  }
  const url = part.image_url.url;
  const scheme = url.slice(0, url.indexOf(':') + 1).toLowerCase();
  if (scheme === 'data:') {
    // RFC 2397: data:[<mediatype>][;param]*[;base64],<data>
    const comma = url.indexOf(',');
    const params = comma < 0 ? [] : url.slice(5, comma).split(';');
    const mediaType = (params[0] ?? '').trim().toLowerCase();
    if (comma < 0 || params.at(-1)?.toLowerCase() !== 'base64' || !isImageMediaType(mediaType)) {
      throw unsupported(`${at}.image_url.url`, IMAGE_URLS);
    }
    return { type: 'image', source: { type: 'base64', media_type: mediaType, data: url.slice(comma + 1) } };
  }
  if (scheme === 'https:') return { type: 'image', source: { type: 'url', url } };
  throw unsupported(`${at}.image_url.url`, IMAGE_URLS);
}

function assistantContent(m: ChatMessage, at: string): string | AnthropicContentBlock[] {
  const calls = m.tool_calls ?? [];
  const c = m.content;
  if (calls.length === 0) {
    if (c === undefined || c === null) return '';
    if (typeof c === 'string') return c;
  }
  const text: AnthropicContentBlock[] =
    c === undefined || c === null
      ? []
      : typeof c === 'string'
        ? [...asBlocks(c)]
        : c.map((part, j) => partBlock(part, `${at}.content[${j}]`, false)).filter((b) => b.type !== 'text' || b.text !== '');
  return [...text, ...calls.map((call, j) => toolUse(call.id, call.function.name, call.function.arguments, `${at}.tool_calls[${j}].function.arguments`))];
}

function toolUse(id: string, name: string, args: string, at: string): AnthropicToolUseBlock {
  let input: unknown;
  try {
    input = JSON.parse(args) as unknown;
  } catch {
    throw unsupported(at, 'a JSON object (it becomes the tool_use input)', `anthropic needs ${at} to be a JSON object; it does not parse as JSON`);
  }
  if (!isRecord(input)) throw unsupported(at, 'a JSON object (it becomes the tool_use input)');
  return { type: 'tool_use', id, name, input };
}

function toolResult(m: ChatMessage, at: string): AnthropicToolResultBlock {
  if (m.tool_call_id === undefined || m.tool_call_id === '') {
    throw unsupported(`${at}.tool_call_id`, 'the id of the tool call the message answers');
  }
  const c = m.content;
  if (c === undefined || c === null) return { type: 'tool_result', tool_use_id: m.tool_call_id };
  return {
    type: 'tool_result',
    tool_use_id: m.tool_call_id,
    content: typeof c === 'string' ? c : c.map((part, j) => partBlock(part, `${at}.content[${j}]`, true)),
  };
}

// ---------------------------------------------------------------------------------------------
// Tools, tool choice and JSON mode.

function convertTools(req: ChatRequest): { tools?: AnthropicTool[]; toolChoice?: AnthropicToolChoice } {
  const rf = req.response_format;
  if (rf !== undefined && rf.type !== 'text') {
    if ((req.tools !== undefined && req.tools.length > 0) || req.tool_choice !== undefined) {
      throw unsupported(
        'response_format',
        'json_object or json_schema only on requests without tools (JSON mode is a forced tool call there)',
      );
    }
    return { tools: [jsonTool(rf)], toolChoice: { type: 'tool', name: JSON_TOOL_NAME } };
  }
  if (req.tools === undefined) return {};
  const tools = req.tools.map(convertTool);
  return { tools, ...(tools.length > 0 ? toolChoice(req) : {}) };
}

function convertTool(t: FunctionTool, i: number): AnthropicTool {
  const f = t.function;
  if (f.name === JSON_TOOL_NAME) {
    throw unsupported(`tools[${i}].function.name`, `any name but ${JSON_TOOL_NAME}, which the gateway reserves for JSON mode`);
  }
  return {
    name: f.name,
    ...(f.description !== undefined ? { description: f.description } : {}),
    // OpenAI lets a function without arguments omit `parameters`; Anthropic requires a schema.
    input_schema: f.parameters ?? { type: 'object', properties: {} },
    ...(f.strict === true ? { strict: true } : {}),
  };
}

function toolChoice(req: ChatRequest): { toolChoice?: AnthropicToolChoice } {
  const disable = req.parallel_tool_calls === false ? { disable_parallel_tool_use: true } : {};
  const tc = req.tool_choice;
  if (tc === undefined) return req.parallel_tool_calls === false ? { toolChoice: { type: 'auto', ...disable } } : {};
  if (tc === 'none') return { toolChoice: { type: 'none' } };
  if (tc === 'auto') return { toolChoice: { type: 'auto', ...disable } };
  if (tc === 'required') return { toolChoice: { type: 'any', ...disable } };
  return { toolChoice: { type: 'tool', name: tc.function.name, ...disable } };
}

function jsonTool(rf: Exclude<ResponseFormat, { type: 'text' }>): AnthropicTool {
  if (rf.type === 'json_object') {
    return { name: JSON_TOOL_NAME, description: JSON_TOOL_DESCRIPTION, input_schema: { type: 'object' } };
  }
  const schema = rf.json_schema.schema ?? { type: 'object' };
  // A tool's input is always a JSON object (Tool.InputSchema has type 'object').
  if (schema['type'] !== 'object') {
    throw unsupported('response_format.json_schema.schema', 'a schema whose root type is "object" (a tool input is always an object)');
  }
  return {
    name: JSON_TOOL_NAME,
    description: rf.json_schema.description ?? JSON_TOOL_DESCRIPTION,
    input_schema: schema,
    ...(rf.json_schema.strict === true ? { strict: true } : {}),
  };
}
