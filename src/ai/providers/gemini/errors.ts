/**
 * Gemini API errors → ProviderError.
 *
 * Gemini answers errors with a google.rpc.Status envelope
 * (https://ai.google.dev/gemini-api/docs/troubleshooting, https://cloud.google.com/apis/design/errors):
 * `{"error":{"code":<http status>,"message":…,"status":"<canonical code>","details":[…]}}`, where
 * `details` may hold an ErrorInfo (`reason`, e.g. API_KEY_INVALID), a RetryInfo (`retryDelay`, a
 * protobuf Duration such as "30s" or "1.5s"), a QuotaFailure (which quota ran out) and a BadRequest
 * (`fieldViolations`). The Interactions API uses `{"error":{"code":"invalid_request","message":…}}`.
 * Nothing is invented: what the body does not say is null.
 */
import type { ProviderError, ProviderErrorKind } from '../../types.ts';
import { asList, asNumber, asRecord, asString } from './response.ts';
import { GOOGLE_RPC_HTTP_STATUS } from './wire.ts';

/** How much of a body that is not Gemini's error format is kept as the message. */
const FOREIGN_BODY_CHARS = 200;

/** A non-2xx response from Gemini → its error as it stated it. */
export function geminiError(status: number, headers: Readonly<Record<string, string>>, bodyText: string): ProviderError {
  let json: unknown;
  try {
    json = JSON.parse(bodyText);
  } catch {
    return foreignError(status, headers, bodyText);
  }
  // streamGenerateContent without alt=sse answers with a JSON array, errors included: `[{"error":…}]`.
  const envelope = asRecord(Array.isArray(json) ? (json as unknown[])[0] : json);
  if (!envelope || asRecord(envelope['error']) === undefined) return foreignError(status, headers, bodyText);
  return errorFromStatusObject(envelope['error'], status, headers, bodyText);
}

/**
 * The `error` member of an envelope (google.rpc.Status or the Interactions shape). `httpStatus` is
 * the response's status; inside a stream (after a 200) it is null and the status comes from the
 * envelope's numeric code, else from the canonical code name.
 */
export function errorFromStatusObject(
  value: unknown,
  httpStatus: number | null,
  headers: Readonly<Record<string, string>>,
  rawText: string,
): ProviderError {
  const err = asRecord(value);
  if (!err) return httpStatus === null ? foreignStreamError(rawText) : foreignError(httpStatus, headers, rawText);
  const numericCode = asNumber(err['code']);
  const stringCode = asString(err['code']);
  const statusName = asString(err['status']);
  const status = httpStatus ?? numericCode ?? (statusName !== undefined ? GOOGLE_RPC_HTTP_STATUS[statusName] : undefined) ?? 500;

  let reason: string | undefined;
  let retryDelayMs: number | null = null;
  let perDayQuota = false;
  let field: string | undefined;
  for (const d of asList(err['details'])) {
    const detail = asRecord(d);
    const type = detail ? asString(detail['@type']) : undefined;
    if (!detail || type === undefined) continue;
    if (type.endsWith('google.rpc.ErrorInfo')) reason ??= asString(detail['reason']);
    else if (type.endsWith('google.rpc.RetryInfo')) retryDelayMs ??= parseDuration(detail['retryDelay']);
    else if (type.endsWith('google.rpc.QuotaFailure')) perDayQuota ||= asList(detail['violations']).some(isPerDayViolation);
    else if (type.endsWith('google.rpc.BadRequest')) field ??= asString(asRecord(asList(detail['fieldViolations'])[0])?.['field']);
  }

  const message = asString(err['message']);
  return {
    status,
    kind: kindOf(status, statusName, reason, perDayQuota),
    type: statusName ?? stringCode ?? null,
    code: reason ?? null,
    message: message !== undefined && message !== '' ? message : snippet(rawText, status),
    // Gemini documents no request-id response header.
    requestId: null,
    retryAfterMs: retryDelayMs ?? retryAfterHeader(headers),
    param: field ?? null,
  };
}

/** A stream event that is not JSON or not an object (after a 200, so no HTTP status of its own). */
export function foreignStreamError(data: string): ProviderError {
  // 502: the upstream sent something that is not its own format.
  return { status: 502, kind: 'other', type: null, code: null, message: snippet(data, 502), requestId: null, retryAfterMs: null, param: null };
}

function foreignError(status: number, headers: Readonly<Record<string, string>>, bodyText: string): ProviderError {
  return {
    status,
    kind: kindOf(status, undefined, undefined, false),
    type: null,
    code: null,
    message: snippet(bodyText, status),
    requestId: null,
    retryAfterMs: retryAfterHeader(headers),
    param: null,
  };
}

function snippet(text: string, status: number): string {
  const s = text.trim().slice(0, FOREIGN_BODY_CHARS);
  return s === '' ? `HTTP ${status} with an empty body` : s;
}

/**
 * Status (and what the details say) → kind. Gemini answers an invalid or expired API key with 400
 * INVALID_ARGUMENT + ErrorInfo API_KEY_INVALID (not 401), and an unsupported region or missing
 * billing with 400 FAILED_PRECONDITION. A 429 whose QuotaFailure names a per-day quota
 * (quotaId …PerDay…) does not clear until the day's quota resets: that is `quota`, not a throttle.
 */
function kindOf(status: number, statusName: string | undefined, reason: string | undefined, perDayQuota: boolean): ProviderErrorKind {
  switch (status) {
    case 400:
      if (reason === 'API_KEY_INVALID') return 'auth';
      if (statusName === 'FAILED_PRECONDITION') return 'permission';
      return 'bad_request';
    case 401:
      return 'auth';
    case 403:
      return 'permission';
    case 404:
      return 'not_found';
    case 408:
      return 'timeout';
    case 413:
      return 'too_large';
    case 429:
      return perDayQuota ? 'quota' : 'rate_limited';
    case 503:
      return 'overloaded';
    case 504:
      return 'timeout';
    default:
      return status >= 500 ? 'server' : 'other';
  }
}

function isPerDayViolation(v: unknown): boolean {
  const quotaId = asString(asRecord(v)?.['quotaId']);
  return quotaId !== undefined && /PerDay/i.test(quotaId);
}

/** A protobuf Duration in JSON: decimal seconds with an `s` suffix ("30s", "1.5s", "58.934310785s"). Rounded up: never retry early. */
export function parseDuration(v: unknown): number | null {
  const m = /^(\d+(?:\.\d+)?)s$/.exec(asString(v) ?? '');
  return m ? Math.ceil(Number(m[1]) * 1000) : null;
}

/**
 * Retry-After in delay-seconds (RFC 9110 §10.2.3). The HTTP-date form would need the clock, which
 * adapters do not read; Gemini puts its delay in RetryInfo anyway.
 */
function retryAfterHeader(headers: Readonly<Record<string, string>>): number | null {
  const v = headers['retry-after']?.trim();
  return v !== undefined && /^\d+$/.test(v) ? Number(v) * 1000 : null;
}
