/**
 * The policy registry: every policy type, listed explicitly (no import side effects). To add a
 * policy, copy a sibling folder, add it here, and give it a place in src/pipeline/order.ts.
 */
import type { PolicyModule } from '../pipeline/types.ts';
import { apiKey } from './api-key/index.ts';
import { ipRules } from './ip-rules/index.ts';
import { requestSize } from './request-size/index.ts';
import { oauth2Introspection } from './oauth2-introspection/index.ts';
import { subscription } from './subscription/index.ts';
import { tenant } from './tenant/index.ts';
import { rbac } from './rbac/index.ts';
import { ownership } from './ownership/index.ts';
import { cors } from './cors/index.ts';
import { origin } from './origin/index.ts';
import { csrf } from './csrf/index.ts';
import { rateLimit } from './rate-limit/index.ts';
import { aiLimits } from './ai-limits/index.ts';
import { basicAuth } from './basic-auth/index.ts';
import { jwt } from './jwt/index.ts';
import { contentType } from './content-type/index.ts';
import { requiredHeaders } from './required-headers/index.ts';
import { openapiValidate } from './openapi-validate/index.ts';
import { aiGuardrails } from './ai-guardrails/index.ts';
import { requestTransform } from './request-transform/index.ts';

// PolicyModule is generic in its schema; the registry only needs the erased form.
export const POLICY_MODULES: readonly PolicyModule[] = [apiKey, ipRules, requestSize, oauth2Introspection, subscription, tenant, rbac, ownership, cors, origin, csrf, rateLimit, aiLimits, basicAuth, jwt, contentType, requiredHeaders, openapiValidate, aiGuardrails, requestTransform];

export const POLICY_BY_TYPE: ReadonlyMap<string, PolicyModule> = new Map(POLICY_MODULES.map((m) => [m.type, m]));
