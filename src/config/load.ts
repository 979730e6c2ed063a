/**
 * Reading a config file: YAML → schema validation (defaults filled) → compile. Every problem is
 * returned with its path; nothing here replaces a running config (src/server/runtime.ts does that
 * only after this succeeds).
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { oneByteStrings } from '../json/one-byte.ts';
import { ConfigError, type ConfigIssue } from '../pipeline/types.ts';
import { checkPolicyEntry, compileConfig, type CompiledConfig } from './compile.ts';
import { ConfigSchema, type Config } from './schema.ts';
import { validate } from './validate.ts';

export type LoadResult =
  | { readonly ok: true; readonly compiled: CompiledConfig }
  | {
      readonly ok: false;
      readonly issues: readonly ConfigIssue[];
      /**
       * The settings, defaults filled, when the file passed the schema but did not compile here
       * (an unset \${env:…}, a key file only the gateway's host has): commands that only read
       * settings (the call log's path, retention) can still use them.
       */
      readonly settings?: Config;
    };

/** Parses and validates YAML text; `name` is used in messages (a file path). */
export function parseConfigText(text: string, name: string): { config?: Config; issues: ConfigIssue[] } {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      issues: doc.errors.map((e) => ({
        path: e.linePos?.[0] !== undefined ? `${name}:${e.linePos[0].line}:${e.linePos[0].col}` : name,
        message: e.message.split('\n')[0] ?? e.message,
      })),
    };
  }
  // Ids and rules from here go into every trace and log row: keep them one byte per character.
  const value: unknown = oneByteStrings(doc.toJS({ maxAliasCount: 100 }));
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { issues: [{ path: '(root)', message: 'the config must be a YAML mapping' }] };
  }
  const issues = validate(ConfigSchema, value, '');
  if (issues.length > 0) return { issues: [...issues, ...policyConfigIssues(value)] };
  return { config: value as Config, issues: [] };
}

/**
 * Policy configs are opaque to the top-level schema (each type has its own), so when the file's
 * structure fails, the policies that are well-formed entries are still checked on their own: every
 * problem of one file shows in one run. References between parts (a route naming a missing
 * upstream or policy) need a valid structure and are checked by compile once it is.
 */
function policyConfigIssues(root: object): ConfigIssue[] {
  const policies: unknown = (root as Record<string, unknown>)['policies'];
  if (policies === null || typeof policies !== 'object' || Array.isArray(policies)) return [];
  const out: ConfigIssue[] = [];
  for (const [id, inst] of Object.entries(policies)) {
    if (inst === null || typeof inst !== 'object' || Array.isArray(inst)) continue;
    const { type, config } = inst as Record<string, unknown>;
    if (typeof type !== 'string') continue;
    // A copy: ajv fills defaults in place, and this document is being rejected anyway.
    out.push(...checkPolicyEntry(id, type, structuredClone(config)).issues);
  }
  return out;
}

export function loadConfigText(
  text: string,
  opts: { file?: string; env?: Readonly<Record<string, string | undefined>> } = {},
): LoadResult {
  const parsed = parseConfigText(text, opts.file ?? '(config)');
  if (parsed.config === undefined) return { ok: false, issues: parsed.issues };
  try {
    return { ok: true, compiled: compileConfig(parsed.config, opts) };
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, issues: err.issues, settings: parsed.config };
    throw err;
  }
}

export function loadConfigFile(file: string, env?: Readonly<Record<string, string | undefined>>): LoadResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, issues: [{ path: file, message: `cannot read config file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }] };
  }
  return loadConfigText(text, env === undefined ? { file } : { file, env });
}
