import { Type, type Static } from '@sinclair/typebox';

/** `openapi-validate` settings. */
export const OpenApiValidateSchema = Type.Object(
  {
    spec: Type.String({
      minLength: 1,
      description:
        'The OpenAPI 3.0.x or 3.1.x document (YAML or JSON), absolute or relative to the config file. Loaded, resolved and compiled once per config load; an unreadable or invalid document, or an external $ref, fails the load. Bundle multi-file documents into one first.',
    }),
    base_path: Type.String({
      default: '',
      description:
        'Prefix the request path carries before the document’s paths, e.g. /v1 when the document says /orders and clients call /v1/orders. Default "": paths are matched as they arrive. A request outside the prefix is OPENAPI_OPERATION_NOT_FOUND.',
    }),
    use_servers: Type.Boolean({
      default: false,
      description:
        'Also take prefixes from the path part of the document’s servers[].url (server variables at their defaults); the longest matching prefix is stripped. Default false: servers are ignored.',
    }),
    unknown_operations: Type.Union([Type.Literal('deny'), Type.Literal('allow')], {
      default: 'deny',
      description:
        'What to do with a request the document does not describe: deny (404 OPENAPI_OPERATION_NOT_FOUND, or 405 OPENAPI_METHOD_NOT_ALLOWED with Allow computed from the document) — fails closed; or allow, skipping validation for it — fails open, for documents that describe only part of an API.',
    }),
    max_errors: Type.Integer({
      minimum: 1,
      maximum: 200,
      default: 20,
      description: 'Most field errors listed in one denial (every error is still counted in error_count). Bounds the size of the answer to a hostile body.',
    }),
  },
  { additionalProperties: false },
);

export type OpenApiValidateConfig = Static<typeof OpenApiValidateSchema>;
