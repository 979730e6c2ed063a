import { Type, type Static } from '@sinclair/typebox';

/** RFC 9110 §5.6.2 token: methods and field names. `*` is a token too (the CORS wildcard). */
const TOKEN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/**
 * `cors` settings: the CORS protocol of the Fetch standard (#http-cors-protocol). The gateway answers preflights
 * itself and adds the Access-Control-* headers to responses for allowed origins.
 */
export const CorsSchema = Type.Object(
  {
    allow_origins: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description:
        'Origins whose pages may read responses: exact (https://app.example.com) or patterns (https://*.example.com matches one DNS label; http://localhost:* matches any port). "*" allows every origin and is refused together with allow_credentials: true. No default: other origins get no CORS headers and their preflights are refused (fails closed). "null" is a config error.',
    }),
    allow_methods: Type.Array(Type.String({ pattern: TOKEN }), {
      default: ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'],
      description:
        'Methods allowed in preflights (Access-Control-Allow-Methods). Compared case-sensitively, as browsers do. GET, HEAD and POST are always allowed by browsers (CORS-safelisted methods). Default: the six common methods (fails open for methods: origins are the gate). "*" means any method, and only without credentials.',
    }),
    allow_headers: Type.Array(Type.String({ pattern: TOKEN }), {
      default: [],
      description:
        'Request headers pages may send (Access-Control-Allow-Headers), case-insensitive. Default none beyond the CORS-safelisted ones (fails closed): JSON APIs usually need content-type, token APIs authorization. "*" means any header except Authorization, and only without credentials.',
    }),
    expose_headers: Type.Array(Type.String({ pattern: TOKEN }), {
      default: ['x-request-id', 'x-pinpoint-code', 'x-pinpoint-layer', 'x-pinpoint-policy'],
      description:
        'Response headers page script may read besides the CORS-safelisted ones (Access-Control-Expose-Headers). Default: the gateway\'s request id and denial headers, so a page can report which policy refused it. "*" means all, and only without credentials.',
    }),
    allow_credentials: Type.Boolean({
      default: false,
      description:
        'Let pages send cookies / HTTP auth and read the response (Access-Control-Allow-Credentials: true). Default false (fails closed). Requires listed origins: "*" is a config error with it.',
    }),
    max_age: Type.Integer({
      minimum: 0,
      maximum: 86400,
      default: 600,
      description:
        'Seconds a browser may cache a successful preflight (Access-Control-Max-Age). Default 600. Browsers cap it (Chromium at 7200, Firefox at 86400); 0 disables caching.',
    }),
  },
  { additionalProperties: false },
);

export type CorsConfig = Static<typeof CorsSchema>;
