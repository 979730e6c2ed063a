import { Type, type Static } from '@sinclair/typebox';

const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/** `request-transform` settings: edits made to the request on its way upstream. It never denies. */
export const RequestTransformSchema = Type.Object(
  {
    set_headers: Type.Record(Type.String({ pattern: HEADER_NAME }), Type.String(), {
      default: {},
      description:
        'Headers to send upstream, replacing any the client sent under the same name. A value may embed ${env:NAME}, resolved once at load (to inject an upstream credential without writing it in the file); an unset or empty variable fails the load, naming the field. Values are never logged or traced.',
    }),
    remove_headers: Type.Array(Type.String({ pattern: HEADER_NAME }), {
      default: [],
      description:
        'Headers removed before forwarding, e.g. the client’s own credential (authorization, x-api-key) so it never reaches the upstream. Default []: everything the client sent is forwarded (fails open).',
    }),
    rename_headers: Type.Array(
      Type.Object(
        {
          from: Type.String({ pattern: HEADER_NAME, description: 'Header the client sends.' }),
          to: Type.String({ pattern: HEADER_NAME, description: 'Name the upstream receives it under (replacing a client header of that name).' }),
        },
        { additionalProperties: false },
      ),
      { default: [], description: 'Headers forwarded under another name, value unchanged. Absent headers are left alone.' },
    ),
    set_query: Type.Record(Type.String({ minLength: 1 }), Type.String(), {
      default: {},
      description: 'Query parameters to send upstream, replacing the client’s of the same name. Values may embed ${env:NAME} like set_headers.',
    }),
    remove_query: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Query parameters removed before forwarding (e.g. a key the client put in the URL).',
    }),
  },
  { additionalProperties: false },
);

export type RequestTransformConfig = Static<typeof RequestTransformSchema>;
