/** Catalog codes of the `jwt` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const JWT_CODES = {
  JWT_MISSING: {
    status: 401,
    title: 'No JWT was sent',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'Send a JWT in {accepted}.',
  },
  JWT_MALFORMED: {
    status: 401,
    title: 'The JWT could not be parsed',
    layer: 'client',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The token is not a well-formed signed JWT ({reason}); send it as issued, in the compact form header.payload.signature with base64url parts (RFC 7515 §7.1).',
  },
  JWT_ALG_NOT_ALLOWED: {
    status: 401,
    title: 'The JWT is signed with an algorithm this route does not accept',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The token uses alg {alg}, but only {expected} is accepted here; have the issuer sign with an accepted algorithm. Unsigned tokens (alg none) are never accepted.',
  },
  JWT_KEY_UNKNOWN: {
    status: 401,
    title: 'The JWT names a signing key the gateway does not know',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'No key with kid {kid} is among the trusted keys ({key_source}); the token was signed by an issuer this route does not trust, or with a key not published yet.',
  },
  JWT_SIGNATURE_INVALID: {
    status: 401,
    title: 'The JWT signature does not verify',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'The signature does not match key {kid} ({alg}): the token was altered or signed with another key. Get a new token from the issuer.',
  },
  JWT_EXPIRED: {
    status: 401,
    title: 'The JWT has expired',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'The token expired at {exp}, {expired_seconds_ago} s ago (with {clock_skew_seconds} s of allowed clock skew); get a new or refreshed token.',
  },
  JWT_NOT_YET_VALID: {
    status: 401,
    title: 'The JWT is not valid yet',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'The token is valid from {nbf}, in {valid_in_seconds} s; wait until then, or check the issuer\u2019s clock.',
  },
  JWT_ISSUED_IN_FUTURE: {
    status: 401,
    title: 'The JWT claims to be issued in the future',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'The token\u2019s iat is {iat}, {seconds_ahead} s ahead of the gateway\u2019s clock (beyond {clock_skew_seconds} s of skew); the issuer\u2019s clock is wrong: fix its time synchronisation.',
  },
  JWT_AUDIENCE_MISMATCH: {
    status: 401,
    title: 'The JWT is meant for another audience',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'The token\u2019s aud is {got}, but this route accepts {expected}; request a token for this API\u2019s audience.',
  },
  JWT_ISSUER_MISMATCH: {
    status: 401,
    title: 'The JWT comes from an issuer this route does not trust',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'The token\u2019s iss is {got}, but this route trusts {expected}; get a token from a trusted issuer.',
  },
  JWT_CLAIM_MISSING: {
    status: 401,
    title: 'The JWT lacks a required claim',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation: 'The token has no {missing_claims} claim, which this route requires; request a token that includes it.',
  },
  JWT_JWKS_UNREACHABLE: {
    status: 503,
    title: 'The gateway could not fetch the keys to verify the JWT',
    layer: 'gateway',
    retryable: true,
    proxyStatus: 'proxy_internal_error',
    remediation:
      'Not the client\u2019s fault: fetching signing keys from {jwks_host} failed ({error}). Retry in {retry_after_seconds} s; operators: check that the JWKS endpoint is up and reachable from the gateway.',
  },
} as const satisfies Record<string, CatalogEntry>;
