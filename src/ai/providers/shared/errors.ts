/**
 * What every provider's error parser shares: the kind an HTTP status stands for when the body says
 * nothing more precise, and the wait a provider asks for. Each adapter refines the kind from its
 * own error types (Anthropic's `overloaded_error`, OpenAI's `insufficient_quota`…).
 */
import type { ProviderErrorKind } from '../../types.ts';

/** The kind by HTTP status alone (RFC 9110 §15; 529 is Anthropic's "overloaded"). */
export function kindOfStatus(status: number): ProviderErrorKind {
  switch (status) {
    case 400:
    case 422:
      return 'bad_request';
    case 401:
      return 'auth';
    // Payment Required: out of credit (Anthropic billing_error, hosted OpenAI-compatible APIs).
    case 402:
      return 'quota';
    case 403:
      return 'permission';
    case 404:
      return 'not_found';
    case 408:
    case 504:
      return 'timeout';
    case 413:
      return 'too_large';
    case 429:
      return 'rate_limited';
    case 503:
    case 529:
      return 'overloaded';
    default:
      return status >= 500 && status <= 599 ? 'server' : 'other';
  }
}

/**
 * Milliseconds to wait, from `retry-after-ms` (OpenAI and Anthropic send it; their SDKs read it
 * first) or `retry-after` (RFC 9110 §10.2.3: seconds or an HTTP date); null when neither is usable.
 */
export function retryAfterMs(headers: Readonly<Record<string, string>>): number | null {
  const ms = headers['retry-after-ms']?.trim();
  if (ms !== undefined && ms !== '') {
    const v = Number(ms);
    if (Number.isFinite(v) && v >= 0) return v;
  }
  const ra = headers['retry-after']?.trim();
  if (ra === undefined || ra === '') return null;
  if (/^\d+(\.\d+)?$/.test(ra)) return Math.round(Number(ra) * 1000);
  // An HTTP date. Adapters read no clock, so the delay is measured against the response's own
  // `Date` header (the clock that set the retry date).
  const at = Date.parse(ra);
  const now = Date.parse(headers['date'] ?? '');
  if (Number.isNaN(at) || Number.isNaN(now)) return null;
  return Math.max(0, at - now);
}

/** The start of a body for an error message: enough to recognise it, never a whole page. */
export function snippet(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
