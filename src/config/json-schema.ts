/**
 * The published JSON Schema (schema/pinpoint.schema.json) for editors: the config schema with each
 * policy type's own config schema wired in by `if type == X then config: <schema of X>`.
 */
import { POLICY_MODULES } from '../policies/index.ts';
import { ConfigSchema } from './schema.ts';

export function renderJsonSchema(): string {
  const root = structuredClone(ConfigSchema) as unknown as Record<string, unknown> & {
    properties: { policies: { additionalProperties?: Record<string, unknown>; patternProperties?: Record<string, Record<string, unknown>> } };
  };
  const policies = root.properties.policies;
  const instance = policies.patternProperties !== undefined ? Object.values(policies.patternProperties)[0] : policies.additionalProperties;
  if (instance !== undefined) {
    instance.allOf = POLICY_MODULES.map((m) => ({
      if: { properties: { type: { const: m.type } } },
      then: { properties: { config: structuredClone(m.schema) } },
    }));
    (instance.properties as Record<string, Record<string, unknown>>).type = { enum: POLICY_MODULES.map((m) => m.type), description: 'Policy type.' };
  }
  relaxDefaults(root);
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...root }, null, 2)}\n`;
}

/**
 * ajv fills defaults before it checks `required`, so the gateway accepts a config without fields
 * that have defaults; editors do not fill defaults, so the published schema must not require them.
 */
function relaxDefaults(node: unknown): void {
  if (Array.isArray(node)) {
    for (const n of node) relaxDefaults(n);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const o = node as { required?: string[]; properties?: Record<string, { default?: unknown }> };
  if (o.required !== undefined && o.properties !== undefined) {
    const props = o.properties;
    o.required = o.required.filter((k) => props[k]?.default === undefined);
    if (o.required.length === 0) delete o.required;
  }
  for (const v of Object.values(o)) relaxDefaults(v);
}
