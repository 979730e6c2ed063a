/**
 * Server-Sent Events, both ways. Parsing uses `eventsource-parser` (the WHATWG HTML "event stream
 * interpretation" algorithm, incl. CR/LF variants, multi-line data and comments); writing is the
 * two line shapes providers use.
 */
import { StringDecoder } from 'node:string_decoder';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface SseEvent {
  readonly event?: string | undefined;
  readonly data: string;
}

/**
 * An incremental SSE reader for bytes off a socket: `push` takes raw chunks (UTF-8 is decoded
 * across chunk boundaries) and returns the complete events they finished.
 */
export class SseReader {
  readonly #decoder = new StringDecoder('utf8');
  #out: SseEvent[] = [];
  readonly #parser = createParser({
    onEvent: (ev: EventSourceMessage) => {
      this.#out.push(ev.event === undefined ? { data: ev.data } : { event: ev.event, data: ev.data });
    },
  });

  push(chunk: Buffer | string): SseEvent[] {
    this.#parser.feed(typeof chunk === 'string' ? chunk : this.#decoder.write(chunk));
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /** The stream ended: anything complete is returned; an unterminated last event is dropped, as the spec says. */
  end(): SseEvent[] {
    this.#parser.feed(this.#decoder.end());
    const out = this.#out;
    this.#out = [];
    return out;
  }
}

/** Every event of a whole SSE text (fixtures, tests). */
export function parseSse(text: string): SseEvent[] {
  const r = new SseReader();
  return [...r.push(text), ...r.end()];
}

/** `data: <json>\n\n` — OpenAI's unnamed events (and Gemini's alt=sse). */
export function sseData(data: string): string {
  return `data: ${data}\n\n`;
}

/** `event: <name>\ndata: <json>\n\n` — Anthropic's named events. */
export function sseEvent(event: string, data: string): string {
  return `event: ${event}\ndata: ${data}\n\n`;
}
