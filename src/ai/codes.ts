/**
 * Catalog codes of the AI gateway core (model routing, request validation, providers). Merged into
 * the one catalog in src/errors/catalog.ts. On AI routes these reach the client inside the client
 * protocol's own error envelope (src/ai/envelopes.ts), with the same code, layer and policy.
 */
import type { CatalogEntry } from '../errors/entry.ts';

export const AI_CODES = {
  AI_REQUEST_INVALID: {
    status: 400,
    title: 'The AI request does not follow the API format',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Fix {param}: {problem}.',
  },
  AI_PARAMETER_UNSUPPORTED: {
    status: 400,
    title: 'The chosen model cannot honour a request parameter',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: '{provider} accepts {param} only as {accepted}; change or remove it, or pick a model that supports it.',
  },
  AI_MODEL_NOT_FOUND: {
    status: 404,
    title: 'No model of that name is configured',
    layer: 'client',
    retryable: false,
    proxyStatus: 'destination_not_found',
    remediation: 'Use one of the models GET /v1/models lists ({available}).',
  },
  AI_MODEL_NOT_ALLOWED: {
    status: 403,
    title: 'This route does not offer the requested model',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Route {route} offers {allowed}; use one of them, or ask for {model} to be added to the route.',
  },
  AI_OPERATION_NOT_SUPPORTED: {
    status: 400,
    title: 'The model\u2019s provider does not offer this operation',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: '{provider} has no {operation} API; use a model served by a provider that has one.',
  },
  AI_PROVIDER_ERROR: {
    status: 502,
    title: 'The AI provider answered with an error',
    layer: 'provider',
    retryable: false,
    proxyStatus: 'destination_unavailable',
    // Sent with the provider's own status, not this one, and retryable or not by the provider's
    // error (src/ai/handler.ts fail()): the remediation says so.
    remediation:
      'The response carries the provider\u2019s own status (502 when its answer could not be read) and message; provider request id {provider_request_id}. Retry only when it has no `x-should-retry: false`, after its `retry-after` when present.',
  },
  AI_PROVIDER_UNREACHABLE: {
    status: 502,
    title: 'The AI provider could not be reached',
    layer: 'provider',
    retryable: true,
    proxyStatus: 'connection_refused',
    remediation: 'Provider {provider} at {target} failed with {reason}; check its base_url and that it is up.',
  },
  AI_PROVIDER_TIMEOUT: {
    status: 504,
    title: 'The AI provider did not answer in time',
    layer: 'provider',
    retryable: true,
    proxyStatus: 'http_response_timeout',
    remediation: 'Provider {provider} gave no answer within {timeout_ms} ms; retry, or raise ai.providers.{provider}.timeout_ms.',
  },
  AI_PROVIDER_BLOCKED: {
    status: 502,
    title: 'The provider address is not allowed',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'destination_ip_prohibited',
    remediation: 'Provider {provider} resolves to {address}, a private or metadata address; set allow_private_network on the provider if that is intended.',
  },
} as const satisfies Record<string, CatalogEntry>;
