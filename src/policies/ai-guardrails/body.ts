/**
 * Reading an AI request body: UTF-8 JSON (RFC 8259 §8.1) parsed once, a parse failure located
 * without quoting the body, and the prompt texts collected with the JSON pointer (RFC 6901) of
 * each, so a guardrail can say where it matched and masking can write the text back in place.
 *
 * Shapes read (OpenAI API reference: chat/create, embeddings/create; Anthropic Messages API:
 * content blocks, tool use; src/ai/types.ts):
 * - OpenAI Chat Completions: `messages[].content` as a string or parts (`{type:'text', text}`);
 *   assistant `tool_calls[].function.arguments` (JSON text). Embeddings: `input` as a string or an
 *   array of strings (token arrays carry no text).
 * - Anthropic Messages: top-level `system` (string or text blocks); `messages[].content` as a
 *   string or blocks: `text`, `tool_result` (its `content` a string or text blocks) and `document`
 *   with a plain-text source.
 * - Prompt APIs: the body is an object of template variables; every string in it is a text.
 * Anything else in the body (model, parameters, tool schemas, images) is not prompt text.
 */
import type { AiProtocol } from '../../pipeline/types.ts';

/** Who wrote a text, as far as the body says; guardrail scopes select on it. */
export type TextSource = 'user' | 'tool' | 'system' | 'assistant' | 'other';

export interface PromptText {
  /** JSON pointer into the body, e.g. /messages/2/content/0/text. */
  readonly pointer: string;
  readonly source: TextSource;
  readonly text: string;
  /** Where the text lives in the parsed body, so a masked text can replace it. */
  readonly holder: Record<string, unknown> | unknown[];
  readonly key: string | number;
}

/** Why a body could not be read, and where — never a piece of the body. */
export interface BodyProblem {
  readonly reason: string;
  /** Human-readable place: "line 1, column 8 (character 7)" or "byte 12". */
  readonly at: string;
  readonly line?: number;
  readonly column?: number;
}

/**
 * Deepest nesting accepted. RFC 8259 §9 lets a parser limit depth; the body may have to be
 * written back (masking), and JSON.stringify recurses, so a hostile depth could exhaust the stack.
 * Real prompt bodies nest a handful of levels (tool schemas a few dozen).
 */
export const MAX_DEPTH = 128;

const UTF8 = new TextDecoder('utf-8', { fatal: true });

export function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

// ---------------------------------------------------------------------------------------------
// Parsing.

/** Byte offset of the first ill-formed UTF-8 sequence (Unicode §3.9, Table 3-7), or -1. */
export function firstBadUtf8(buf: Uint8Array): number {
  let i = 0;
  while (i < buf.length) {
    const b = buf[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      else if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = buf[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += need + 1;
  }
  return -1;
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Where JSON text stops being JSON (RFC 8259 grammar), or where nesting passes `maxDepth`; -1
 * when neither. Run only after JSON.parse has failed or the depth check has tripped: V8's parse
 * messages omit the position for some errors and quote the body in others, so neither is used.
 * Iterative (an explicit stack), so a hostile nesting depth cannot exhaust the call stack.
 */
export function locateJsonError(text: string, maxDepth = Infinity): { offset: number; reason: string } | undefined {
  const n = text.length;
  let i = 0;
  const stack: ('[' | '{')[] = [];
  const ws = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      i++;
    }
  };
  const fail = (reason?: string): { offset: number; reason: string } => (i >= n ? { offset: n, reason: 'JSON ends early' } : { offset: i, reason: reason ?? 'unexpected character' });
  const string = (): boolean => {
    i++; // opening quote
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 0x5c) {
        const e = text.charAt(i + 1);
        if (e === 'u') {
          if (!/^[0-9A-Fa-f]{4}$/.test(text.slice(i + 2, i + 6))) {
            i += 2;
            while (i < n && /[0-9A-Fa-f]/.test(text.charAt(i))) i++;
            return false;
          }
          i += 6;
        } else if (e !== '' && '"\\/bfnrt'.includes(e)) i += 2;
        else {
          i++;
          return false;
        }
      } else i++;
    }
    return false;
  };
  const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  // value → after value → (',' → value | close) …
  let expectValue = true;
  ws();
  for (;;) {
    if (expectValue) {
      ws();
      const ch = text.charAt(i);
      if (ch === '{' || ch === '[') {
        if (stack.length >= maxDepth) return { offset: i, reason: `nested deeper than ${maxDepth} levels` };
        stack.push(ch);
        i++;
        ws();
        const close = ch === '{' ? '}' : ']';
        if (text.charAt(i) === close) {
          stack.pop();
          i++;
          expectValue = false;
          continue;
        }
        if (ch === '{') {
          if (text.charAt(i) !== '"' || !string()) return fail();
          ws();
          if (text.charAt(i) !== ':') return fail();
          i++;
        }
        continue;
      }
      if (ch === '"') {
        if (!string()) return fail();
      } else if (text.startsWith('true', i)) i += 4;
      else if (text.startsWith('false', i)) i += 5;
      else if (text.startsWith('null', i)) i += 4;
      else {
        NUMBER.lastIndex = i;
        const m = NUMBER.exec(text);
        if (m === null) return fail();
        i += m[0].length;
      }
      expectValue = false;
      continue;
    }
    ws();
    const top = stack[stack.length - 1];
    if (top === undefined) return i >= n ? undefined : fail();
    const ch = text.charAt(i);
    if (ch === ',') {
      i++;
      if (top === '{') {
        ws();
        if (text.charAt(i) !== '"' || !string()) return fail();
        ws();
        if (text.charAt(i) !== ':') return fail();
        i++;
      }
      expectValue = true;
    } else if ((top === '{' && ch === '}') || (top === '[' && ch === ']')) {
      stack.pop();
      i++;
    } else return fail();
  }
}

/** Nesting depth of a parsed value, counted up to `limit + 1` (iterative, stops early). */
function exceedsDepth(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, d] = top;
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, d + 1]);
  }
  return false;
}

export type ReadResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly problem: BodyProblem };

function textProblem(text: string, located: { offset: number; reason: string }): BodyProblem {
  const { line, column } = lineColumn(text, located.offset);
  return { reason: located.reason, at: `line ${line}, column ${column} (character ${located.offset})`, line, column };
}

/** Decodes and parses a body; a failure says why and where, never what the body contained. */
export function readJsonBody(buf: Buffer): ReadResult {
  let text: string;
  try {
    text = UTF8.decode(buf);
  } catch {
    const at = firstBadUtf8(buf);
    return { ok: false, problem: { reason: 'not UTF-8 (RFC 8259 §8.1)', at: `byte ${at}` } };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    const located = locateJsonError(text) ?? { offset: 0, reason: 'invalid JSON' };
    return { ok: false, problem: textProblem(text, located) };
  }
  if (exceedsDepth(value, MAX_DEPTH)) {
    const located = locateJsonError(text, MAX_DEPTH) ?? { offset: 0, reason: `nested deeper than ${MAX_DEPTH} levels` };
    return { ok: false, problem: textProblem(text, located) };
  }
  return { ok: true, value };
}

// ---------------------------------------------------------------------------------------------
// Collecting the texts.

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

class Collector {
  readonly out: PromptText[] = [];
  /** Adds holder[key] when it is a string. */
  add(holder: Obj | unknown[], key: string | number, pointer: string, source: TextSource): void {
    const v = (holder as Record<string | number, unknown>)[key];
    if (typeof v === 'string') this.out.push({ pointer, source, text: v, holder, key });
  }
}

function openaiSource(role: unknown): TextSource {
  switch (role) {
    case 'user':
      return 'user';
    case 'tool':
    case 'function':
      return 'tool';
    case 'system':
    case 'developer':
      return 'system';
    case 'assistant':
      return 'assistant';
    default:
      return 'other';
  }
}

function anthropicSource(role: unknown): TextSource {
  return role === 'user' ? 'user' : role === 'assistant' ? 'assistant' : 'other';
}

function openai(body: Obj, c: Collector): void {
  const messages = body.messages;
  if (Array.isArray(messages)) {
    messages.forEach((m, i) => {
      if (!isObject(m)) return;
      const source = openaiSource(m.role);
      const base = `/messages/${i}`;
      const content = m.content;
      if (typeof content === 'string') c.add(m, 'content', `${base}/content`, source);
      else if (Array.isArray(content)) {
        content.forEach((part, j) => {
          if (isObject(part) && part.type === 'text') c.add(part, 'text', `${base}/content/${j}/text`, source);
        });
      }
      if (Array.isArray(m.tool_calls)) {
        m.tool_calls.forEach((call, k) => {
          if (isObject(call) && isObject(call.function)) c.add(call.function, 'arguments', `${base}/tool_calls/${k}/function/arguments`, source);
        });
      }
    });
  }
  const input = body.input;
  if (typeof input === 'string') c.add(body, 'input', '/input', 'user');
  else if (Array.isArray(input)) input.forEach((_, i) => c.add(input, i, `/input/${i}`, 'user'));
}

function anthropicBlocks(blocks: unknown[], base: string, source: TextSource, c: Collector, nested = false): void {
  blocks.forEach((b, j) => {
    if (!isObject(b)) return;
    const at = `${base}/${j}`;
    if (b.type === 'text') c.add(b, 'text', `${at}/text`, source);
    else if (b.type === 'tool_result' && !nested) {
      const content = b.content;
      if (typeof content === 'string') c.add(b, 'content', `${at}/content`, 'tool');
      else if (Array.isArray(content)) anthropicBlocks(content, `${at}/content`, 'tool', c, true);
    } else if (b.type === 'document' && isObject(b.source) && b.source.type === 'text') c.add(b.source, 'data', `${at}/source/data`, source);
  });
}

function anthropic(body: Obj, c: Collector): void {
  const system = body.system;
  if (typeof system === 'string') c.add(body, 'system', '/system', 'system');
  else if (Array.isArray(system)) anthropicBlocks(system, '/system', 'system', c);
  const messages = body.messages;
  if (!Array.isArray(messages)) return;
  messages.forEach((m, i) => {
    if (!isObject(m)) return;
    const source = anthropicSource(m.role);
    const content = m.content;
    if (typeof content === 'string') c.add(m, 'content', `/messages/${i}/content`, source);
    else if (Array.isArray(content)) anthropicBlocks(content, `/messages/${i}/content`, source, c);
  });
}

/** Every string of a prompt API's variables, depth-first in document order (iterative). */
function promptVariables(body: unknown, c: Collector): void {
  const stack: { holder: Obj | unknown[]; key: string | number; pointer: string }[] = [];
  const push = (holder: Obj | unknown[], pointer: string): void => {
    const entries: [string | number, string][] = Array.isArray(holder) ? holder.map((_, i) => [i, String(i)]) : Object.keys(holder).map((k) => [k, escapePointer(k)]);
    for (let k = entries.length - 1; k >= 0; k--) {
      const [key, token] = entries[k] as [string | number, string];
      stack.push({ holder, key, pointer: `${pointer}/${token}` });
    }
  };
  if (Array.isArray(body) || isObject(body)) push(body, '');
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const v = (top.holder as Record<string | number, unknown>)[top.key];
    if (typeof v === 'string') c.add(top.holder, top.key, top.pointer, 'user');
    else if (Array.isArray(v) || isObject(v)) push(v, top.pointer);
  }
}

/** The prompt texts of a parsed body, in document order. */
export function collectTexts(body: unknown, protocol: AiProtocol): PromptText[] {
  const c = new Collector();
  if (protocol === 'prompt') promptVariables(body, c);
  else if (isObject(body)) {
    if (protocol === 'openai') openai(body, c);
    else anthropic(body, c);
  }
  return c.out;
}
