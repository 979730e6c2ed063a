/**
 * `api-key`: authenticates the caller by an API key sent in a header, as a bearer token or in the
 * query, and checks the scopes the route requires. Fails closed: no key, an unknown, revoked or
 * expired key, or a missing scope is a denial with its own code.
 */
import type { PolicyModule } from '../../pipeline/types.ts';
import { decideApiKey, describeLocation, type ApiKeyCompiled } from './decide.ts';
import { ApiKeySchema } from './schema.ts';

export const apiKey: PolicyModule<typeof ApiKeySchema> = {
  type: 'api-key',
  summary: 'API key in a header, bearer token or query parameter; keys stored hashed; expiry, revocation and scopes.',
  schema: ApiKeySchema,
  compile(config, meta, ctx) {
    const bearer = config.in.some((l) => l.from === 'bearer');
    const others = config.in.flatMap((l) => (l.from === 'bearer' ? [] : [`ApiKey realm="${config.realm}", in="${l.from}", name="${l.name}"`]));
    const challenge = (error?: string): string => {
      // RFC 6750 §3: error attributes belong to the Bearer challenge; the ApiKey challenges follow it.
      const first = bearer ? [`Bearer realm="${config.realm}"${error !== undefined ? `, ${error}` : ''}`] : [];
      return [...first, ...others].join(', ');
    };
    const compiled: ApiKeyCompiled = Object.freeze({
      locations: Object.freeze([...config.in]),
      accepted: config.in.map(describeLocation).join(' or '),
      requiredScopes: Object.freeze([...config.required_scopes]),
      challenge,
      keys: ctx.apiKeys,
    });
    return {
      id: meta.id,
      type: 'api-key',
      mode: meta.mode,
      decide: (dctx) => decideApiKey(compiled, dctx),
    };
  },
};
