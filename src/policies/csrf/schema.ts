import { Type, type Static } from '@sinclair/typebox';

/** RFC 9110 §5.6.2 token: methods and field names. */
const TOKEN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/**
 * `csrf` settings: cross-site request forgery protection for browser requests that a cookie
 * authenticates (OWASP CSRF Prevention Cheat Sheet). Two modes:
 * - `double-submit`: the page copies a token from a cookie into a header; a cross-site page can
 *   make the browser send the cookie but cannot read it, so it cannot fill the header.
 * - `header`: a custom header must be present; a cross-site form cannot add headers, and a
 *   cross-site fetch() that adds one needs a CORS preflight, which the `cors` policy refuses.
 */
export const CsrfSchema = Type.Object(
  {
    mode: Type.Union([Type.Literal('double-submit'), Type.Literal('header')], {
      default: 'double-submit',
      description:
        'double-submit: the header_name header must equal the cookie_name cookie. header: the required_header header must be present (only safe if no untrusted origin is allowed that header by CORS). Default double-submit.',
    }),
    cookie_name: Type.String({
      pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
      default: 'csrf_token',
      description:
        'double-submit: cookie holding the token. Default csrf_token. A __Host- prefixed name (RFC 6265bis) stops a sibling subdomain from planting its own token.',
    }),
    header_name: Type.String({
      pattern: TOKEN,
      default: 'x-csrf-token',
      description: 'double-submit: request header that must carry the cookie\'s value. Default x-csrf-token.',
    }),
    required_header: Type.String({
      pattern: TOKEN,
      default: 'x-requested-with',
      description:
        'header mode: request header that must be present (any non-empty value). Default x-requested-with. CORS-safelisted headers (content-type, accept…) and headers the browser sets itself are config errors: a cross-site form can send those.',
    }),
    methods: Type.Array(Type.String({ pattern: TOKEN }), {
      minItems: 1,
      default: ['POST', 'PUT', 'PATCH', 'DELETE'],
      description:
        'Methods checked; others are skipped, except WebSocket handshakes (Upgrade: websocket), which are checked whatever their method: a browser cannot add the token or header to one, so a handshake with cookies needs an Origin on the request\'s own host (CSRF_HANDSHAKE_CROSS_SITE otherwise). Default: the unsafe methods (RFC 9110 §9.2.1), the ones a forged request uses to change state.',
    }),
    only_with_cookies: Type.Boolean({
      default: true,
      description:
        'Check only requests that carry ambient credentials: a Cookie header or HTTP Basic credentials (browsers attach both cross-site on their own). Default true: a request authenticated by a token the page must add itself (API key, Bearer) cannot be forged cross-site, so it is skipped (fails open for such requests). Set false when browsers send other ambient credentials (client certificates).',
    }),
  },
  { additionalProperties: false },
);

export type CsrfConfig = Static<typeof CsrfSchema>;
