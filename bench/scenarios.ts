/**
 * What bench/run.ts and bench/instructions.ts both send and check: the request and the answer of
 * every scenario, the configs a scenario's Pinpoint runs with, and the pinpoint-chain credentials.
 * Kept in one module so both measure exactly the same traffic against the same configs.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { SignJWT } from 'jose';
import { isMap, type Document } from 'yaml';
import { API_KEY, checkApiKeyHash, mapKeys, probe, readConfig } from './lib.ts';

export const METHODS = ['POST', 'GET'] as const;
export type Method = (typeof METHODS)[number];
/** How long an HTTP probe (readiness, pre-flight) waits for its answer. */
export const PROBE_TIMEOUT_MS = 3000;

export const REQUEST_PATH = '/v1/orders';
export const UPSTREAM_BODY_BYTES = 214;
export const REQUEST_BODY_BYTES = 1024;
/** pinpoint-chain: the Origin its requests carry (its cors policy allows it) and the token's scopes. */
export const CHAIN_ORIGIN = 'https://app.example.com';
export const CHAIN_SCOPES = 'orders:read orders:write';

// ---------------------------------------------------------------------------------------------
// Bodies

/** The 214-byte JSON every request gets back; no quote, `$` or backslash so nginx `return` takes it verbatim. */
export function upstreamBody(): string {
  const doc = {
    id: 'ord_0001',
    status: 'accepted',
    items: [
      { sku: 'A-100', qty: 2, price: 1999 },
      { sku: 'B-200', qty: 1, price: 4999 },
    ],
    total: 8997,
    currency: 'EUR',
    pad: '',
  };
  doc.pad = 'x'.repeat(UPSTREAM_BODY_BYTES - JSON.stringify(doc).length);
  const body = JSON.stringify(doc);
  if (body.length !== UPSTREAM_BODY_BYTES || /['$\\]/.test(body)) throw new Error('bad upstream body');
  return body;
}

/** Same recipe as bench/post-1k.lua. */
export function requestBody(): string {
  const head =
    '{"order":{"id":"ord_0001","customer":"cus_42","currency":"EUR",' +
    '"items":[{"sku":"A-100","qty":2,"price":1999},{"sku":"B-200","qty":1,"price":4999}]},"pad":"';
  const end = '"}';
  return head + 'x'.repeat(REQUEST_BODY_BYTES - head.length - end.length) + end;
}

// ---------------------------------------------------------------------------------------------
// HTTP probes (readiness and the pre-flight check that each scenario answers 2xx with the body)

/** The headers wrk sends (post-1k.lua): content-type on a body, x-api-key, and pinpoint-chain's token and Origin. */
export function requestHeaders(method: string, auth: ChainAuth | null): Record<string, string> {
  const headers: Record<string, string> = { 'x-api-key': API_KEY };
  if (method === 'POST') headers['content-type'] = 'application/json';
  if (auth) {
    headers.authorization = `Bearer ${auth.token}`;
    headers.origin = auth.origin;
  }
  return headers;
}

export async function preflight(port: number, method: Method, expectBody: string, auth: ChainAuth | null): Promise<void> {
  const body = method === 'POST' ? requestBody() : null;
  const r = await probe(port, method, REQUEST_PATH, body, requestHeaders(method, auth), PROBE_TIMEOUT_MS);
  const denial = r.headers['x-pinpoint-code'] ? ` (${String(r.headers['x-pinpoint-code'])} by ${String(r.headers['x-pinpoint-policy'])})` : '';
  if (r.status < 200 || r.status > 299) throw new Error(`pre-flight ${method} ${REQUEST_PATH} answered ${r.status}${denial}: ${r.body.slice(0, 300)}`);
  if (r.body !== expectBody) throw new Error(`pre-flight ${method} ${REQUEST_PATH} answered ${r.status} with an unexpected body (${r.body.length} bytes): ${r.body.slice(0, 200)}`);
  if (auth) {
    // The policies that never deny this traffic must still have run: cors and rate-limit leave headers.
    if (r.headers['access-control-allow-origin'] !== auth.origin) {
      throw new Error(`pre-flight ${method}: no access-control-allow-origin: ${auth.origin} in the answer (is the cors policy on the route?)`);
    }
    if (!r.headers['ratelimit-policy'] || !r.headers.ratelimit) throw new Error(`pre-flight ${method}: no RateLimit headers in the answer (is the rate-limit policy on the route?)`);
  }
}

/**
 * pinpoint-chain only: requests that must be refused, each by its own policy, so a chain with a
 * policy missing, in monitor mode or misconfigured to allow everything cannot pass for a fast one.
 */
export async function chainDenialChecks(port: number, auth: ChainAuth): Promise<string> {
  const good = requestBody();
  const bad = good.replace('"qty":2', '"qty":"2"'); // a string where the schema wants an integer
  const withoutToken = requestHeaders('POST', null);
  const cases: { what: string; method: string; body: string | null; headers: Record<string, string>; status: number; policy: string }[] = [
    { what: 'a wrong api key', method: 'POST', body: good, headers: { ...requestHeaders('POST', auth), 'x-api-key': 'pp_bench_wrong' }, status: 401, policy: auth.policies.apiKey },
    { what: 'no bearer token', method: 'POST', body: good, headers: { ...withoutToken, origin: auth.origin }, status: 401, policy: auth.policies.jwt },
    { what: 'a method no rbac rule covers', method: 'DELETE', body: null, headers: requestHeaders('DELETE', auth), status: 403, policy: auth.policies.rbac },
    { what: 'a body breaking the schema', method: 'POST', body: bad, headers: requestHeaders('POST', auth), status: 400, policy: auth.policies.openapi },
  ];
  for (const c of cases) {
    const r = await probe(port, c.method, REQUEST_PATH, c.body, c.headers, PROBE_TIMEOUT_MS);
    const policy = r.headers['x-pinpoint-policy'];
    if (r.status !== c.status || policy !== c.policy) {
      throw new Error(`pre-flight with ${c.what}: expected ${c.status} from policy ${c.policy}, got ${r.status} from ${String(policy ?? 'no policy')}: ${r.body.slice(0, 200)}`);
    }
  }
  return cases.map((c) => `${c.what} → ${c.status} ${c.policy}`).join('; ');
}

/** nginx's temp paths the templates leave to EXTRA_TEMP_PATHS (both set proxy's themselves). */
export const NGINX_TEMP_PATH_MODULES = ['fastcgi', 'uwsgi', 'scgi'];

/** The ids and configs of a config's policies of one type, in file order. */
export function policiesOfType(doc: Document.Parsed, type: string): { id: string; config: Record<string, unknown> }[] {
  const policies = doc.get('policies');
  if (!isMap(policies)) return [];
  const out: { id: string; config: Record<string, unknown> }[] = [];
  for (const id of mapKeys(policies)) {
    if (doc.getIn(['policies', id, 'type']) !== type) continue;
    const config: unknown = doc.getIn(['policies', id, 'config']);
    out.push({ id, config: isMap(config) ? (config.toJSON() as Record<string, unknown>) : {} });
  }
  return out;
}

export function writePinpointConfig(source: string, tmp: string, name: string, port: number, upstreamPort: number): string {
  const doc = readConfig(source);
  doc.setIn(['listen', 'port'], port);
  doc.setIn(['upstreams', 'backend', 'targets', 0, 'url'], `http://127.0.0.1:${upstreamPort}`);
  if (doc.getIn(['call_log', 'enabled']) === true) doc.setIn(['call_log', 'path'], `${name}-calls.db`);
  checkApiKeyHash(doc, source);
  // An OpenAPI document named relative to the config goes along with it, under its own name.
  for (const { id, config } of policiesOfType(doc, 'openapi-validate')) {
    const spec = config.spec;
    if (typeof spec !== 'string' || isAbsolute(spec)) continue;
    const from = resolve(dirname(source), spec);
    if (!existsSync(from)) throw new Error(`${source}: policies.${id}.config.spec: ${from} does not exist`);
    writeFileSync(join(tmp, basename(spec)), readFileSync(from));
    doc.setIn(['policies', id, 'config', 'spec'], basename(spec));
  }
  const out = join(tmp, `${name}.yaml`);
  writeFileSync(out, doc.toString());
  return out;
}

/** What pinpoint-chain's requests carry, and the secret its Pinpoint verifies them with. */
export interface ChainAuth {
  /** The one HS256 token every request sends as `Authorization: Bearer`. */
  token: string;
  origin: string;
  /** Environment of that Pinpoint only: the jwt key's secret_env variable. */
  env: Record<string, string>;
  /** Policy ids in the config, for the denial checks. */
  policies: { apiKey: string; jwt: string; rbac: string; openapi: string };
}

/**
 * Reads the jwt policy of the chain config (its HS256 key's secret_env and encoding, issuer,
 * audience), makes a fresh random 32-byte secret for this run, and signs one token with it: sub
 * = the first consumer, scope CHAIN_SCOPES, valid for `validSec` (the whole run).
 */
export async function chainCredentials(source: string, validSec: number): Promise<ChainAuth> {
  const doc = readConfig(source);
  const only = (type: string): { id: string; config: Record<string, unknown> } => {
    const found = policiesOfType(doc, type);
    if (found.length !== 1) throw new Error(`${source}: expected one ${type} policy, found ${found.length}`);
    return found[0] as { id: string; config: Record<string, unknown> };
  };
  const jwt = only('jwt');
  const keys = Array.isArray(jwt.config.keys) ? (jwt.config.keys as unknown[]) : [];
  const key = keys.find((k): k is Record<string, unknown> => typeof k === 'object' && k !== null && typeof (k as Record<string, unknown>).secret_env === 'string');
  if (!key) throw new Error(`${source}: policies.${jwt.id}: no key with secret_env (the bench signs HS256 tokens)`);
  const algorithms = Array.isArray(jwt.config.algorithms) ? (jwt.config.algorithms as unknown[]) : [];
  if (!algorithms.includes('HS256') || (key.alg !== undefined && key.alg !== 'HS256')) throw new Error(`${source}: policies.${jwt.id}: the bench signs HS256; allow it`);
  const first = (v: unknown): string | undefined => (typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined);
  const consumer = doc.getIn(['consumers', 0, 'id']);
  if (typeof consumer !== 'string') throw new Error(`${source}: no consumers[0].id for the token's sub`);

  const raw = randomBytes(32);
  const encoding = key.secret_encoding === 'base64' || key.secret_encoding === 'base64url' ? key.secret_encoding : 'utf8';
  // utf8: the secret is the variable's bytes, so use printable ones (64 hex digits, 32 bytes of entropy).
  const value = encoding === 'utf8' ? raw.toString('hex') : raw.toString(encoding);
  const secret = Buffer.from(value, encoding);

  let signer = new SignJWT({ scope: CHAIN_SCOPES })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...(typeof key.kid === 'string' ? { kid: key.kid } : {}) })
    .setSubject(consumer)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + Math.ceil(validSec));
  const iss = first(jwt.config.issuer);
  const aud = first(jwt.config.audience);
  if (iss !== undefined) signer = signer.setIssuer(iss);
  if (aud !== undefined) signer = signer.setAudience(aud);
  return {
    token: await signer.sign(secret),
    origin: CHAIN_ORIGIN,
    env: { [key.secret_env as string]: value },
    policies: { apiKey: only('api-key').id, jwt: jwt.id, rbac: only('rbac').id, openapi: only('openapi-validate').id },
  };
}
