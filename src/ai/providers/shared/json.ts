/**
 * Readers for provider JSON, which arrives as `unknown`: a missing or mistyped field reads as
 * absent (proto3 JSON and Anthropic's `null` usage fields leave values out), never guessed.
 * Shared by every adapter's request, response, stream and error mapping.
 */

export function isRecord(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The value when it is a JSON object, else undefined. */
export function asRecord(v: unknown): Readonly<Record<string, unknown>> | undefined {
  return isRecord(v) ? v : undefined;
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A finite number, or undefined. */
export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** The value when it is an array, else an empty one. */
export function list(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? (v as unknown[]) : [];
}

/** JSON.parse that answers undefined instead of throwing. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
