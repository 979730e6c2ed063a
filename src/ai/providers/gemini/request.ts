/**
 * OpenAI Chat Completions / Embeddings request → Gemini GenerateContentRequest /
 * BatchEmbedContentsRequest (https://ai.google.dev/api/generate-content,
 * https://ai.google.dev/api/embeddings). Whatever Gemini cannot honour as asked throws
 * UnsupportedParameterError naming the request field: nothing is clamped or dropped silently.
 */
import { UnsupportedParameterError } from '../../types.ts';
import type { ChatMessage, ChatRequest, ContentPart, EmbeddingsRequest, ToolChoice } from '../../types.ts';
import { asRecord, isRecord, parseJson } from '../shared/json.ts';
import type {
  GeminiBatchEmbedContentsRequest,
  GeminiContent,
  GeminiFunctionDeclaration,
  GeminiGenerateContentRequest,
  GeminiGenerationConfig,
  GeminiPart,
  GeminiTextPart,
  GeminiToolConfig,
} from './wire.ts';

/** GenerationConfig.stopSequences: "The set of character sequences (up to 5)". */
export const GEMINI_MAX_STOP_SEQUENCES = 5;

function unsupported(param: string, accepted: string, message?: string): UnsupportedParameterError {
  return new UnsupportedParameterError('gemini', param, accepted, message);
}

/**
 * The model id as it goes into the URL path. The REST reference names models `models/{model}`;
 * a configured name that already carries the prefix is accepted, and the id is percent-encoded so a
 * config value can never add path segments.
 */
export function geminiModelId(model: string): string {
  return encodeURIComponent(model.startsWith('models/') ? model.slice('models/'.length) : model);
}

// ---------------------------------------------------------------------------------------------
// Chat.

export function chatRequestBody(req: ChatRequest): GeminiGenerateContentRequest {
  rejectUnsupported(req);
  const { systemParts, contents } = mapMessages(req.messages);
  const tools = mapTools(req);
  const toolConfig = req.tool_choice === undefined ? undefined : mapToolChoice(req.tool_choice);
  const generationConfig = mapGenerationConfig(req);
  return {
    contents,
    ...(systemParts.length > 0 ? { systemInstruction: { parts: systemParts } } : {}),
    ...(tools.length > 0 ? { tools: [{ functionDeclarations: tools }] } : {}),
    ...(toolConfig ? { toolConfig } : {}),
    ...(Object.keys(generationConfig).length > 0 ? { generationConfig } : {}),
  };
}

/** Request fields with no Gemini counterpart. */
function rejectUnsupported(req: ChatRequest): void {
  // GenerationConfig has responseLogprobs/logprobs, but its LogprobsResult is not mapped to
  // OpenAI's choice.logprobs here, so asking for them would return a response without them.
  if (req.logprobs === true) throw unsupported('logprobs', 'false or absent');
  if (req.top_logprobs !== undefined) throw unsupported('top_logprobs', 'absent');
  // Gemini has no per-token bias at all.
  if (req.logit_bias !== undefined && Object.keys(req.logit_bias).length > 0) throw unsupported('logit_bias', 'absent');
  // Gemini may always answer with several function calls at once; it has no switch to forbid it.
  if (req.parallel_tool_calls === false) throw unsupported('parallel_tool_calls', 'true or absent');
  // `user` is an end-user id for OpenAI's abuse monitoring; Gemini has no such field and the id
  // does not change what the model generates, so it is not sent (the gateway's own logs keep it).
}

function mapMessages(messages: readonly ChatMessage[]): { systemParts: GeminiTextPart[]; contents: GeminiContent[] } {
  const systemParts: GeminiTextPart[] = [];
  const contents: GeminiContent[] = [];
  /** Function name of every tool call seen so far, by call id (a later call with the same id wins). */
  const callNames = new Map<string, string>();
  /** Parts of the user turn that collects consecutive tool results. */
  let toolTurn: GeminiPart[] | undefined;

  messages.forEach((m, i) => {
    const at = `messages[${i}]`;
    // Gemini's Content has no participant name; the model would never see it.
    if (m.name !== undefined && m.role !== 'tool') throw unsupported(`${at}.name`, 'no participant name');
    if (m.role !== 'tool') toolTurn = undefined;
    switch (m.role) {
      case 'system':
      case 'developer':
        // One systemInstruction per request, "currently, text only": every system/developer
        // message adds its text to it, in order.
        for (const text of textsOf(m.content, at)) systemParts.push({ text });
        return;
      case 'user': {
        const parts = userParts(m.content, at);
        if (parts.length > 0) contents.push({ role: 'user', parts });
        return;
      }
      case 'assistant': {
        const parts: GeminiPart[] = textsOf(m.content, at).map((text) => ({ text }));
        (m.tool_calls ?? []).forEach((call, k) => {
          const args = parseArguments(call.function.arguments, `${at}.tool_calls[${k}].function.arguments`);
          callNames.set(call.id, call.function.name);
          parts.push({ functionCall: { name: call.function.name, args } });
        });
        // An assistant message with neither text nor calls carries nothing; Gemini rejects empty turns.
        if (parts.length > 0) contents.push({ role: 'model', parts });
        return;
      }
      case 'tool': {
        const name = m.tool_call_id === undefined ? undefined : callNames.get(m.tool_call_id);
        if (name === undefined) {
          throw unsupported(`${at}.tool_call_id`, 'the id of a tool call made by an earlier assistant message', `gemini needs the function name of tool result ${at}, and no earlier assistant message made a tool call with id ${JSON.stringify(m.tool_call_id ?? null)}`);
        }
        const part: GeminiPart = { functionResponse: { name, response: toolResponse(textsOf(m.content, at).join('')) } };
        // The results of parallel calls go back together, in one user turn (function-calling guide).
        if (toolTurn) {
          toolTurn.push(part);
        } else {
          toolTurn = [part];
          contents.push({ role: 'user', parts: toolTurn });
        }
        return;
      }
    }
  });
  return { systemParts, contents };
}

/** Texts of a message whose content may only be text (system, assistant, tool). Empty texts are left out: Gemini rejects empty text parts. */
function textsOf(content: ChatMessage['content'], at: string): string[] {
  if (content === undefined || content === null) return [];
  if (typeof content === 'string') return content === '' ? [] : [content];
  const texts: string[] = [];
  content.forEach((part, j) => {
    if (part.type !== 'text') throw unsupported(`${at}.content[${j}]`, 'text parts in system, assistant and tool messages');
    if (part.text !== '') texts.push(part.text);
  });
  return texts;
}

function userParts(content: ChatMessage['content'], at: string): GeminiPart[] {
  if (content === undefined || content === null) return [];
  if (typeof content === 'string') return content === '' ? [] : [{ text: content }];
  const parts: GeminiPart[] = [];
  content.forEach((part: ContentPart, j) => {
    if (part.type === 'text') {
      if (part.text !== '') parts.push({ text: part.text });
      return;
    }
    const detail = part.image_url.detail;
    // OpenAI's detail picks the image resolution per image; Gemini has no per-image setting for it.
    if (detail !== undefined && detail !== 'auto') throw unsupported(`${at}.content[${j}].image_url.detail`, 'auto');
    const inline = parseDataUrl(part.image_url.url);
    // fileData needs a URI Gemini's Files API issued; arbitrary https URLs are not fetched.
    if (!inline) throw unsupported(`${at}.content[${j}].image_url.url`, 'data:<mime>;base64,<data> URLs (Gemini does not fetch image URLs)');
    parts.push({ inlineData: inline });
  });
  return parts;
}

/** `data:<mime>[;param…];base64,<data>` (RFC 2397) → Blob; null for anything else. */
export function parseDataUrl(url: string): { mimeType: string; data: string } | null {
  const m = /^data:([a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+)((?:;[^;,]*)*?);base64,(.+)$/is.exec(url);
  if (!m) return null;
  const [, mimeType = '', , data = ''] = m;
  return { mimeType: mimeType.toLowerCase(), data };
}

/** FunctionCall.args is a JSON object (a Struct); OpenAI sends it as JSON text. */
function parseArguments(text: string, param: string): Readonly<Record<string, unknown>> {
  const value = parseJson(text);
  if (!isRecord(value)) throw unsupported(param, 'JSON text of an object');
  return value;
}

/**
 * FunctionResponse.response is a Struct; its reference says to put the output under "output"
 * (and errors under "error"), and that a Struct with neither is taken whole as the output. A tool
 * result that is the JSON text of an object goes as that object; any other text goes as `output`.
 */
function toolResponse(text: string): Readonly<Record<string, unknown>> {
  // Not the JSON text of an object: plain text output.
  return asRecord(parseJson(text)) ?? { output: text };
}

function mapTools(req: ChatRequest): GeminiFunctionDeclaration[] {
  return (req.tools ?? []).map((tool, k) => {
    const fn = tool.function;
    // Gemini does not promise that arguments follow the schema in AUTO/ANY mode, so OpenAI's
    // strict guarantee cannot be given.
    if (fn.strict === true) throw unsupported(`tools[${k}].function.strict`, 'false or absent');
    return {
      name: fn.name,
      ...(fn.description !== undefined ? { description: fn.description } : {}),
      // parametersJsonSchema takes JSON Schema as OpenAI clients write it (additionalProperties,
      // anyOf, $ref…); `parameters` is an OpenAPI 3.0 subset that rejects some of those keywords.
      ...(fn.parameters !== undefined ? { parametersJsonSchema: fn.parameters } : {}),
    };
  });
}

/** FunctionCallingConfig.mode: AUTO (call or answer), ANY (must call), NONE (must not call). */
function mapToolChoice(choice: ToolChoice): GeminiToolConfig {
  if (choice === 'auto') return { functionCallingConfig: { mode: 'AUTO' } };
  if (choice === 'required') return { functionCallingConfig: { mode: 'ANY' } };
  if (choice === 'none') return { functionCallingConfig: { mode: 'NONE' } };
  return { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [choice.function.name] } };
}

function mapGenerationConfig(req: ChatRequest): GeminiGenerationConfig {
  // The OpenAI schema has already checked ranges; Gemini's temperature range is the same 0..2
  // ("Values can range from [0.0, 2.0]"), checked again here so the adapter stands on its own.
  if (req.temperature !== undefined && (req.temperature < 0 || req.temperature > 2)) throw unsupported('temperature', '0..2');
  const stop = req.stop === undefined ? [] : typeof req.stop === 'string' ? [req.stop] : req.stop;
  if (stop.length > GEMINI_MAX_STOP_SEQUENCES) throw unsupported('stop', `at most ${GEMINI_MAX_STOP_SEQUENCES} stop sequences`);
  const maxTokens = req.max_completion_tokens ?? req.max_tokens;
  const format = req.response_format;
  return {
    ...(stop.length > 0 ? { stopSequences: stop } : {}),
    ...(format?.type === 'json_object' || format?.type === 'json_schema' ? { responseMimeType: 'application/json' as const } : {}),
    ...(format?.type === 'json_schema' && format.json_schema.schema !== undefined ? { responseJsonSchema: format.json_schema.schema } : {}),
    ...(req.n !== undefined ? { candidateCount: req.n } : {}),
    ...(maxTokens !== undefined ? { maxOutputTokens: maxTokens } : {}),
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    ...(req.top_p !== undefined ? { topP: req.top_p } : {}),
    ...(req.seed !== undefined ? { seed: req.seed } : {}),
    ...(req.presence_penalty !== undefined ? { presencePenalty: req.presence_penalty } : {}),
    ...(req.frequency_penalty !== undefined ? { frequencyPenalty: req.frequency_penalty } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Embeddings.

export function embeddingsRequestBody(req: EmbeddingsRequest, model: string): GeminiBatchEmbedContentsRequest {
  const inputs: readonly unknown[] = typeof req.input === 'string' ? [req.input] : req.input;
  const texts = inputs.map((input) => {
    // Gemini embeds text only; OpenAI's token-id arrays belong to OpenAI's tokenizer.
    if (typeof input !== 'string') throw unsupported('input', 'a string or an array of strings');
    return input;
  });
  const name = `models/${model.startsWith('models/') ? model.slice('models/'.length) : model}`;
  return {
    requests: texts.map((text) => ({
      model: name,
      content: { parts: [{ text }] },
      ...(req.dimensions !== undefined ? { outputDimensionality: req.dimensions } : {}),
    })),
  };
}
