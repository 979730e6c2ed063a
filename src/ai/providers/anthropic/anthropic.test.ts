import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSse } from '../../sse.ts';
import { UnsupportedParameterError } from '../../types.ts';
import type { ChatCompletionChunk, ChatRequest, ProviderError, ProviderTarget, ResponseContext, StreamStep, Usage } from '../../types.ts';
import { anthropic, anthropicNative, ANTHROPIC_DEFAULT_MAX_TOKENS, JSON_TOOL_NAME, NativeStreamWatcher } from './index.ts';

function fixture(name: string): string {
  return readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');
}

function fixtureJson(name: string): unknown {
  return JSON.parse(fixture(name)) as unknown;
}

const target: ProviderTarget = {
  providerId: 'claude',
  type: 'anthropic',
  baseUrl: 'https://api.anthropic.com',
  model: 'claude-sonnet-4-6',
  headers: {},
};

const ctx: ResponseContext = { id: 'chatcmpl-gw0001', created: 1767225600, model: 'smart' };

const USER_HI = { role: 'user', content: 'Hi' } as const;

/** The JSON body the adapter sends for `req`. */
function wire(req: Omit<ChatRequest, 'model'>): unknown {
  const call = anthropic.chat({ model: 'smart', ...req }, target, 'sk-ant-test');
  assert.ok(call.body !== undefined);
  return JSON.parse(call.body) as unknown;
}

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'claude-sonnet-4-6', max_tokens: ANTHROPIC_DEFAULT_MAX_TOKENS, ...extra };
}

/** Asserts `fn` throws UnsupportedParameterError for `param`. */
function assertUnsupported(fn: () => unknown, param: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UnsupportedParameterError, `expected UnsupportedParameterError, got ${String(e)}`);
    assert.equal(e.param, param);
    assert.equal(e.provider, 'anthropic');
    assert.ok(e.accepted.length > 0);
    return true;
  });
}

void describe('anthropic adapter: the call', () => {
  void test('adapter identity', () => {
    assert.equal(anthropic.type, 'anthropic');
    assert.equal(anthropic.defaultBaseUrl, 'https://api.anthropic.com');
    assert.deepEqual(anthropic.requestIdHeaders, ['request-id']);
    assert.equal('embeddings' in anthropic, false);
    assert.equal('embeddingsResult' in anthropic, false);
  });

  void test('POST {base}/v1/messages with x-api-key, anthropic-version 2023-06-01 and config headers', () => {
    const call = anthropic.chat({ model: 'smart', messages: [USER_HI] }, { ...target, baseUrl: 'https://llm.example.com/anthropic', headers: { 'X-Team': 'search', 'anthropic-beta': 'b1' } }, 'sk-ant-test');
    assert.equal(call.method, 'POST');
    assert.equal(call.url, 'https://llm.example.com/anthropic/v1/messages');
    assert.deepEqual(call.headers, {
      'x-team': 'search',
      'anthropic-beta': 'b1',
      'x-api-key': 'sk-ant-test',
      'anthropic-version': '2023-06-01',
      'content-type': 'application/json',
    });
  });

  void test('config headers cannot replace the credential, version or content type', () => {
    const call = anthropic.chat({ model: 'smart', messages: [USER_HI] }, { ...target, headers: { 'X-Api-Key': 'other', 'anthropic-version': '2026-10-21', 'Content-Type': 'text/plain' } }, 'sk-ant-test');
    assert.equal(call.headers['x-api-key'], 'sk-ant-test');
    assert.equal(call.headers['anthropic-version'], '2023-06-01');
    assert.equal(call.headers['content-type'], 'application/json');
  });

  void test('no key, no x-api-key header', () => {
    const call = anthropic.chat({ model: 'smart', messages: [USER_HI] }, target, undefined);
    assert.equal('x-api-key' in call.headers, false);
  });
});

void describe('anthropic request mapping', () => {
  void test('defaults: model is the target model, max_tokens is the documented default', () => {
    assert.equal(ANTHROPIC_DEFAULT_MAX_TOKENS, 4096);
    assert.deepEqual(wire({ messages: [USER_HI] }), base({ messages: [{ role: 'user', content: 'Hi' }] }));
  });

  void test('max_completion_tokens wins over max_tokens; max_tokens alone is used', () => {
    assert.equal((wire({ messages: [USER_HI], max_tokens: 100, max_completion_tokens: 200 }) as { max_tokens: number }).max_tokens, 200);
    assert.equal((wire({ messages: [USER_HI], max_tokens: 100 }) as { max_tokens: number }).max_tokens, 100);
  });

  void test('scalar parameters: stop, temperature, top_p, user, stream', () => {
    assert.deepEqual(
      wire({ messages: [USER_HI], stop: 'END', temperature: 0.2, top_p: 0.9, user: 'u-42', stream: true, stream_options: { include_usage: true } }),
      base({ messages: [{ role: 'user', content: 'Hi' }], stop_sequences: ['END'], temperature: 0.2, top_p: 0.9, metadata: { user_id: 'u-42' }, stream: true }),
    );
    assert.deepEqual((wire({ messages: [USER_HI], stop: ['a', 'b'] }) as { stop_sequences: unknown }).stop_sequences, ['a', 'b']);
  });

  void test('system and developer messages become top-level system blocks, wherever they are', () => {
    assert.deepEqual(
      wire({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] },
          USER_HI,
          { role: 'system', content: '' },
          { role: 'system', content: 'Never use emoji.' },
        ],
      }),
      base({
        system: [
          { type: 'text', text: 'Be brief.' },
          { type: 'text', text: 'Answer in French.' },
          { type: 'text', text: 'Never use emoji.' },
        ],
        messages: [{ role: 'user', content: 'Hi' }],
      }),
    );
  });

  void test('images: data: URL → base64 source, https URL → url source', () => {
    assert.deepEqual(
      wire({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is in these?' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
              { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'high' } },
              { type: 'image_url', image_url: { url: 'data:image/webp;name=x.webp;base64,UklGRg==', detail: 'auto' } },
            ],
          },
        ],
      }),
      base({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is in these?' },
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
              { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
              { type: 'image', source: { type: 'base64', media_type: 'image/webp', data: 'UklGRg==' } },
            ],
          },
        ],
      }),
    );
  });

  void test('assistant tool_calls → tool_use, tool messages → one user turn of tool_results, then the next user text', () => {
    assert.deepEqual(
      wire({
        messages: [
          { role: 'user', content: 'Weather in SF and Paris?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"SF"}' } },
              { id: 'toolu_2', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } },
            ],
          },
          { role: 'tool', tool_call_id: 'toolu_1', content: '18C', name: 'get_weather' },
          { role: 'tool', tool_call_id: 'toolu_2', content: [{ type: 'text', text: '21C' }] },
          { role: 'user', content: 'Which is warmer?' },
        ],
      }),
      base({
        messages: [
          { role: 'user', content: 'Weather in SF and Paris?' },
          {
            role: 'assistant',
            content: [
              { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { location: 'SF' } },
              { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { location: 'Paris' } },
            ],
          },
          {
            role: 'user',
            content: [
              { type: 'tool_result', tool_use_id: 'toolu_1', content: '18C' },
              { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: '21C' }] },
              { type: 'text', text: 'Which is warmer?' },
            ],
          },
        ],
      }),
    );
  });

  void test('assistant text before its tool calls is kept, in order', () => {
    assert.deepEqual(
      wire({
        messages: [
          USER_HI,
          { role: 'assistant', content: 'Let me look.', tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'lookup', arguments: '{}' } }] },
          { role: 'tool', tool_call_id: 'toolu_1', content: null },
        ],
      }),
      base({
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: [{ type: 'text', text: 'Let me look.' }, { type: 'tool_use', id: 'toolu_1', name: 'lookup', input: {} }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1' }] },
        ],
      }),
    );
  });

  void test('consecutive same-role messages merge; tool_results go first in a merged user turn', () => {
    assert.deepEqual(
      wire({
        messages: [
          { role: 'user', content: 'one' },
          { role: 'user', content: [{ type: 'text', text: 'two' }] },
          { role: 'assistant', content: 'a' },
          { role: 'assistant', content: 'b' },
          { role: 'user', content: 'three' },
          { role: 'tool', tool_call_id: 'toolu_9', content: 'r' },
        ],
      }),
      base({
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }] },
          { role: 'assistant', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_9', content: 'r' }, { type: 'text', text: 'three' }] },
        ],
      }),
    );
  });

  void test('tools → {name, description, input_schema}; missing parameters → empty object schema; strict kept', () => {
    const params = { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] };
    assert.deepEqual(
      wire({
        messages: [USER_HI],
        tools: [
          { type: 'function', function: { name: 'get_weather', description: 'Weather now', parameters: params, strict: true } },
          { type: 'function', function: { name: 'ping' } },
        ],
      }),
      base({
        messages: [{ role: 'user', content: 'Hi' }],
        tools: [
          { name: 'get_weather', description: 'Weather now', input_schema: params, strict: true },
          { name: 'ping', input_schema: { type: 'object', properties: {} } },
        ],
      }),
    );
  });

  const tools = [{ type: 'function', function: { name: 'f' } }] as const;
  const choiceCases: readonly { name: string; req: Partial<ChatRequest>; choice: unknown }[] = [
    { name: 'auto', req: { tool_choice: 'auto' }, choice: { type: 'auto' } },
    { name: 'required', req: { tool_choice: 'required' }, choice: { type: 'any' } },
    { name: 'none', req: { tool_choice: 'none' }, choice: { type: 'none' } },
    { name: 'function', req: { tool_choice: { type: 'function', function: { name: 'f' } } }, choice: { type: 'tool', name: 'f' } },
    { name: 'absent', req: {}, choice: undefined },
    { name: 'parallel off, no choice', req: { parallel_tool_calls: false }, choice: { type: 'auto', disable_parallel_tool_use: true } },
    { name: 'parallel off, required', req: { tool_choice: 'required', parallel_tool_calls: false }, choice: { type: 'any', disable_parallel_tool_use: true } },
    { name: 'parallel off, function', req: { tool_choice: { type: 'function', function: { name: 'f' } }, parallel_tool_calls: false }, choice: { type: 'tool', name: 'f', disable_parallel_tool_use: true } },
    { name: 'parallel on', req: { tool_choice: 'auto', parallel_tool_calls: true }, choice: { type: 'auto' } },
  ];
  for (const c of choiceCases) {
    void test(`tool_choice: ${c.name}`, () => {
      const body = wire({ messages: [USER_HI], tools, ...c.req }) as { tool_choice?: unknown };
      assert.deepEqual(body.tool_choice, c.choice);
    });
  }

  void test('JSON mode, json_schema: one forced tool with the schema', () => {
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const body = wire({ messages: [USER_HI], response_format: { type: 'json_schema', json_schema: { name: 'city', schema, strict: true, description: 'A city' } } }) as Record<string, unknown>;
    assert.deepEqual(body['tools'], [{ name: JSON_TOOL_NAME, description: 'A city', input_schema: schema, strict: true }]);
    assert.deepEqual(body['tool_choice'], { type: 'tool', name: JSON_TOOL_NAME });
  });

  void test('JSON mode, json_object: schema {type: object}; text format changes nothing', () => {
    const body = wire({ messages: [USER_HI], response_format: { type: 'json_object' } }) as { tools: { name: string; input_schema: unknown }[]; tool_choice: unknown };
    assert.equal(body.tools.length, 1);
    assert.equal(body.tools[0]?.name, JSON_TOOL_NAME);
    assert.deepEqual(body.tools[0]?.input_schema, { type: 'object' });
    assert.deepEqual(body.tool_choice, { type: 'tool', name: JSON_TOOL_NAME });
    assert.deepEqual(wire({ messages: [USER_HI], response_format: { type: 'text' } }), base({ messages: [{ role: 'user', content: 'Hi' }] }));
  });

  void test('boundary values that Anthropic honours pass', () => {
    assert.doesNotThrow(() =>
      wire({ messages: [USER_HI], temperature: 1, n: 1, logprobs: false, top_logprobs: 0, logit_bias: {}, presence_penalty: 0, frequency_penalty: 0 }),
    );
  });

  const unsupportedCases: readonly { name: string; req: Omit<ChatRequest, 'model'>; param: string }[] = [
    { name: 'temperature above 1', req: { messages: [USER_HI], temperature: 1.5 }, param: 'temperature' },
    { name: 'n above 1', req: { messages: [USER_HI], n: 2 }, param: 'n' },
    { name: 'seed', req: { messages: [USER_HI], seed: 7 }, param: 'seed' },
    { name: 'logprobs', req: { messages: [USER_HI], logprobs: true }, param: 'logprobs' },
    { name: 'top_logprobs', req: { messages: [USER_HI], top_logprobs: 3 }, param: 'top_logprobs' },
    { name: 'logit_bias', req: { messages: [USER_HI], logit_bias: { '50256': -100 } }, param: 'logit_bias' },
    { name: 'presence_penalty', req: { messages: [USER_HI], presence_penalty: 0.5 }, param: 'presence_penalty' },
    { name: 'frequency_penalty', req: { messages: [USER_HI], frequency_penalty: -1 }, param: 'frequency_penalty' },
    {
      name: 'http image URL',
      req: { messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }, { type: 'image_url', image_url: { url: 'http://example.com/a.png' } }] }] },
      param: 'messages[0].content[1].image_url.url',
    },
    {
      name: 'ftp image URL',
      req: { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'ftp://example.com/a.png' } }] }] },
      param: 'messages[0].content[0].image_url.url',
    },
    {
      name: 'data: URL of a type Anthropic does not read',
      req: { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/svg+xml;base64,PHN2Zz4=' } }] }] },
      param: 'messages[0].content[0].image_url.url',
    },
    {
      name: 'data: URL not base64',
      req: { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png,rawbytes' } }] }] },
      param: 'messages[0].content[0].image_url.url',
    },
    {
      name: 'image detail low',
      req: { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } }] }] },
      param: 'messages[0].content[0].image_url.detail',
    },
    {
      name: 'image in a system message',
      req: { messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }, USER_HI] },
      param: 'messages[0].content[0]',
    },
    {
      name: 'image in an assistant message',
      req: { messages: [USER_HI, { role: 'assistant', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }] },
      param: 'messages[1].content[0]',
    },
    {
      name: 'tool call arguments that are not JSON',
      req: {
        messages: [
          USER_HI,
          {
            role: 'assistant',
            tool_calls: [
              { id: 't0', type: 'function', function: { name: 'f', arguments: '{}' } },
              { id: 't1', type: 'function', function: { name: 'f', arguments: '{"a":' } },
            ],
          },
        ],
      },
      param: 'messages[1].tool_calls[1].function.arguments',
    },
    {
      name: 'tool call arguments that are JSON but not an object',
      req: { messages: [USER_HI, { role: 'assistant', tool_calls: [{ id: 't0', type: 'function', function: { name: 'f', arguments: '[1,2]' } }] }] },
      param: 'messages[1].tool_calls[0].function.arguments',
    },
    { name: 'tool message without tool_call_id', req: { messages: [USER_HI, { role: 'tool', content: 'r' }] }, param: 'messages[1].tool_call_id' },
    { name: 'participant name', req: { messages: [{ role: 'user', content: 'Hi', name: 'alice' }] }, param: 'messages[0].name' },
    {
      name: 'JSON mode together with tools',
      req: { messages: [USER_HI], tools, response_format: { type: 'json_object' } },
      param: 'response_format',
    },
    {
      name: 'JSON schema whose root is not an object',
      req: { messages: [USER_HI], response_format: { type: 'json_schema', json_schema: { name: 'list', schema: { type: 'array', items: { type: 'string' } } } } },
      param: 'response_format.json_schema.schema',
    },
    {
      name: 'a client tool with the reserved JSON-mode name',
      req: { messages: [USER_HI], tools: [{ type: 'function', function: { name: 'a' } }, { type: 'function', function: { name: JSON_TOOL_NAME } }] },
      param: 'tools[1].function.name',
    },
  ];
  for (const c of unsupportedCases) {
    void test(`UnsupportedParameterError: ${c.name}`, () => {
      assertUnsupported(() => anthropic.chat({ model: 'smart', ...c.req }, target, 'k'), c.param);
    });
  }
});

void describe('anthropic response mapping', () => {
  void test('text blocks are joined into content; ids and model are the gateway\u2019s', () => {
    assert.deepEqual(anthropic.chatResult(fixtureJson('response-text.json'), ctx), {
      id: 'chatcmpl-gw0001',
      object: 'chat.completion',
      created: 1767225600,
      model: 'smart',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! How can I help you today?', refusal: null }, finish_reason: 'stop', logprobs: null }],
      usage: { prompt_tokens: 12, completion_tokens: 11, total_tokens: 23 },
    });
  });

  void test('tool_use blocks → tool_calls; prompt tokens include cache writes and reads', () => {
    assert.deepEqual(anthropic.chatResult(fixtureJson('response-tool-use.json'), ctx), {
      id: 'chatcmpl-gw0001',
      object: 'chat.completion',
      created: 1767225600,
      model: 'smart',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: "I'll check the weather in both cities.",
            tool_calls: [
              { id: 'toolu_01A09q90qw90lq917835lq9', type: 'function', function: { name: 'get_weather', arguments: '{"location":"San Francisco, CA","unit":"celsius"}' } },
              { id: 'toolu_01B3kRkqPb2gW6CqUEp5xCfm', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris, France","unit":"celsius"}' } },
            ],
            refusal: null,
          },
          finish_reason: 'tool_calls',
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: 472 + 1024 + 2048, completion_tokens: 131, total_tokens: 472 + 1024 + 2048 + 131 },
    });
  });

  void test('JSON mode: the forced tool input is the content, finish_reason stop', () => {
    const r = anthropic.chatResult(fixtureJson('response-json-mode.json'), ctx);
    const choice = r.choices[0];
    assert.ok(choice !== undefined);
    assert.equal(choice.finish_reason, 'stop');
    assert.equal(choice.message.tool_calls, undefined);
    assert.deepEqual(JSON.parse(choice.message.content ?? ''), { city: 'Paris', population: 2102650 });
    assert.deepEqual(r.usage, { prompt_tokens: 389, completion_tokens: 42, total_tokens: 431 });
  });

  const stops: readonly [string, string][] = [
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['model_context_window_exceeded', 'length'],
    ['tool_use', 'tool_calls'],
    ['refusal', 'content_filter'],
    ['pause_turn', 'stop'],
  ];
  for (const [stop, finish] of stops) {
    void test(`stop_reason ${stop} → ${finish}`, () => {
      const body = { ...(fixtureJson('response-text.json') as Record<string, unknown>), stop_reason: stop };
      assert.equal(anthropic.chatResult(body, ctx).choices[0]?.finish_reason, finish);
    });
  }

  void test('only tool calls: content is null', () => {
    const body = fixtureJson('response-tool-use.json') as { content: { type: string }[] };
    const r = anthropic.chatResult({ ...body, content: body.content.filter((b) => b.type === 'tool_use') }, ctx);
    assert.equal(r.choices[0]?.message.content, null);
    assert.equal(r.choices[0]?.message.tool_calls?.length, 2);
  });

  void test('a body that is not an object is refused', () => {
    assert.throws(() => anthropic.chatResult('nope', ctx), TypeError);
  });
});

/** Every step of one stream fixture, the end() step included. */
function run(name: string, req: Partial<ChatRequest> = {}): StreamStep[] {
  const mapper = anthropic.chatStream(ctx, { model: 'smart', messages: [USER_HI], stream: true, ...req });
  return [...parseSse(fixture(name)).map((ev) => mapper.event(ev)), mapper.end()];
}

function chunk(delta: ChatCompletionChunk['choices'][number]['delta'], finish: ChatCompletionChunk['choices'][number]['finish_reason'] = null, withUsage = false): ChatCompletionChunk {
  return {
    id: 'chatcmpl-gw0001',
    object: 'chat.completion.chunk',
    created: 1767225600,
    model: 'smart',
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...(withUsage ? { usage: null } : {}),
  };
}

function lastUsage(steps: readonly StreamStep[]): Usage | undefined {
  return steps.reduce<Usage | undefined>((u, s) => s.usage ?? u, undefined);
}

void describe('anthropic stream mapping', () => {
  void test('text stream: role chunk, content deltas, finish chunk; done on message_stop', () => {
    const steps = run('stream-text.sse');
    assert.deepEqual(
      steps.flatMap((s) => s.chunks),
      [chunk({ role: 'assistant', content: '' }), chunk({ content: 'Hello' }), chunk({ content: '! How can I help?' }), chunk({}, 'stop')],
    );
    assert.equal(steps.filter((s) => s.done === true).length, 1);
    assert.equal(steps.at(-2)?.done, true, 'message_stop is the done step');
    assert.deepEqual(steps[0]?.usage, { prompt_tokens: 25, completion_tokens: 1, total_tokens: 26 }, 'message_start reports usage so far');
    assert.deepEqual(lastUsage(steps), { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 });
    assert.equal(steps.some((s) => s.error !== undefined), false);
  });

  void test('include_usage: usage null on every chunk, then a final usage chunk with no choices', () => {
    const chunks = run('stream-text.sse', { stream_options: { include_usage: true } }).flatMap((s) => s.chunks);
    assert.deepEqual(chunks, [
      chunk({ role: 'assistant', content: '' }, null, true),
      chunk({ content: 'Hello' }, null, true),
      chunk({ content: '! How can I help?' }, null, true),
      chunk({}, 'stop', true),
      { id: 'chatcmpl-gw0001', object: 'chat.completion.chunk', created: 1767225600, model: 'smart', choices: [], usage: { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 } },
    ]);
  });

  void test('tool_use stream: tool_calls numbered by tool block, arguments streamed under the same index', () => {
    const steps = run('stream-tool-use.sse');
    assert.deepEqual(
      steps.flatMap((s) => s.chunks),
      [
        chunk({ role: 'assistant', content: '' }),
        chunk({ content: 'Checking both cities.' }),
        chunk({ tool_calls: [{ index: 0, id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"location": "San Fra' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: 'ncisco, CA"}' } }] }),
        chunk({ tool_calls: [{ index: 1, id: 'toolu_01CVnBsYWNc8Ff2kTzZsK9Qm', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
        chunk({ tool_calls: [{ index: 1, function: { arguments: '{"location": "Paris"}' } }] }),
        chunk({}, 'tool_calls'),
      ],
    );
    assert.deepEqual(lastUsage(steps), { prompt_tokens: 472 + 128, completion_tokens: 89, total_tokens: 472 + 128 + 89 });
  });

  void test('JSON mode stream: the forced tool input streams as content, finish_reason stop', () => {
    const steps = run('stream-json-mode.sse', { response_format: { type: 'json_object' } });
    const chunks = steps.flatMap((s) => s.chunks);
    assert.deepEqual(chunks, [
      chunk({ role: 'assistant', content: '' }),
      chunk({ content: '{"city": "Par' }),
      chunk({ content: 'is", "population": 2102650}' }),
      chunk({}, 'stop'),
    ]);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    assert.deepEqual(JSON.parse(text), { city: 'Paris', population: 2102650 });
  });

  void test('event: error after the 200 → StreamStep.error as a 529 overloaded ProviderError', () => {
    const steps = run('stream-error-overloaded.sse');
    assert.deepEqual(
      steps.flatMap((s) => s.chunks),
      [chunk({ role: 'assistant', content: '' }), chunk({ content: 'Once upon' })],
    );
    const errors = steps.flatMap((s) => (s.error !== undefined ? [s.error] : []));
    assert.deepEqual(errors, [
      { status: 529, kind: 'overloaded', type: 'overloaded_error', code: null, message: 'Overloaded', requestId: null, retryAfterMs: null, param: null },
    ]);
    assert.equal(steps.some((s) => s.done === true), false);
  });

  const streamErrorCases: readonly [string, number, ProviderError['kind']][] = [
    ['api_error', 500, 'server'],
    ['rate_limit_error', 429, 'rate_limited'],
    ['invalid_request_error', 400, 'bad_request'],
    ['timeout_error', 504, 'timeout'],
    ['billing_error', 402, 'quota'],
    ['permission_error', 403, 'permission'],
    ['something_new_error', 500, 'server'],
  ];
  for (const [type, status, kind] of streamErrorCases) {
    void test(`in-stream ${type} → status ${status}, kind ${kind}`, () => {
      const mapper = anthropic.chatStream(ctx, { model: 'smart', messages: [USER_HI] });
      const step = mapper.event({ event: 'error', data: JSON.stringify({ type: 'error', error: { type, message: 'm' }, request_id: 'req_s1' }) });
      assert.equal(step.error?.status, status);
      assert.equal(step.error?.kind, kind);
      assert.equal(step.error?.type, type);
      assert.equal(step.error?.requestId, 'req_s1');
    });
  }

  void test('ping, content_block_stop, unknown events and thinking deltas send nothing', () => {
    const mapper = anthropic.chatStream(ctx, { model: 'smart', messages: [USER_HI] });
    for (const ev of [
      { event: 'ping', data: '{"type":"ping"}' },
      { event: 'content_block_stop', data: '{"type":"content_block_stop","index":0}' },
      { event: 'brand_new_event', data: '{"type":"brand_new_event"}' },
      { event: 'content_block_start', data: '{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}' },
      { event: 'content_block_delta', data: '{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}' },
    ]) {
      const step = mapper.event(ev);
      assert.deepEqual(step.chunks, [], ev.event);
      assert.equal(step.error, undefined, ev.event);
      assert.equal(step.done, undefined, ev.event);
    }
  });

  void test('a known event whose data is not JSON ends the stream with an error', () => {
    const mapper = anthropic.chatStream(ctx, { model: 'smart', messages: [USER_HI] });
    const step = mapper.event({ event: 'content_block_delta', data: '{"type":' });
    assert.equal(step.error?.status, 502);
    assert.equal(step.error?.type, null);
    assert.deepEqual(mapper.event({ event: 'message_stop', data: '{"type":"message_stop"}' }), { chunks: [] });
  });

  void test('events after message_stop are ignored', () => {
    const mapper = anthropic.chatStream(ctx, { model: 'smart', messages: [USER_HI] });
    for (const ev of parseSse(fixture('stream-text.sse'))) mapper.event(ev);
    assert.deepEqual(mapper.event({ event: 'content_block_delta', data: '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"late"}}' }), { chunks: [] });
  });
});

void describe('anthropic error parsing', () => {
  const cases: readonly {
    name: string;
    status: number;
    file: string;
    headers: Record<string, string>;
    expect: Partial<ProviderError>;
  }[] = [
    {
      name: '400 invalid_request_error, request id from the header',
      status: 400,
      file: 'error-400.json',
      headers: { 'request-id': 'req_from_header' },
      expect: { status: 400, kind: 'bad_request', type: 'invalid_request_error', code: null, requestId: 'req_from_header', retryAfterMs: null, param: null },
    },
    {
      name: '401 authentication_error, request id from the body',
      status: 401,
      file: 'error-401.json',
      headers: {},
      expect: { status: 401, kind: 'auth', type: 'authentication_error', requestId: 'req_011CSHoF1oUzdXkPXRpn5MZq', message: 'invalid x-api-key' },
    },
    {
      name: '429 rate_limit_error with retry-after seconds',
      status: 429,
      file: 'error-429.json',
      headers: { 'request-id': 'req_011CSHoG8bQkW2dTj3Vx7ReN', 'retry-after': '27' },
      expect: { status: 429, kind: 'rate_limited', type: 'rate_limit_error', retryAfterMs: 27_000 },
    },
    {
      name: '429 spend limit is quota, not a rate limit',
      status: 429,
      file: 'error-429-spend-limit.json',
      headers: {},
      expect: { status: 429, kind: 'quota', type: 'rate_limit_error', code: 'contract_spend_limit_reached' },
    },
    {
      name: '529 overloaded_error, retry-after-ms preferred',
      status: 529,
      file: 'error-529.json',
      headers: { 'retry-after-ms': '1500', 'retry-after': '2' },
      expect: { status: 529, kind: 'overloaded', type: 'overloaded_error', message: 'Overloaded', retryAfterMs: 1500, requestId: 'req_011CSHoJ5rNvBx8Ke1Pw3DyT' },
    },
    {
      name: '413 HTML from Cloudflare: too_large, no type',
      status: 413,
      file: 'error-413-cloudflare.html',
      headers: {},
      expect: { status: 413, kind: 'too_large', type: null, code: null, requestId: null },
    },
  ];
  for (const c of cases) {
    void test(c.name, () => {
      const e = anthropic.error(c.status, c.headers, fixture(c.file));
      for (const [k, v] of Object.entries(c.expect)) assert.deepEqual(e[k as keyof ProviderError], v, k);
    });
  }

  const byType: readonly [number, string, ProviderError['kind']][] = [
    [402, 'billing_error', 'quota'],
    [403, 'permission_error', 'permission'],
    [404, 'not_found_error', 'not_found'],
    [413, 'request_too_large', 'too_large'],
    [500, 'api_error', 'server'],
    [504, 'timeout_error', 'timeout'],
    [413, 'invalid_request_error', 'too_large'],
    [409, 'conflict_error', 'other'],
  ];
  for (const [status, type, kind] of byType) {
    void test(`${status} ${type} → ${kind}`, () => {
      const e = anthropic.error(status, {}, JSON.stringify({ type: 'error', error: { type, message: 'm' }, request_id: null }));
      assert.equal(e.kind, kind);
      assert.equal(e.type, type);
      assert.equal(e.status, status);
      assert.equal(e.requestId, null);
    });
  }

  void test('retry-after as an HTTP date is measured against the response Date header', () => {
    const e = anthropic.error(429, { date: 'Wed, 21 Oct 2026 07:28:00 GMT', 'retry-after': 'Wed, 21 Oct 2026 07:28:45 GMT' }, fixture('error-429.json'));
    assert.equal(e.retryAfterMs, 45_000);
    const noDate = anthropic.error(429, { 'retry-after': 'Wed, 21 Oct 2026 07:28:45 GMT' }, fixture('error-429.json'));
    assert.equal(noDate.retryAfterMs, null);
    const garbage = anthropic.error(429, { 'retry-after': 'soon' }, fixture('error-429.json'));
    assert.equal(garbage.retryAfterMs, null);
  });

  void test('a body that is not the envelope: its first 200 characters are in the message', () => {
    const html = fixture('error-413-cloudflare.html');
    assert.ok(anthropic.error(413, {}, html).message.includes('<title>413 Request Entity Too Large</title>'));
    const long = `<html>${'x'.repeat(300)}TAIL</html>`;
    const m = anthropic.error(502, {}, long).message;
    assert.ok(m.includes(long.slice(0, 200)));
    assert.equal(m.includes('TAIL'), false);
  });

  void test('an empty body still gives a ProviderError with the status', () => {
    const e = anthropic.error(503, {}, '');
    assert.equal(e.status, 503);
    assert.equal(e.kind, 'overloaded');
    assert.equal(e.type, null);
    assert.ok(e.message.length > 0);
    assert.equal(anthropic.error(500, {}, '   ').kind, 'server');
  });

  void test('JSON that is not Anthropic\u2019s envelope (another proxy\u2019s) has no type', () => {
    const e = anthropic.error(401, {}, '{"error":{"message":"bad key","code":"x"}}');
    assert.equal(e.type, null);
    assert.equal(e.kind, 'auth');
    assert.ok(e.message.includes('bad key'));
  });
});

void describe('anthropic native route helpers', () => {
  const clientBody = {
    model: 'claude-fast',
    max_tokens: 512,
    system: 'Be brief.',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi', cache_control: { type: 'ephemeral' } }] }],
    stream: true,
    thinking: { type: 'adaptive' },
  };

  void test('messages(): the client body as sent, model replaced by the target model', () => {
    const call = anthropicNative.messages(clientBody, target, 'sk-ant-test', {});
    assert.equal(call.method, 'POST');
    assert.equal(call.url, 'https://api.anthropic.com/v1/messages');
    assert.deepEqual(JSON.parse(call.body ?? ''), { ...clientBody, model: 'claude-sonnet-4-6' });
    assert.deepEqual(call.headers, { 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' });
  });

  void test('messages(): the client\u2019s anthropic-version and anthropic-beta pass through', () => {
    const call = anthropicNative.messages(clientBody, { ...target, headers: { 'anthropic-beta': 'cfg-beta' } }, 'k', { version: '2026-10-21', beta: 'files-api-2025-04-14' });
    assert.equal(call.headers['anthropic-version'], '2026-10-21');
    assert.equal(call.headers['anthropic-beta'], 'cfg-beta,files-api-2025-04-14');
    assert.equal(anthropicNative.messages(clientBody, target, 'k', { beta: 'b' }).headers['anthropic-beta'], 'b');
  });

  void test('check(): a valid body passes, max_tokens 0 (cache pre-warming) included', () => {
    assert.equal(anthropicNative.check(clientBody), undefined);
    assert.equal(anthropicNative.check({ ...clientBody, max_tokens: 0, temperature: 1 }), undefined);
    assert.equal(anthropicNative.check({ ...clientBody, top_k: 5, temperature: 0 }, '2023-06-01'), undefined);
  });

  const checkCases: readonly { name: string; body: unknown; version?: string; param: string }[] = [
    { name: 'not an object', body: [1], param: 'body' },
    { name: 'model missing', body: { ...clientBody, model: undefined }, param: 'model' },
    { name: 'model not a string', body: { ...clientBody, model: 42 }, param: 'model' },
    { name: 'max_tokens missing', body: { ...clientBody, max_tokens: undefined }, param: 'max_tokens' },
    { name: 'max_tokens negative', body: { ...clientBody, max_tokens: -1 }, param: 'max_tokens' },
    { name: 'max_tokens fractional', body: { ...clientBody, max_tokens: 10.5 }, param: 'max_tokens' },
    { name: 'max_tokens a string', body: { ...clientBody, max_tokens: '100' }, param: 'max_tokens' },
    { name: 'messages empty', body: { ...clientBody, messages: [] }, param: 'messages' },
    { name: 'messages not an array', body: { ...clientBody, messages: 'Hi' }, param: 'messages' },
    { name: 'temperature above 1', body: { ...clientBody, temperature: 1.2 }, param: 'temperature' },
    { name: 'temperature below 0', body: { ...clientBody, temperature: -0.1 }, param: 'temperature' },
    { name: 'temperature not a number', body: { ...clientBody, temperature: 'hot' }, param: 'temperature' },
    { name: 'temperature on 2026-10-21', body: { ...clientBody, temperature: 0.5 }, version: '2026-10-21', param: 'temperature' },
    { name: 'top_k on 2026-10-21', body: { ...clientBody, top_k: 5 }, version: '2026-10-21', param: 'top_k' },
  ];
  for (const c of checkCases) {
    void test(`check(): ${c.name} → ${c.param}`, () => {
      const e = anthropicNative.check(c.body, c.version);
      assert.ok(e instanceof UnsupportedParameterError);
      assert.equal(e.param, c.param);
    });
  }

  void test('usage(): a non-streamed response\u2019s usage, cache tokens counted as prompt tokens', () => {
    assert.deepEqual(anthropicNative.usage(fixtureJson('response-tool-use.json')), { prompt_tokens: 3544, completion_tokens: 131, total_tokens: 3675 });
    assert.equal(anthropicNative.usage({ type: 'message' }), undefined);
    assert.equal(anthropicNative.usage(null), undefined);
  });

  void test('NativeStreamWatcher: cumulative usage from message_start and message_delta', () => {
    const w = new NativeStreamWatcher();
    const reports = parseSse(fixture('stream-text.sse')).map((ev) => w.event(ev));
    assert.deepEqual(reports[0], { usage: { prompt_tokens: 25, completion_tokens: 1, total_tokens: 26 } });
    assert.deepEqual(reports.filter((r) => r.usage !== undefined).at(-1), { usage: { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 } });
    assert.equal(reports.some((r) => r.error !== undefined), false);
    assert.equal(anthropicNative.NativeStreamWatcher, NativeStreamWatcher);
  });

  void test('NativeStreamWatcher: an in-stream error is reported', () => {
    const w = new NativeStreamWatcher();
    const errors = parseSse(fixture('stream-error-overloaded.sse')).flatMap((ev) => {
      const r = w.event(ev);
      return r.error !== undefined ? [r.error] : [];
    });
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.status, 529);
    assert.equal(errors[0]?.kind, 'overloaded');
    assert.equal(errors[0]?.type, 'overloaded_error');
  });
});
