/**
 * The AI client protocols' own error objects, carrying Pinpoint's members. On an AI route the
 * official SDKs only understand their provider's envelope (they read `error.message`, choose the
 * error class from the status, and the OpenAI SDK throws on a stream `data:` object with an
 * `error` key), so the gateway answers in that shape — with the same code, layer, policy and
 * request id a problem+json body has.
 *
 * - OpenAI: `{"error":{"message","type","param","code"}}` (API reference, "Error codes").
 * - Anthropic: `{"type":"error","error":{"type","message"},"request_id"}` with `error.type` from
 *   Anthropic's documented set (docs "Errors": invalid_request_error, authentication_error,
 *   billing_error, permission_error, not_found_error, request_too_large, rate_limit_error,
 *   api_error, timeout_error, overloaded_error).
 */
import type { ProblemBody } from './problem.ts';

export type Envelope = 'problem' | 'openai' | 'anthropic';

/** OpenAI `error.type` for a status (the values OpenAI itself uses). */
export function openaiType(status: number, code: string): string {
  if (status === 429) return code.includes('BUDGET') ? 'insufficient_quota' : 'rate_limit_error';
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** Anthropic `error.type` for a status (their enum only: clients switch on it). */
export function anthropicType(status: number): string {
  switch (status) {
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 504:
      return 'timeout_error';
    case 503:
    case 529:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/**
 * The header each client protocol's SDK reads the request id from: the OpenAI SDK reads
 * `x-request-id` (APIError.requestID, `_request_id`), the Anthropic SDK `request-id`. Sent with
 * the gateway's request id beside the configured request-id header (which may have another name),
 * so `err.requestID` in the client names the gateway's request, as the body's `request_id` does.
 */
export function requestIdHeaders(envelope: Envelope | undefined, requestId: string): Record<string, string> {
  if (envelope === 'openai') return { 'x-request-id': requestId };
  if (envelope === 'anthropic') return { 'request-id': requestId };
  return {};
}

function pinpointMembers(p: ProblemBody): Record<string, unknown> {
  return {
    layer: p.layer,
    policy: p.policy,
    request_id: p.request_id,
    retryable: p.retryable,
    docs: p.type,
    ...(p.remediation !== undefined ? { remediation: p.remediation } : {}),
    ...(p.evidence !== undefined ? { evidence: p.evidence } : {}),
  };
}

/**
 * The problem's members in the client protocol's error object. `evidence` is the decision's
 * evidence even in public mode (where the problem carries none): OpenAI's `param` is a member of
 * its protocol, not detail, and names only a field of the client's own request, so the SDK's
 * `err.param` says which field to fix whatever the errors mode.
 */
export function envelopeBody(envelope: 'openai' | 'anthropic', p: ProblemBody, evidence: ProblemBody['evidence'] = p.evidence): Record<string, unknown> {
  const message = p.detail ?? p.title;
  const param = evidence?.param;
  if (envelope === 'openai') {
    return {
      error: { message, type: openaiType(p.status, p.code), param: typeof param === 'string' ? param : null, code: p.code, ...pinpointMembers(p) },
    };
  }
  return { type: 'error', error: { type: anthropicType(p.status), message, code: p.code, ...pinpointMembers(p) }, request_id: p.request_id };
}

/** What the gateway knows about a provider's error, to attribute it. */
export interface ProviderErrorInfo {
  readonly status: number;
  readonly type: string | null;
  readonly code: string | null;
  readonly message: string;
  readonly param: string | null;
  readonly providerRequestId: string | null;
  /** Config id of the provider account and its type. */
  readonly provider: string;
  readonly providerType: string;
  readonly model: string;
  readonly requestId: string;
  readonly attempts: number;
  readonly policy: string;
  /** Config errors.type_base: the problem `type` is `<type_base>ai_provider_error`, as problemBody builds it. */
  readonly typeBase: string;
}

/**
 * A provider's error in the client protocol's envelope, with `layer: provider`: the provider's
 * status, type, message and request id are kept as the provider stated them, so the client sees
 * both who failed (the provider, not the gateway) and exactly what the provider said.
 */
export function providerErrorBody(envelope: Envelope, e: ProviderErrorInfo): Record<string, unknown> {
  const members = {
    layer: 'provider',
    policy: e.policy,
    request_id: e.requestId,
    provider: e.provider,
    provider_type: e.providerType,
    provider_status: e.status,
    provider_request_id: e.providerRequestId,
    model: e.model,
    attempts: e.attempts,
  };
  const message = `${e.provider} (${e.providerType}) answered ${e.status}: ${e.message}`;
  if (envelope === 'anthropic') {
    // Anthropic clients switch on error.type, so it stays in their enum; the provider's own type
    // is kept beside it.
    return { type: 'error', error: { type: anthropicType(e.status), message, code: 'AI_PROVIDER_ERROR', provider_error_type: e.type, provider_error_code: e.code, ...members }, request_id: e.requestId };
  }
  if (envelope === 'openai') {
    return { error: { message, type: e.type ?? openaiType(e.status, ''), param: e.param, code: e.code ?? 'AI_PROVIDER_ERROR', pinpoint_code: 'AI_PROVIDER_ERROR', ...members } };
  }
  return {
    type: `${e.typeBase}ai_provider_error`,
    title: 'The AI provider answered with an error',
    status: e.status,
    code: 'AI_PROVIDER_ERROR',
    detail: message,
    provider_error_type: e.type,
    provider_error_code: e.code,
    ...members,
  };
}
