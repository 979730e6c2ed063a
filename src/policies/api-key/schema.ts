import { Type, type Static } from '@sinclair/typebox';

const Location = Type.Union(
  [
    Type.Object(
      { from: Type.Literal('header', { description: 'A request header.' }), name: Type.String({ minLength: 1, description: 'Header name, e.g. x-api-key.' }) },
      { additionalProperties: false },
    ),
    Type.Object({ from: Type.Literal('bearer', { description: 'The Authorization header, Bearer scheme.' }) }, { additionalProperties: false, description: 'Authorization: Bearer <key> (RFC 6750 §2.1).' }),
    Type.Object(
      { from: Type.Literal('query', { description: 'A query parameter.' }), name: Type.String({ minLength: 1, description: 'Query parameter, e.g. api_key. Keys in URLs end up in logs and browser history; prefer a header.' }) },
      { additionalProperties: false },
    ),
  ],
  { description: 'One place a key is accepted.' },
);

/** `api-key` settings. Keys themselves live on consumers (consumers[].credentials.api_keys). */
export const ApiKeySchema = Type.Object(
  {
    in: Type.Array(Location, {
      minItems: 1,
      default: [{ from: 'header', name: 'x-api-key' }, { from: 'bearer' }],
      description: 'Where a key is accepted, tried in order. A key found anywhere else is refused as AUTH_KEY_WRONG_PLACE, naming where it was found. Default: x-api-key header, then Bearer.',
    }),
    required_scopes: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Scopes the key must have (all of them). Missing ones fail closed with AUTH_KEY_SCOPE_MISSING (403).',
    }),
    realm: Type.String({ default: 'pinpoint', description: 'realm of the WWW-Authenticate challenge (RFC 9110 §11.6.1).' }),
  },
  { additionalProperties: false },
);

export type ApiKeyConfig = Static<typeof ApiKeySchema>;
export type KeyLocation = ApiKeyConfig['in'][number];
