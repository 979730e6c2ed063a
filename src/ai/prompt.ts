/**
 * Prompt APIs: a prompt template (system + user message with {{variables}}), a model and its
 * parameters, published as a REST endpoint. The request body is a JSON object of the variables,
 * validated against a JSON Schema built from the declared variables (ajv), so a caller gets a
 * 400 naming the field — the same as any other API behind the gateway.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import type { ConfigIssue } from '../pipeline/types.ts';
import type { CompiledAi, CompiledModel } from './compile.ts';
import type { PromptRouteConfig } from './schema.ts';
import type { ChatMessage, ChatRequest } from './types.ts';

export interface CompiledPrompt {
  readonly config: PromptRouteConfig;
  readonly model: CompiledModel | undefined;
  /** Validates the request body (the variables object). */
  readonly validate: ValidateFunction;
  /** Builds the chat request from validated variables. */
  build(vars: Readonly<Record<string, unknown>>): ChatRequest;
}

const ajv = new Ajv({ allErrors: true, strict: true });
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

function placeholders(text: string): string[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => m[1] as string);
}

function render(text: string, vars: Readonly<Record<string, unknown>>): string {
  return text.replace(PLACEHOLDER, (_, name: string) => {
    const v = vars[name];
    // Validated against the variables' schema: only strings, numbers and booleans reach here.
    return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
  });
}

export function compilePrompt(cfg: PromptRouteConfig, ai: CompiledAi, where: string, issues: ConfigIssue[]): CompiledPrompt {
  const model = ai.resolve(cfg.model);
  if (model === undefined) issues.push({ path: `${where}.model`, message: `no model "${cfg.model}" in ai.models (known: ${ai.names.join(', ') || 'none'})` });
  for (const [field, text] of [['template', cfg.template], ['system', cfg.system ?? '']] as const) {
    for (const name of placeholders(text)) {
      if (!Object.hasOwn(cfg.variables, name)) issues.push({ path: `${where}.${field}`, message: `{{${name}}} is not declared in variables` });
    }
  }
  const properties: Record<string, Record<string, unknown>> = {};
  const required: string[] = [];
  for (const [name, v] of Object.entries(cfg.variables)) {
    properties[name] = {
      type: v.type,
      ...(v.max_length !== undefined ? { maxLength: v.max_length } : {}),
      ...(v.enum !== undefined ? { enum: v.enum } : {}),
    };
    if (v.required) required.push(name);
  }
  const validate = ajv.compile({ type: 'object', properties, required, additionalProperties: false });
  const params = cfg.parameters;
  return Object.freeze({
    config: cfg,
    model,
    validate,
    build(vars: Readonly<Record<string, unknown>>): ChatRequest {
      const messages: ChatMessage[] = [];
      if (cfg.system !== undefined) messages.push({ role: 'system', content: render(cfg.system, vars) });
      messages.push({ role: 'user', content: render(cfg.template, vars) });
      return {
        model: cfg.model,
        messages,
        ...(params.temperature !== undefined ? { temperature: params.temperature } : {}),
        ...(params.top_p !== undefined ? { top_p: params.top_p } : {}),
        ...(params.max_tokens !== undefined ? { max_tokens: params.max_tokens } : {}),
        ...(cfg.output === 'json' ? { response_format: { type: 'json_object' as const } } : {}),
      };
    },
  });
}
