/**
 * The provider registry: every provider type, listed explicitly. To add a provider, copy a sibling
 * folder (an OpenAI-style one is a few lines on src/ai/providers/openai-compatible/base.ts), add
 * it here and to PROVIDER_TYPES in src/ai/schema.ts.
 */
import type { ProviderAdapter, ProviderType } from '../types.ts';
import { anthropic } from './anthropic/index.ts';
import { azureOpenAI } from './azure-openai/index.ts';
import { gemini } from './gemini/index.ts';
import { mistral } from './mistral/index.ts';
import { openai } from './openai/index.ts';
import { openAICompatibleServer } from './openai-compatible/index.ts';

export const PROVIDERS: Readonly<Record<ProviderType, ProviderAdapter>> = {
  openai,
  'azure-openai': azureOpenAI,
  mistral,
  'openai-compatible': openAICompatibleServer,
  anthropic,
  gemini,
};
