/**
 * The HTTP call to Anthropic's Messages endpoint, shared by the chat mapping and the native route.
 *
 * Messages API reference: `POST {base}/v1/messages` with `x-api-key`, `anthropic-version` and
 * optionally `anthropic-beta` (a comma-separated list). SDK clients are configured with a base URL
 * without `/v1` and append `/v1/messages` themselves, so provider base URLs here have no `/v1` either.
 */
import type { HttpCall, ProviderTarget } from '../../types.ts';

export function messagesCall(
  target: ProviderTarget,
  apiKey: string | undefined,
  body: string,
  version: string,
  beta?: string,
): HttpCall {
  const headers: Record<string, string> = {};
  // Static headers from config first (lower-cased, as HttpCall wants); the credential, version and
  // content type below are the gateway's to set. A configured anthropic-beta is kept and joined
  // with the client's.
  for (const [name, value] of Object.entries(target.headers)) headers[name.toLowerCase()] = value;
  const betas = [headers['anthropic-beta'], beta].filter((b): b is string => b !== undefined && b !== '');
  if (betas.length > 0) headers['anthropic-beta'] = betas.join(',');
  headers['anthropic-version'] = version;
  headers['content-type'] = 'application/json';
  if (apiKey !== undefined) headers['x-api-key'] = apiKey;
  return { method: 'POST', url: `${target.baseUrl}/v1/messages`, headers, body };
}
