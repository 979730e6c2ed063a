import { Type, type Static } from '@sinclair/typebox';

/** RFC 9110 §5.6.2 token: what a method name may be. */
const METHOD = Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", description: 'An HTTP method, e.g. POST.' });

/**
 * `origin` settings: for state-changing methods, the page that sent the request (the `Origin`
 * header, RFC 6454 §7, Fetch #origin-header) must be one of ours. A defence against cross-site request
 * forgery that needs no token (OWASP CSRF Cheat Sheet, "Verifying Origin with standard headers").
 */
export const OriginSchema = Type.Object(
  {
    allowed_origins: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description:
        'Origins allowed to send state-changing requests: exact (https://app.example.com) or patterns (https://*.example.com matches one DNS label; http://localhost:* matches any port). No default: every other origin is refused (fails closed). "*" and "null" are config errors.',
    }),
    methods: Type.Array(METHOD, {
      minItems: 1,
      default: ['POST', 'PUT', 'PATCH', 'DELETE'],
      description:
        'Methods the check applies to; others are skipped, except WebSocket handshakes (Upgrade: websocket), which are checked whatever their method: a cross-site page can open one with the user\'s cookies (RFC 6455 §10.2). Default: the unsafe methods (RFC 9110 §9.2.1). GET, HEAD and OPTIONS must not change state, and browsers omit Origin on same-origin GETs, so checking them would refuse normal navigation.',
    }),
    allow_referer_fallback: Type.Boolean({
      default: true,
      description:
        'When Origin is absent, check the origin of the Referer instead (OWASP). Default true. Only the Referer\'s origin is used, never its path or query. Set false to require Origin itself.',
    }),
    allow_missing: Type.Boolean({
      default: false,
      description:
        'Allow requests that carry neither Origin nor a usable Referer (non-browser clients: curl, server-to-server calls). Default false: they are refused with ORIGIN_MISSING (fails closed). Browsers send Origin on every POST, PUT, PATCH and DELETE.',
    }),
  },
  { additionalProperties: false },
);

export type OriginConfig = Static<typeof OriginSchema>;
