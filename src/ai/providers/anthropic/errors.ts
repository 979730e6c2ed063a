/**
 * Anthropic error responses → ProviderError.
 *
 * Facts relied on (Anthropic API errors page; SDK core/error.ts and resources/shared.ts):
 * - Envelope: `{"type":"error","error":{"type","message","details"?:{"error_code"}},"request_id"}`.
 * - Types by status: 400 invalid_request_error (also used for other 4xx), 401 authentication_error,
 *   402 billing_error, 403 permission_error, 404 not_found_error, 409 conflict_error,
 *   413 request_too_large, 429 rate_limit_error, 500 api_error, 504 timeout_error,
 *   529 overloaded_error.
 * - Some 429s are spend limits, not rate limits: error_code contract_spend_limit_reached and
 *   enforced_spend_limit_reached (SDK ContractSpendLimitReachedError, EnforcedSpendLimitReachedError);
 *   retrying does not help, so they are 'quota'.
 * - The request id is in the `request-id` header; the body repeats it as `request_id`.
 * - A stream can carry `event: error` with the same envelope after a 200 (streaming docs).
 * - Retry delay: `retry-after-ms`, then `retry-after` in seconds or as an HTTP date (the SDK's
 *   retry logic reads them in that order).
 */
import type { ProviderError, ProviderErrorKind } from '../../types.ts';
import { isRecord, parseJson, str } from '../shared/json.ts';
import { kindOfStatus, retryAfterMs, snippet } from '../shared/errors.ts';

/** The HTTP status each error type is sent with; used for errors that arrive inside a stream. */
const STATUS_OF_TYPE: Readonly<Record<string, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  conflict_error: 409,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

const KIND_OF_TYPE: Readonly<Record<string, ProviderErrorKind>> = {
  authentication_error: 'auth',
  billing_error: 'quota',
  permission_error: 'permission',
  not_found_error: 'not_found',
  request_too_large: 'too_large',
  rate_limit_error: 'rate_limited',
  api_error: 'server',
  timeout_error: 'timeout',
  overloaded_error: 'overloaded',
};

const SPEND_LIMIT_CODES: ReadonlySet<string> = new Set(['contract_spend_limit_reached', 'enforced_spend_limit_reached']);

/** Status an in-stream error of this type stands for; an unknown type counts as a server error. */
function statusOfType(type: string | null): number {
  return (type !== null ? STATUS_OF_TYPE[type] : undefined) ?? 500;
}

/**
 * The type decides where it is specific; invalid_request_error is Anthropic's catch-all for 4xx,
 * so there (and for types we do not know) the status decides.
 */
function kindOf(status: number, type: string | null, code: string | null): ProviderErrorKind {
  if (code !== null && SPEND_LIMIT_CODES.has(code)) return 'quota';
  const byType = type !== null ? KIND_OF_TYPE[type] : undefined;
  return byType ?? kindOfStatus(status);
}

/** The envelope's parts, or undefined when `body` is not Anthropic's error envelope. */
function readEnvelope(body: unknown): { type: string; message: string; code: string | null; requestId: string | null } | undefined {
  if (!isRecord(body) || !isRecord(body['error'])) return undefined;
  const e = body['error'];
  const type = str(e['type']);
  const message = str(e['message']);
  if (type === undefined || message === undefined) return undefined;
  const details = e['details'];
  return {
    type,
    message,
    code: isRecord(details) ? (str(details['error_code']) ?? null) : null,
    requestId: str(body['request_id']) ?? null,
  };
}

/** A non-2xx Messages response → ProviderError. `headers` have lower-case names. */
export function anthropicError(status: number, headers: Readonly<Record<string, string>>, bodyText: string): ProviderError {
  const env = readEnvelope(parseJson(bodyText));
  const headerId = headers['request-id'];
  const requestId = headerId !== undefined && headerId !== '' ? headerId : (env?.requestId ?? null);
  const type = env?.type ?? null;
  const code = env?.code ?? null;
  const trimmed = bodyText.trim();
  return {
    status,
    kind: kindOf(status, type, code),
    type,
    code,
    message:
      env?.message ??
      (trimmed === ''
        ? `Anthropic answered HTTP ${status} with an empty body`
        : `Anthropic answered HTTP ${status} with a body that is not its error envelope: ${snippet(trimmed)}`),
    requestId,
    retryAfterMs: retryAfterMs(headers),
    param: null,
  };
}

/** The `data` of an `event: error` stream event → ProviderError, its status taken from the type. */
export function anthropicStreamError(data: string): ProviderError {
  const env = readEnvelope(parseJson(data));
  const type = env?.type ?? null;
  const code = env?.code ?? null;
  const status = statusOfType(type);
  return {
    status,
    kind: kindOf(status, type, code),
    type,
    code,
    message: env?.message ?? `Anthropic sent a stream error event that is not its error envelope: ${snippet(data.trim())}`,
    requestId: env?.requestId ?? null,
    retryAfterMs: null,
    param: null,
  };
}

/** An event whose data is not JSON: the stream broke the protocol, so it ends as a server error. */
export function malformedEvent(event: string | undefined, data: string): ProviderError {
  return {
    status: 502,
    kind: 'server',
    type: null,
    code: null,
    message: `Anthropic sent a ${event ?? 'unnamed'} stream event whose data is not JSON: ${snippet(data.trim())}`,
    requestId: null,
    retryAfterMs: null,
    param: null,
  };
}
