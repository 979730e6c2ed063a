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
import { MASK_KINDS, maskText } from '../policies/ai-guardrails/mask.ts';
import { CATALOG } from './catalog.ts';
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
  /** The errors mode of this exchange (consumer, route, global): public unless detailed. */
  readonly detailed: boolean;
  /**
   * Values the provider's text must never carry to the client: the provider account's keys and
   * the values of its configured headers (organisation and project ids). Stripped from the
   * detailed message, and a provider `type`/`code` holding one is dropped.
   */
  readonly secrets: readonly string[];
}

/** The catalog title of AI_PROVIDER_ERROR: all public mode says in words. */
const PROVIDER_ERROR_TITLE = CATALOG.AI_PROVIDER_ERROR.title;

/** What a stripped configured secret becomes: the masking module's label for a credential. */
const SECRET_LABEL = '[SECRET]';

/**
 * A provider's machine-readable `type`/`code` the client may see in public mode: a short
 * identifier (`invalid_api_key`, `rate_limit_exceeded`, `RESOURCE_EXHAUSTED`, `429`) that is not
 * a credential. A value longer than a word, with other characters, mixing letters and digits at
 * token length, holding a configured secret, or flagged by the masking detectors is free text or
 * may be a secret, and is left out (null).
 */
function machineToken(v: string | null, secrets: readonly string[]): string | null {
  if (v === null || !/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,47}$/.test(v)) return null;
  if (v.length >= 16 && /[0-9]/.test(v) && /[A-Za-z]/.test(v)) return null;
  for (const s of secrets) if (s !== '' && v.includes(s)) return null;
  return maskText(v, ['secret']).text === v ? v : null;
}

/**
 * Provider text as detailed mode shows it: the configured secrets stripped (longest first, so a
 * key containing another goes whole), then the call log's masking (e-mail addresses, phone and
 * card numbers, IBANs, credentials: providers quote keys and prompts back), so the client is
 * never shown more than the call log keeps.
 */
export function maskProviderText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of [...secrets].filter((v) => v !== '').sort((x, y) => y.length - x.length)) out = out.split(s).join(SECRET_LABEL);
  return maskText(out, MASK_KINDS).text;
}

/**
 * A provider's error in the client protocol's envelope, with `layer: provider` and the provider's
 * status.
 *
 * Public mode (the default, for clients on the internet): the catalog title as the message, the
 * provider's `type`/`code` only when they are short machine tokens ({@link machineToken}), and no
 * provider config id or type, provider request id, upstream model or provider text — a provider
 * message can quote the gateway's own provider key, internal hosts and organisation ids, and the
 * gateway cannot tell which part is safe. The gateway's request id finds the full story in the
 * call log.
 *
 * Detailed mode: who failed and what the provider said, its text masked as the call log masks it
 * and with the configured secrets stripped ({@link maskProviderText}).
 */
export function providerErrorBody(envelope: Envelope, e: ProviderErrorInfo): Record<string, unknown> {
  if (!e.detailed) {
    // `model` is the name the client asked for (the configured model or alias), never the
    // provider's model behind it; `policy` is `model:<that name>`. `param` names a field of the
    // client's own request (as envelopeBody keeps it in public mode), only when it is a field name.
    const param = e.param !== null && /^[A-Za-z0-9_.[\]-]{1,64}$/.test(e.param) ? e.param : null;
    const members = { layer: 'provider', policy: e.policy, request_id: e.requestId, provider_status: e.status, model: e.model, attempts: e.attempts };
    return providerEnvelope(envelope, e, { message: PROVIDER_ERROR_TITLE, detail: undefined, type: machineToken(e.type, e.secrets), code: machineToken(e.code, e.secrets), param, members });
  }
  const clean = (v: string | null): string | null => (v === null ? null : maskProviderText(v, e.secrets));
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
  const message = `${e.provider} (${e.providerType}) answered ${e.status}: ${maskProviderText(e.message, e.secrets)}`;
  return providerEnvelope(envelope, e, { message, detail: message, type: clean(e.type), code: clean(e.code), param: e.param, members });
}

interface ProviderErrorParts {
  readonly message: string;
  /** The problem+json `detail`; undefined leaves it out. */
  readonly detail: string | undefined;
  readonly type: string | null;
  readonly code: string | null;
  readonly param: string | null;
  readonly members: Readonly<Record<string, unknown>>;
}

/** One shape per client protocol for both modes; what goes in is decided by providerErrorBody. */
function providerEnvelope(envelope: Envelope, e: ProviderErrorInfo, p: ProviderErrorParts): Record<string, unknown> {
  if (envelope === 'anthropic') {
    // Anthropic clients switch on error.type, so it stays in their enum; the provider's own type
    // is kept beside it.
    return { type: 'error', error: { type: anthropicType(e.status), message: p.message, code: 'AI_PROVIDER_ERROR', provider_error_type: p.type, provider_error_code: p.code, ...p.members }, request_id: e.requestId };
  }
  if (envelope === 'openai') {
    return { error: { message: p.message, type: p.type ?? openaiType(e.status, ''), param: p.param, code: p.code ?? 'AI_PROVIDER_ERROR', pinpoint_code: 'AI_PROVIDER_ERROR', ...p.members } };
  }
  return {
    type: `${e.typeBase}ai_provider_error`,
    title: PROVIDER_ERROR_TITLE,
    status: e.status,
    code: 'AI_PROVIDER_ERROR',
    ...(p.detail === undefined ? {} : { detail: p.detail }),
    provider_error_type: p.type,
    provider_error_code: p.code,
    ...p.members,
  };
}
