import { Type, type Static } from '@sinclair/typebox';

/** `content-type` settings: which media types a route accepts in request bodies. */
export const ContentTypeSchema = Type.Object(
  {
    allow: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      default: ['application/json', 'application/*+json'],
      description:
        'Media types accepted for request bodies: type/subtype, type/*, */* or type/*+suffix (RFC 6839, e.g. application/*+json). Compared case-insensitively; parameters are not matched (see charsets). Any other Content-Type is refused with CONTENT_TYPE_NOT_ACCEPTED (415): fails closed. Default: JSON only.',
    }),
    methods: Type.Array(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }), {
      minItems: 1,
      default: ['POST', 'PUT', 'PATCH'],
      description:
        'Methods whose bodies are checked (upper-cased at load). Requests with other methods are skipped: fails open for them. Default: the methods that carry content (POST, PUT, PATCH).',
    }),
    require_body_type: Type.Boolean({
      default: true,
      description:
        'Refuse a request that has a body but no Content-Type (CONTENT_TYPE_MISSING, 415). Default true: fails closed. With false such a body is let through, and the upstream may guess its type (RFC 9110 §8.3: application/octet-stream or sniffing).',
    }),
    charsets: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'When non-empty, a Content-Type whose charset parameter is not in this list (case-insensitive) is refused with CONTENT_TYPE_CHARSET_NOT_ACCEPTED (415). A Content-Type without charset is accepted (JSON defines none: RFC 8259 §11). Default []: any charset, fails open.',
    }),
  },
  { additionalProperties: false },
);

export type ContentTypeConfig = Static<typeof ContentTypeSchema>;
