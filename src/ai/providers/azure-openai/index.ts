/**
 * Azure OpenAI. Same body and envelope as OpenAI; the differences are the URL and the key header.
 *
 * Facts relied on (Azure OpenAI REST reference, data plane inference; the `openai` SDK's azure.ts):
 * - POST {endpoint}/openai/deployments/{deployment-id}/chat/completions?api-version=… (and
 *   /embeddings); the deployment name takes the place of the model and is a path segment (the SDK
 *   encodes it with its `path` helper). `api-version` is required.
 * - The key goes in the `api-key` header (AzureOpenAI.authHeaders).
 * - Request ids: `apim-request-id` (API Management, quoted by Azure support), `x-request-id`,
 *   `x-ms-request-id`.
 * - Errors use OpenAI's envelope, sometimes with `type: null` and a `code` only: content filtering
 *   is a 400 with `code: "content_filter"`, `status: 400` and an `innererror`
 *   (`ResponsibleAIPolicyViolation`, content_filter_result); a missing deployment is a 404
 *   `{"error":{"code":"DeploymentNotFound",…}}`; API Management answers `{"error":{"code":"401"|"429",…}}`
 *   or `{"statusCode", "message"}`. 429s carry `retry-after` / `retry-after-ms`.
 * - Streams start with a chunk holding only `prompt_filter_results` (empty id, created 0, empty
 *   choices); it is passed on with the gateway's id and created.
 */
import type { ProviderAdapter } from '../../types.ts';
import { OPENAI_CHAT_RULES, openAICompatible } from '../openai-compatible/base.ts';

export const azureOpenAI: ProviderAdapter = openAICompatible({
  type: 'azure-openai',
  defaultBaseUrl: undefined,
  auth: 'api-key',
  requestIdHeaders: ['apim-request-id', 'x-request-id', 'x-ms-request-id'],
  url(baseUrl, target, operation) {
    if (target.apiVersion === undefined || target.apiVersion === '') {
      throw new Error(`azure-openai provider ${target.providerId}: api_version is required (the api-version query parameter)`);
    }
    return `${baseUrl}/openai/deployments/${encodeURIComponent(target.model)}/${operation}?api-version=${encodeURIComponent(target.apiVersion)}`;
  },
  streamUsage: 'stream_options',
  chat: OPENAI_CHAT_RULES,
  embeddings: {},
});
