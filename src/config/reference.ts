/**
 * Renders docs/configuration.md's field reference from the schema itself (the single source of
 * truth), including every policy type's config. A test keeps the committed file in sync.
 */
import type { TSchema } from '@sinclair/typebox';
import { PIPELINE_ORDER } from '../pipeline/order.ts';
import { POLICY_MODULES } from '../policies/index.ts';
import { ConfigSchema } from './schema.ts';

interface Node {
  type?: string;
  description?: string;
  default?: unknown;
  const?: unknown;
  properties?: Record<string, Node>;
  required?: string[];
  items?: Node;
  anyOf?: Node[];
  patternProperties?: Record<string, Node>;
  additionalProperties?: Node | boolean;
  pattern?: string;
  minimum?: number;
  maximum?: number;
}

function typeOf(n: Node): string {
  if (n.anyOf !== undefined) {
    if (n.anyOf.every((b) => b.const !== undefined)) return n.anyOf.map((b) => JSON.stringify(b.const)).join(' \\| ');
    return n.anyOf.map(typeOf).join(' \\| ');
  }
  if (n.const !== undefined) return JSON.stringify(n.const);
  if (n.type === 'array') return `list of ${n.items !== undefined ? typeOf(n.items) : 'any'}`;
  if (n.patternProperties !== undefined) {
    // The value's own type: a map of ids to entries (policies, upstreams) or of names to values (headers to set).
    const v = Object.values(n.patternProperties)[0];
    const value = v === undefined ? 'any' : typeOf(v);
    return `map of ${value === 'object' ? 'id' : 'name'} → ${value}`;
  }
  if (n.type === 'integer' && (n.minimum !== undefined || n.maximum !== undefined)) return `integer ${n.minimum ?? ''}–${n.maximum ?? ''}`;
  return n.type ?? 'any';
}

function rows(n: Node, path: string, out: string[]): void {
  const props = n.properties ?? {};
  for (const [k, child] of Object.entries(props)) {
    const p = path === '' ? k : `${path}.${k}`;
    const req = n.required?.includes(k) === true && child.default === undefined ? 'yes' : '';
    const def = child.default !== undefined ? `\`${JSON.stringify(child.default)}\`` : '';
    out.push(`| \`${p}\` | ${typeOf(child)} | ${req} | ${def} | ${(child.description ?? '').replace(/\|/g, '\\|')} |`);
    if (child.properties !== undefined) rows(child, p, out);
    if (child.items?.properties !== undefined) rows(child.items, `${p}[]`, out);
    if (child.items?.anyOf !== undefined) for (const b of child.items.anyOf) if (b.properties !== undefined) rows(b, `${p}[]`, out);
    const pp = child.patternProperties !== undefined ? Object.values(child.patternProperties)[0] : undefined;
    if (pp?.properties !== undefined) rows(pp, `${p}.<id>`, out);
  }
}

function table(schema: TSchema, prefix: string): string[] {
  const out = ['| field | type | required | default | description |', '|---|---|---|---|---|'];
  rows(schema, prefix, out);
  return out;
}

export function renderConfigReference(): string {
  const out: string[] = [];
  out.push('# Configuration reference');
  out.push('');
  out.push('<!-- Generated from src/config/schema.ts and the policy schemas by `npm run docs`. A test checks it. -->');
  out.push('');
  out.push('Pinpoint reads one YAML file (`pinpoint start --config FILE`). Editors can validate it with');
  out.push('[schema/pinpoint.schema.json](../schema/pinpoint.schema.json). `pinpoint validate FILE` reports every');
  out.push('problem with its path; a file with any problem never replaces a running config. See');
  out.push('[examples/demo/pinpoint.yaml](../examples/demo/pinpoint.yaml) for a complete example.');
  out.push('');
  out.push('## Top level');
  out.push('');
  out.push(...table(ConfigSchema, ''));
  out.push('');
  out.push('## Policies');
  out.push('');
  out.push('A policy instance is an entry of `policies` with an id you choose (it names the policy in every');
  out.push('denial), a `type`, a `mode` (`enforce` or `monitor`) and a `config`. Attach it by id in');
  out.push('`global.policies`, `routes[].policies` or `consumers[].policies`. Policies run in the pipeline order');
  out.push('below, wherever they are attached.');
  out.push('');
  out.push('| order | type | what it does | why at this position |');
  out.push('|---|---|---|---|');
  PIPELINE_ORDER.forEach((s, i) => {
    const m = POLICY_MODULES.find((x) => x.type === s.type);
    out.push(`| ${i + 1} | \`${s.type}\` | ${m?.summary ?? ''} | ${s.reason} |`);
  });
  for (const m of POLICY_MODULES) {
    out.push('');
    out.push(`### \`${m.type}\``);
    out.push('');
    out.push(m.summary);
    out.push('');
    out.push(...table(m.schema, 'config'));
  }
  out.push('');
  return out.join('\n');
}
