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
import { asRecord, list, num, str } from '../shared/json.ts';
import { GOOGLE_RPC_HTTP_STATUS } from './wire.ts';
import { kindOfStatus, retryAfterMs, snippet } from '../shared/errors.ts';

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
  const numericCode = num(err['code']);
  const stringCode = str(err['code']);
  const statusName = str(err['status']);
  const status = httpStatus ?? numericCode ?? (statusName !== undefined ? GOOGLE_RPC_HTTP_STATUS[statusName] : undefined) ?? 500;

  let reason: string | undefined;
  let retryDelayMs: number | null = null;
  let perDayQuota = false;
  let field: string | undefined;
  for (const d of list(err['details'])) {
    const detail = asRecord(d);
    const type = detail ? str(detail['@type']) : undefined;
    if (!detail || type === undefined) continue;
    if (type.endsWith('google.rpc.ErrorInfo')) reason ??= str(detail['reason']);
    else if (type.endsWith('google.rpc.RetryInfo')) retryDelayMs ??= parseDuration(detail['retryDelay']);
    else if (type.endsWith('google.rpc.QuotaFailure')) perDayQuota ||= list(detail['violations']).some(isPerDayViolation);
    else if (type.endsWith('google.rpc.BadRequest')) field ??= str(asRecord(list(detail['fieldViolations'])[0])?.['field']);
  }

  const message = str(err['message']);
  return {
    status,
    kind: kindOf(status, statusName, reason, perDayQuota),
    type: statusName ?? stringCode ?? null,
    code: reason ?? null,
    message: message !== undefined && message !== '' ? message : bodyMessage(rawText, status),
    // Gemini documents no request-id response header.
    requestId: null,
    retryAfterMs: retryDelayMs ?? retryAfterMs(headers),
    param: field ?? null,
  };
}

/** A stream event that is not JSON or not an object (after a 200, so no HTTP status of its own). */
export function foreignStreamError(data: string): ProviderError {
  // 502: the upstream sent something that is not its own format.
  return { status: 502, kind: 'other', type: null, code: null, message: bodyMessage(data, 502), requestId: null, retryAfterMs: null, param: null };
}

function foreignError(status: number, headers: Readonly<Record<string, string>>, bodyText: string): ProviderError {
  return {
    status,
    kind: kindOf(status, undefined, undefined, false),
    type: null,
    code: null,
    message: bodyMessage(bodyText, status),
    requestId: null,
    retryAfterMs: retryAfterMs(headers),
    param: null,
  };
}

/** The start of a body that is not Gemini's error format, as the message. */
function bodyMessage(text: string, status: number): string {
  const s = text.trim();
  return s === '' ? `HTTP ${status} with an empty body` : snippet(s);
}

/**
 * Status (and what the details say) → kind. Gemini answers an invalid or expired API key with 400
 * INVALID_ARGUMENT + ErrorInfo API_KEY_INVALID (not 401), and an unsupported region or missing
 * billing with 400 FAILED_PRECONDITION. A 429 whose QuotaFailure names a per-day quota
 * (quotaId …PerDay…) does not clear until the day's quota resets: that is `quota`, not a throttle.
 */
function kindOf(status: number, statusName: string | undefined, reason: string | undefined, perDayQuota: boolean): ProviderErrorKind {
  if (status === 400 && reason === 'API_KEY_INVALID') return 'auth';
  if (status === 400 && statusName === 'FAILED_PRECONDITION') return 'permission';
  if (status === 429 && perDayQuota) return 'quota';
  return kindOfStatus(status);
}

function isPerDayViolation(v: unknown): boolean {
  const quotaId = str(asRecord(v)?.['quotaId']);
  return quotaId !== undefined && /PerDay/i.test(quotaId);
}

/** A protobuf Duration in JSON: decimal seconds with an `s` suffix ("30s", "1.5s", "58.934310785s"). Rounded up: never retry early. */
export function parseDuration(v: unknown): number | null {
  const m = /^(\d+(?:\.\d+)?)s$/.exec(str(v) ?? '');
  return m ? Math.ceil(Number(m[1]) * 1000) : null;
}
