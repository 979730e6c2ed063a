/**
 * Shared pieces of the AI gateway's end-to-end tests: the gateway keys clients use (consumers and
 * an api-key policy), provider configs pointing at the mock providers, SDK clients pointed at the
 * gateway, and small readers for what the SDKs hand back.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { Dispatcher } from 'undici';
import type { Gateway } from './harness.ts';
import type { MockProviders, ReceivedRequest } from './mock-providers.ts';

/** The clients' gateway keys (given to the gateway through env, hashed at load). */
export const ALICE_KEY = 'pp_test_alice_9c41d7e2b5a80f36';
export const BOB_KEY = 'pp_test_bob_2e7f0a95c3d14b68';

/** The consumers and the api-key policy every AI route here runs first. */
export const CONSUMERS = [
  { id: 'alice', team: 'acme', credentials: { api_keys: [{ id: 'k_alice', key_env: 'ALICE_KEY' }] } },
  { id: 'bob', team: 'acme', credentials: { api_keys: [{ id: 'k_bob', key_env: 'BOB_KEY' }] } },
];
export const KEY_POLICY = { 'gw-keys': { type: 'api-key', config: { in: [{ from: 'bearer' }, { from: 'header', name: 'x-api-key' }] } } };

/** Environment for startGateway: the gateway keys and every mock provider key. */
export function aiEnv(mock: MockProviders, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return {
    ALICE_KEY,
    BOB_KEY,
    OPENAI_KEY: mock.keys.openai,
    AZURE_KEY: mock.keys.azure,
    MISTRAL_KEY: mock.keys.mistral,
    ANTHROPIC_KEY: mock.keys.anthropic,
    GEMINI_KEY: mock.keys.gemini,
    ...extra,
  };
}

/** One provider account of each type on the mock (loopback, so private networks are allowed). */
export function mockProviders(mock: MockProviders): Record<string, Record<string, unknown>> {
  const common = { allow_private_network: true };
  return {
    openai: { ...common, type: 'openai', base_url: mock.baseUrls.openai, keys: [{ id: 'k1', key_env: 'OPENAI_KEY' }], models: ['*'] },
    azure: { ...common, type: 'azure-openai', base_url: mock.baseUrls.azure, api_version: '2024-10-21', keys: [{ id: 'a1', key_env: 'AZURE_KEY' }] },
    mistral: { ...common, type: 'mistral', base_url: mock.baseUrls.mistral, keys: [{ id: 'm1', key_env: 'MISTRAL_KEY' }] },
    compat: { ...common, type: 'openai-compatible', base_url: mock.baseUrls.compat, models: ['*'] },
    anthropic: { ...common, type: 'anthropic', base_url: mock.baseUrls.anthropic, keys: [{ id: 'c1', key_env: 'ANTHROPIC_KEY' }] },
    gemini: { ...common, type: 'gemini', base_url: mock.baseUrls.gemini, keys: [{ id: 'g1', key_env: 'GEMINI_KEY' }] },
  };
}

export interface ClientOptions {
  readonly apiKey?: string;
  readonly maxRetries?: number;
  /** Path below the gateway root the OpenAI SDK's baseURL ends in (default `/v1`). */
  readonly base?: string;
  /** Counts every HTTP request the SDK makes (retries included), keeping the headers it sent. */
  readonly counter?: { n: number; headers?: Headers[] };
  /**
   * Connections of the client's own (closed by the test), instead of the process-wide fetch pool.
   * A pool connection left open without a request keeps the gateway's graceful shutdown waiting.
   */
  readonly dispatcher?: Dispatcher;
}

function counting(counter: ClientOptions['counter']): typeof fetch | undefined {
  if (counter === undefined) return undefined;
  return (input, init) => {
    counter.n++;
    counter.headers?.push(new Headers(init?.headers));
    return fetch(input, init);
  };
}

export function openaiClient(gw: Gateway, opts: ClientOptions = {}): OpenAI {
  const f = counting(opts.counter);
  return new OpenAI({
    apiKey: opts.apiKey ?? ALICE_KEY,
    baseURL: `${gw.url}${opts.base ?? '/v1'}`,
    maxRetries: opts.maxRetries ?? 0,
    timeout: 10_000,
    ...(f !== undefined ? { fetch: f } : {}),
    ...(opts.dispatcher !== undefined ? { fetchOptions: { dispatcher: opts.dispatcher } } : {}),
  });
}

export interface AnthropicClientOptions extends ClientOptions {
  /** Send the key as `x-api-key` (SDK ≤0.x style) instead of the 1.x default `Authorization: Bearer`. */
  readonly xApiKey?: boolean;
}

export function anthropicClient(gw: Gateway, opts: AnthropicClientOptions = {}): Anthropic {
  const key = opts.apiKey ?? ALICE_KEY;
  const f = counting(opts.counter);
  return new Anthropic({
    apiKey: key,
    baseURL: `${gw.url}${opts.base ?? ''}`,
    maxRetries: opts.maxRetries ?? 0,
    timeout: 10_000,
    // null removes the SDK's Authorization header, so the key travels only in x-api-key.
    ...(opts.xApiKey === true ? { defaultHeaders: { 'x-api-key': key, authorization: null } } : {}),
    ...(f !== undefined ? { fetch: f } : {}),
  });
}

/** The rejection of `p` (fails the test when it resolves). */
export async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return assert.fail('expected a rejection');
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A path into parsed JSON, for asserting bodies without `any`. */
export function at(v: unknown, ...path: (string | number)[]): unknown {
  let cur = v;
  for (const key of path) {
    if (typeof key === 'number') cur = Array.isArray(cur) ? (cur as unknown[])[key] : undefined;
    else cur = isRecord(cur) ? cur[key] : undefined;
  }
  return cur;
}

/** The error object an SDK error carries (OpenAI: `error` is the envelope's `error`; Anthropic: the whole body). */
export function errorObject(err: unknown): Record<string, unknown> {
  assert.ok(isRecord(err), `not an error object: ${inspect(err)}`);
  const e = err.error;
  assert.ok(isRecord(e), `no error body on ${inspect(err)}`);
  return e;
}

/** Every header value of a recorded provider request, flattened to text. */
export function headerText(r: ReceivedRequest): string {
  return Object.entries(r.headers)
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : (v ?? '')}`)
    .join('\n');
}
