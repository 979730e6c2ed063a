/** Catalog codes of the `ai-guardrails` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

/**
 * Status: every guardrail answers 400, as the providers do for the same refusals (OpenAI answers
 * 400 `context_length_exceeded` for an over-long prompt and Azure OpenAI 400 `content_filter` for
 * a filtered one), so an SDK raises the error it raises for a refused prompt, and nothing in the
 * answer invites a retry (retryable: false — the same prompt is refused again).
 *
 * Layer, as in the siblings: a body that is not JSON is the client's request being wrong (layer
 * client, like OPENAPI_BODY_NOT_JSON and AI_REQUEST_INVALID); a well-formed prompt refused by a
 * rule the operator configured is the gateway's policy at work (layer gateway, like
 * BODY_TOO_LARGE for a gateway limit and the *_FORBIDDEN codes of required-headers).
 */
export const AI_GUARDRAILS_CODES = {
  AI_GUARDRAILS_PROMPT_INJECTION: {
    status: 400,
    title: 'The prompt contains a prompt-injection phrasing this route refuses',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The {guardrail} guardrail matched {pattern} at {pointer} ("{excerpt}"). Remove or rephrase that text; instructions that try to override the system prompt are refused here.',
  },
  AI_GUARDRAILS_TOPIC_DENIED: {
    status: 400,
    title: 'The prompt touches a topic this route refuses',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'The {guardrail} guardrail matched topic {topic} at {pointer} ("{excerpt}"). Leave that topic out of the prompt.',
  },
  AI_GUARDRAILS_INPUT_TOO_LONG: {
    status: 400,
    title: 'The prompt is longer than this route accepts',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The prompt is about {estimated_tokens} tokens ({estimator}); the {guardrail} guardrail allows {limit}. Shorten the messages or drop earlier turns.',
  },
  AI_GUARDRAILS_BODY_NOT_JSON: {
    status: 400,
    title: 'The AI request body is not JSON',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_error',
    remediation: 'Send the body as UTF-8 JSON written by a JSON encoder; it does not parse: {reason} at {at}.',
  },
} as const satisfies Record<string, CatalogEntry>;
