/**
 * `openapi-validate`: checks each request against the API's OpenAPI 3.0 / 3.1 description — the
 * operation exists (404 / 405 with Allow from the document), path, query, header and cookie
 * parameters and the JSON body match their schemas — and answers 400 listing every failing
 * field as a JSON pointer with the rule it broke (denial cause 20: never a bare 403).
 *
 * The document is read, resolved and compiled once per config load; a broken document fails the
 * load, naming `spec` and the place in the document.
 *
 * @example
 * ```yaml
 * policies:
 *   orders-contract:
 *     type: openapi-validate
 *     config: { spec: ./openapi/orders.yaml, base_path: /v1 }
 * ```
 */
import { ConfigError, type PolicyModule } from '../../pipeline/types.ts';
import { decideOpenApi, type OpenApiCompiled } from './decide.ts';
import { DocumentError, loadDocument, resolveSpecFile } from './load.ts';
import { compileDocument, type DocIssue } from './operations.ts';
import { OpenApiValidateSchema } from './schema.ts';

export const openapiValidate: PolicyModule<typeof OpenApiValidateSchema> = {
  type: 'openapi-validate',
  summary: 'Validates requests against an OpenAPI 3.0/3.1 document: operation, parameters and JSON body, with field-level errors.',
  schema: OpenApiValidateSchema,
  compile(config, meta, ctx) {
    const specPath = `${ctx.path}.spec`;
    const base = config.base_path;
    if (base !== '' && (!base.startsWith('/') || base.endsWith('/'))) {
      throw new ConfigError([{ path: `${ctx.path}.base_path`, message: 'a base path starts with "/" and does not end with one, e.g. /v1' }]);
    }
    const file = resolveSpecFile(config.spec, ctx);
    let loaded;
    try {
      loaded = loadDocument(file);
    } catch (err) {
      if (err instanceof DocumentError) throw new ConfigError([{ path: specPath, message: err.at !== undefined ? `${err.message} (at ${err.at})` : err.message }]);
      throw err;
    }
    const issues: DocIssue[] = [];
    const doc = compileDocument(loaded, issues);
    if (issues.length > 0) {
      throw new ConfigError(issues.map((i) => ({ path: specPath, message: `${file} at ${i.at}: ${i.message}` })));
    }
    const bases = new Set<string>();
    if (base !== '') bases.add(base);
    if (config.use_servers) for (const b of doc.serverBases) bases.add(b);
    if (bases.size === 0) bases.add('');
    const compiled: OpenApiCompiled = Object.freeze({
      doc,
      // Longest first, so /v1/admin wins over /v1.
      bases: Object.freeze([...bases].sort((a, b) => b.length - a.length)),
      unknownAllow: config.unknown_operations === 'allow',
      maxErrors: config.max_errors,
    });
    return {
      id: meta.id,
      type: 'openapi-validate',
      mode: meta.mode,
      // The body is awaited only for operations with a JSON request body (see decide.ts).
      needsBody: true,
      decide: (dctx) => decideOpenApi(compiled, dctx),
    };
  },
};
