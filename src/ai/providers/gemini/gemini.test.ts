import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseSse } from '../../sse.ts';
import { UnsupportedParameterError } from '../../types.ts';
import type { ChatCompletionChunk, ChatMessage, ChatRequest, EmbeddingsRequest, HttpCall, ProviderTarget, ResponseContext, StreamStep } from '../../types.ts';
import { parseDuration } from './errors.ts';
import { gemini } from './index.ts';

const BASE = 'https://generativelanguage.googleapis.com/v1beta';
const target: ProviderTarget = { providerId: 'google', type: 'gemini', baseUrl: BASE, model: 'gemini-2.5-flash', headers: {} };
const ctx: ResponseContext = { id: 'chatcmpl-test1', created: 1_760_000_000, model: 'fast' };

function fixture(name: string): string {
  return readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
}
function json(name: string): unknown {
  return JSON.parse(fixture(name));
}
function chat(req: Partial<ChatRequest> & { messages: readonly ChatMessage[] }, t: ProviderTarget = target, key: string | undefined = 'AIza-test'): HttpCall {
  return gemini.chat({ model: 'fast', ...req }, t, key);
}
function body(call: HttpCall): unknown {
  assert.ok(call.body !== undefined);
  return JSON.parse(call.body);
}
const hi: readonly ChatMessage[] = [{ role: 'user', content: 'Hi' }];
function embed(req: EmbeddingsRequest, t: ProviderTarget, key: string | undefined): HttpCall {
  const call = gemini.embeddings?.(req, t, key);
  assert.ok(call, 'the adapter has embeddings');
  return call;
}

/** Runs the call builder and returns the UnsupportedParameterError it throws. */
function rejected(run: () => unknown): UnsupportedParameterError {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof UnsupportedParameterError, `expected UnsupportedParameterError, got ${String(err)}`);
    assert.equal(err.provider, 'gemini');
    assert.ok(err.accepted.length > 0);
    return err;
  }
  assert.fail('expected an UnsupportedParameterError');
}

function runStream(sseFile: string, req: Partial<ChatRequest> = {}): { steps: StreamStep[]; end: StreamStep; chunks: ChatCompletionChunk[] } {
  const mapper = gemini.chatStream(ctx, { model: 'fast', messages: hi, stream: true, ...req });
  const steps = parseSse(fixture(sseFile)).map((ev) => mapper.event(ev));
  const end = mapper.end();
  return { steps, end, chunks: [...steps.flatMap((s) => s.chunks), ...end.chunks] };
}

// ---------------------------------------------------------------------------------------------
// Adapter and HTTP call.

void test('adapter identity: type, default base URL, no documented request-id header', () => {
  assert.equal(gemini.type, 'gemini');
  assert.equal(gemini.defaultBaseUrl, BASE);
  assert.deepEqual(gemini.requestIdHeaders, []);
});

void test('chat URLs: generateContent, streamGenerateContent?alt=sse, batchEmbedContents', () => {
  const plain = chat({ messages: hi });
  assert.equal(plain.method, 'POST');
  assert.equal(plain.url, `${BASE}/models/gemini-2.5-flash:generateContent`);
  assert.equal(chat({ messages: hi, stream: true }).url, `${BASE}/models/gemini-2.5-flash:streamGenerateContent?alt=sse`);
  const emb = embed({ model: 'emb', input: 'x' }, { ...target, model: 'gemini-embedding-001' }, 'k');
  assert.equal(emb.method, 'POST');
  assert.equal(emb.url, `${BASE}/models/gemini-embedding-001:batchEmbedContents`);
});

void test('model ids: a models/ prefix is accepted, and the id cannot add path segments', () => {
  assert.equal(chat({ messages: hi }, { ...target, model: 'models/gemini-2.0-flash' }).url, `${BASE}/models/gemini-2.0-flash:generateContent`);
  assert.equal(chat({ messages: hi }, { ...target, model: '../files/x' }).url, `${BASE}/models/..%2Ffiles%2Fx:generateContent`);
});

void test('headers: x-goog-api-key and JSON content type; config headers lower-cased and unable to replace them', () => {
  const call = chat({ messages: hi }, { ...target, headers: { 'X-Goog-User-Project': 'proj-1', 'X-Goog-Api-Key': 'from-config', 'Content-Type': 'text/plain' } });
  assert.deepEqual(call.headers, { 'x-goog-user-project': 'proj-1', 'x-goog-api-key': 'AIza-test', 'content-type': 'application/json' });
  assert.deepEqual(gemini.chat({ model: 'fast', messages: hi }, target, undefined).headers, { 'content-type': 'application/json' });
});

// ---------------------------------------------------------------------------------------------
// Request mapping.

void test('a plain user message: contents only, no systemInstruction, tools or generationConfig', () => {
  assert.deepEqual(body(chat({ messages: hi })), { contents: [{ role: 'user', parts: [{ text: 'Hi' }] }] });
});

void test('system and developer messages → systemInstruction; user/assistant → user/model turns', () => {
  const got = body(
    chat({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] },
        { role: 'user', content: [{ type: 'text', text: 'Capital of ' }, { type: 'text', text: 'Italy?' }] },
        { role: 'assistant', content: 'Rome.' },
        { role: 'user', content: 'And Spain?' },
      ],
    }),
  );
  assert.deepEqual(got, {
    systemInstruction: { parts: [{ text: 'Be brief.' }, { text: 'Answer in French.' }] },
    contents: [
      { role: 'user', parts: [{ text: 'Capital of ' }, { text: 'Italy?' }] },
      { role: 'model', parts: [{ text: 'Rome.' }] },
      { role: 'user', parts: [{ text: 'And Spain?' }] },
    ],
  });
});

void test('data: image URLs → inlineData with the MIME type and base64 data', () => {
  const got = body(
    chat({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is this?' },
            { type: 'image_url', image_url: { url: 'data:image/PNG;base64,iVBORw0KGgo=' } },
            { type: 'image_url', image_url: { url: 'data:image/jpeg;name=a.jpg;base64,/9j/4AAQ', detail: 'auto' } },
          ],
        },
      ],
    }),
  );
  assert.deepEqual(got, {
    contents: [
      {
        role: 'user',
        parts: [{ text: 'What is this?' }, { inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } }, { inlineData: { mimeType: 'image/jpeg', data: '/9j/4AAQ' } }],
      },
    ],
  });
});

void test('tool calls → functionCall parts; tool results → functionResponse parts in one user turn', () => {
  const got = body(
    chat({
      messages: [
        { role: 'user', content: 'Weather and time in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_0', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } },
            { id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '{}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_0', content: '{"temp_c":21}' },
        { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: '14:05' }] },
        { role: 'user', content: 'Thanks. Tomorrow?' },
        { role: 'assistant', content: 'Checking.', tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'get_forecast', arguments: '{"days":1}' } }] },
        { role: 'tool', tool_call_id: 'call_0', content: 'sunny' },
      ],
    }),
  );
  assert.deepEqual(got, {
    contents: [
      { role: 'user', parts: [{ text: 'Weather and time in Paris?' }] },
      {
        role: 'model',
        parts: [{ functionCall: { name: 'get_weather', args: { location: 'Paris' } } }, { functionCall: { name: 'get_time', args: {} } }],
      },
      {
        role: 'user',
        parts: [
          { functionResponse: { name: 'get_weather', response: { temp_c: 21 } } },
          { functionResponse: { name: 'get_time', response: { output: '14:05' } } },
        ],
      },
      { role: 'user', parts: [{ text: 'Thanks. Tomorrow?' }] },
      // The same id reused in a later turn (as call_<n> ids are) names the later call.
      { role: 'model', parts: [{ text: 'Checking.' }, { functionCall: { name: 'get_forecast', args: { days: 1 } } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'get_forecast', response: { output: 'sunny' } } }] },
    ],
  });
});

void test('tools → functionDeclarations with the JSON Schema; tool_choice → functionCallingConfig', () => {
  const parameters = { type: 'object', properties: { location: { type: 'string' } }, required: ['location'], additionalProperties: false };
  const tools: ChatRequest['tools'] = [
    { type: 'function', function: { name: 'get_weather', description: 'Current weather', parameters } },
    { type: 'function', function: { name: 'ping' } },
  ];
  assert.deepEqual(body(chat({ messages: hi, tools })), {
    contents: [{ role: 'user', parts: [{ text: 'Hi' }] }],
    tools: [{ functionDeclarations: [{ name: 'get_weather', description: 'Current weather', parametersJsonSchema: parameters }, { name: 'ping' }] }],
  });
  const cases: readonly [ChatRequest['tool_choice'], unknown][] = [
    ['auto', { functionCallingConfig: { mode: 'AUTO' } }],
    ['required', { functionCallingConfig: { mode: 'ANY' } }],
    ['none', { functionCallingConfig: { mode: 'NONE' } }],
    [{ type: 'function', function: { name: 'ping' } }, { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['ping'] } }],
  ];
  for (const [choice, want] of cases) {
    const got = body(chat({ messages: hi, tools, tool_choice: choice }));
    assert.deepEqual((got as { toolConfig?: unknown }).toolConfig, want, JSON.stringify(choice));
  }
});

void test('sampling parameters → generationConfig', () => {
  const got = body(
    chat({
      messages: hi,
      temperature: 1.5,
      top_p: 0.9,
      max_completion_tokens: 256,
      stop: ['END', 'STOP', '###', '\n\n', 'Q:'],
      n: 2,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      seed: 42,
      user: 'end-user-1',
      parallel_tool_calls: true,
      logprobs: false,
    }),
  );
  assert.deepEqual((got as { generationConfig?: unknown }).generationConfig, {
    stopSequences: ['END', 'STOP', '###', '\n\n', 'Q:'],
    candidateCount: 2,
    maxOutputTokens: 256,
    temperature: 1.5,
    topP: 0.9,
    seed: 42,
    presencePenalty: 0.5,
    frequencyPenalty: -0.5,
  });
  assert.deepEqual((body(chat({ messages: hi, max_tokens: 64, stop: 'END' })) as { generationConfig?: unknown }).generationConfig, {
    stopSequences: ['END'],
    maxOutputTokens: 64,
  });
  assert.deepEqual((body(chat({ messages: hi, temperature: 0 })) as { generationConfig?: unknown }).generationConfig, { temperature: 0 });
});

void test('response_format → responseMimeType (+ responseJsonSchema)', () => {
  const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
  const gen = (rf: ChatRequest['response_format']): unknown => (body(chat({ messages: hi, response_format: rf })) as { generationConfig?: unknown }).generationConfig;
  assert.equal(gen({ type: 'text' }), undefined);
  assert.deepEqual(gen({ type: 'json_object' }), { responseMimeType: 'application/json' });
  assert.deepEqual(gen({ type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } }), { responseMimeType: 'application/json', responseJsonSchema: schema });
});

void test('every parameter Gemini cannot honour is an UnsupportedParameterError naming it', () => {
  const img = (url: string, detail?: 'low' | 'high'): ChatMessage => ({
    role: 'user',
    content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: detail ? { url, detail } : { url } }],
  });
  const call = (args: string): ChatMessage => ({ role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: args } }] });
  const cases: readonly [string, Partial<ChatRequest> & { messages: readonly ChatMessage[] }][] = [
    ['logprobs', { messages: hi, logprobs: true }],
    ['top_logprobs', { messages: hi, top_logprobs: 3 }],
    ['logit_bias', { messages: hi, logit_bias: { '50256': -100 } }],
    ['parallel_tool_calls', { messages: hi, parallel_tool_calls: false }],
    ['stop', { messages: hi, stop: ['a', 'b', 'c', 'd', 'e', 'f'] }],
    ['temperature', { messages: hi, temperature: 2.5 }],
    ['messages[0].content[1].image_url.url', { messages: [img('https://example.com/cat.png')] }],
    ['messages[0].content[1].image_url.url', { messages: [img('data:image/png,not-base64')] }],
    ['messages[0].content[1].image_url.detail', { messages: [img('data:image/png;base64,iVBORw0KGgo=', 'high')] }],
    ['messages[0].content[0]', { messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' } }] }, ...hi] }],
    ['messages[1].content[0]', { messages: [...hi, { role: 'assistant', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' } }] }] }],
    ['messages[1].tool_calls[0].function.arguments', { messages: [...hi, call('[1,2]')] }],
    ['messages[1].tool_calls[0].function.arguments', { messages: [...hi, call('{"a":')] }],
    ['messages[1].tool_calls[0].function.arguments', { messages: [...hi, call('null')] }],
    ['messages[2].tool_call_id', { messages: [...hi, call('{}'), { role: 'tool', tool_call_id: 'c2', content: 'x' }] }],
    ['messages[1].tool_call_id', { messages: [...hi, { role: 'tool', content: 'x' }] }],
    ['messages[3].content[0]', { messages: [...hi, call('{}'), { role: 'tool', tool_call_id: 'c1', content: 'ok' }, { role: 'tool', tool_call_id: 'c1', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' } }] }] }],
    ['messages[0].name', { messages: [{ role: 'user', content: 'Hi', name: 'alice' }] }],
    ['tools[1].function.strict', { messages: hi, tools: [{ type: 'function', function: { name: 'a' } }, { type: 'function', function: { name: 'b', strict: true } }] }],
  ];
  for (const [param, req] of cases) assert.equal(rejected(() => chat(req)).param, param, param);
});

// ---------------------------------------------------------------------------------------------
// Response mapping.

void test('text response → chat.completion with id/model/created from the context and usage incl. thinking', () => {
  const got = gemini.chatResult(json('generate-content-text.json'), ctx);
  assert.deepEqual(got, {
    id: 'chatcmpl-test1',
    object: 'chat.completion',
    created: 1_760_000_000,
    model: 'fast',
    choices: [{ index: 0, message: { role: 'assistant', content: 'The capital of France is Paris.' }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 8, completion_tokens: 37, total_tokens: 45 },
  });
});

void test('functionCall parts → tool_calls with call_<n> ids and JSON arguments; finish_reason tool_calls', () => {
  const got = gemini.chatResult(json('generate-content-function-call.json'), ctx);
  assert.equal(got.choices.length, 1);
  const choice = got.choices[0];
  assert.ok(choice);
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, null);
  assert.deepEqual(choice.message.tool_calls, [
    { id: 'call_0', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris","unit":"celsius"}' } },
    { id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '{"timezone":"Europe/Paris"}' } },
  ]);
  assert.deepEqual(got.usage, { prompt_tokens: 71, completion_tokens: 86, total_tokens: 157 });
});

void test('a blocked prompt → one empty choice with finish_reason content_filter', () => {
  const got = gemini.chatResult(json('generate-content-blocked-prompt.json'), ctx);
  assert.deepEqual(got.choices, [{ index: 0, message: { role: 'assistant', content: '' }, finish_reason: 'content_filter', logprobs: null }]);
  assert.deepEqual(got.usage, { prompt_tokens: 12, completion_tokens: 0, total_tokens: 12 });
});

void test('n candidates → n choices (a missing index is the proto3 default 0); text parts are joined', () => {
  const got = gemini.chatResult(json('generate-content-two-candidates.json'), ctx);
  assert.deepEqual(
    got.choices.map((c) => [c.index, c.message.content, c.finish_reason]),
    [
      [0, 'Paris', 'stop'],
      [1, 'The answer is Paris.', 'length'],
    ],
  );
});

void test('finishReason mapping', () => {
  const cases: readonly [string | undefined, string | null][] = [
    ['STOP', 'stop'],
    ['MAX_TOKENS', 'length'],
    ['SAFETY', 'content_filter'],
    ['RECITATION', 'content_filter'],
    ['BLOCKLIST', 'content_filter'],
    ['PROHIBITED_CONTENT', 'content_filter'],
    ['SPII', 'content_filter'],
    ['IMAGE_SAFETY', 'content_filter'],
    ['OTHER', 'stop'],
    ['MALFORMED_FUNCTION_CALL', 'stop'],
    ['FINISH_REASON_UNSPECIFIED', null],
    [undefined, null],
  ];
  for (const [reason, want] of cases) {
    const got = gemini.chatResult({ candidates: [{ content: { role: 'model', parts: [{ text: 'x' }] }, ...(reason ? { finishReason: reason } : {}) }] }, ctx);
    assert.equal(got.choices[0]?.finish_reason, want, String(reason));
  }
});

void test('thought summaries are not part of the answer', () => {
  const got = gemini.chatResult({ candidates: [{ content: { role: 'model', parts: [{ text: 'Thinking about it', thought: true }, { text: 'Paris.' }] }, finishReason: 'STOP' }] }, ctx);
  assert.equal(got.choices[0]?.message.content, 'Paris.');
  assert.equal(got.usage, undefined);
});

// ---------------------------------------------------------------------------------------------
// Streaming.

void test('stream: role on the first chunk only, text deltas, a finish chunk, cumulative usage', () => {
  const { steps, end, chunks } = runStream('stream-text.sse');
  assert.equal(steps.length, 3);
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.id, 'chatcmpl-test1');
    assert.equal(c.model, 'fast');
    assert.equal(c.created, 1_760_000_000);
  }
  const deltas = chunks.map((c) => c.choices[0]);
  assert.equal(deltas[0]?.delta.role, 'assistant');
  assert.ok(deltas.slice(1).every((d) => d?.delta.role === undefined));
  assert.equal(deltas.map((d) => d?.delta.content ?? '').join(''), 'The capital of France is Paris.');
  assert.deepEqual(
    chunks.map((c) => c.choices[0]?.finish_reason),
    [null, null, null, 'stop'],
  );
  assert.deepEqual(chunks.at(-1)?.choices[0]?.delta, {});
  assert.deepEqual(
    steps.map((s) => s.usage),
    [
      { prompt_tokens: 8, completion_tokens: 30, total_tokens: 38 },
      { prompt_tokens: 8, completion_tokens: 34, total_tokens: 42 },
      { prompt_tokens: 8, completion_tokens: 37, total_tokens: 45 },
    ],
  );
  assert.equal(end.done, true);
  assert.equal(end.chunks.length, 0);
});

void test('stream with include_usage: a last chunk with empty choices and the final usage', () => {
  const { end } = runStream('stream-text.sse', { stream_options: { include_usage: true } });
  assert.equal(end.done, true);
  assert.equal(end.chunks.length, 1);
  assert.deepEqual(end.chunks[0]?.choices, []);
  assert.deepEqual(end.chunks[0]?.usage, { prompt_tokens: 8, completion_tokens: 37, total_tokens: 45 });
  assert.deepEqual(end.usage, { prompt_tokens: 8, completion_tokens: 37, total_tokens: 45 });
});

void test('stream: a function call is one complete tool_calls delta; finish_reason tool_calls', () => {
  const { chunks } = runStream('stream-function-call.sse');
  const choices = chunks.map((c) => c.choices[0]);
  assert.deepEqual(choices[0]?.delta, { role: 'assistant', content: 'Let me look that up.' });
  assert.deepEqual(choices[1]?.delta.tool_calls, [
    { index: 0, id: 'call_0', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris","unit":"celsius"}' } },
    { index: 1, id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '{"timezone":"Europe/Paris"}' } },
  ]);
  assert.equal(choices[1]?.delta.role, undefined);
  assert.equal(choices.at(-1)?.finish_reason, 'tool_calls');
  assert.equal(chunks.length, 3);
});

void test('stream: an error object after the 200 → StreamStep.error from its google.rpc.Status', () => {
  const { steps } = runStream('stream-error.sse');
  assert.equal(steps[0]?.chunks.length, 1);
  const err = steps[1]?.error;
  assert.ok(err);
  assert.equal(steps[1]?.chunks.length, 0);
  assert.equal(err.status, 503);
  assert.equal(err.kind, 'overloaded');
  assert.equal(err.type, 'UNAVAILABLE');
  assert.equal(err.code, null);
});

void test('stream: an in-stream error with only a status name takes the status it maps to', () => {
  const mapper = gemini.chatStream(ctx, { model: 'fast', messages: hi, stream: true });
  const err = mapper.event({ data: '{"error":{"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}' }).error;
  assert.equal(err?.status, 429);
  assert.equal(err?.kind, 'rate_limited');
});

void test('stream: a blocked prompt → a content_filter finish chunk', () => {
  const { chunks, steps } = runStream('stream-blocked-prompt.sse');
  assert.equal(chunks.length, 1);
  assert.deepEqual(chunks[0]?.choices, [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: 'content_filter', logprobs: null }]);
  assert.deepEqual(steps[0]?.usage, { prompt_tokens: 14, completion_tokens: 0, total_tokens: 14 });
});

void test('stream: data that is not a JSON object is an error, blank data is nothing; include_usage without usage is null', () => {
  const mapper = gemini.chatStream(ctx, { model: 'fast', messages: hi, stream: true, stream_options: { include_usage: true } });
  assert.deepEqual(mapper.event({ data: '' }), { chunks: [] });
  const bad = mapper.event({ data: '<html>' });
  assert.equal(bad.chunks.length, 0);
  assert.equal(bad.error?.kind, 'other');
  assert.equal(mapper.event({ data: '[1]' }).error?.kind, 'other');
  const end = mapper.end();
  assert.equal(end.chunks[0]?.usage, null);
});

void test('stream: n candidates keep their indices; each choice gets its own role and finish', () => {
  const mapper = gemini.chatStream(ctx, { model: 'fast', messages: hi, stream: true, n: 2 });
  const a = mapper.event({ data: JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: 'A' }] } }, { index: 1, content: { role: 'model', parts: [{ text: 'B' }] } }] }) });
  const b = mapper.event({ data: JSON.stringify({ candidates: [{ finishReason: 'STOP' }, { index: 1, content: { role: 'model', parts: [{ text: 'b' }] }, finishReason: 'MAX_TOKENS' }] }) });
  const all = [...a.chunks, ...b.chunks].map((c) => c.choices[0]);
  assert.deepEqual(
    all.map((c) => [c?.index, c?.delta.role ?? null, c?.delta.content ?? null, c?.finish_reason]),
    [
      [0, 'assistant', 'A', null],
      [1, 'assistant', 'B', null],
      [0, null, null, 'stop'],
      [1, null, 'b', null],
      [1, null, null, 'length'],
    ],
  );
});

// ---------------------------------------------------------------------------------------------
// Embeddings.

void test('embeddings request → batchEmbedContents with one request per input', () => {
  const t = { ...target, model: 'gemini-embedding-001' };
  assert.deepEqual(body(embed({ model: 'emb', input: 'hello' }, t, 'k')), {
    requests: [{ model: 'models/gemini-embedding-001', content: { parts: [{ text: 'hello' }] } }],
  });
  assert.deepEqual(body(embed({ model: 'emb', input: ['a', 'b'], dimensions: 768 }, t, 'k')), {
    requests: [
      { model: 'models/gemini-embedding-001', content: { parts: [{ text: 'a' }] }, outputDimensionality: 768 },
      { model: 'models/gemini-embedding-001', content: { parts: [{ text: 'b' }] }, outputDimensionality: 768 },
    ],
  });
  assert.equal(embed({ model: 'emb', input: 'x' }, t, 'k').headers['x-goog-api-key'], 'k');
  const tokenInputs: readonly EmbeddingsRequest['input'][] = [[1, 2, 3], [[1, 2], [3]]];
  for (const input of tokenInputs) assert.equal(rejected(() => embed({ model: 'emb', input }, t, 'k')).param, 'input');
});

void test('batchEmbedContents response → OpenAI embeddings list, usage 0 (Gemini reports none)', () => {
  const raw = json('batch-embed-contents.json') as { embeddings: { values: number[] }[] };
  const got = gemini.embeddingsResult?.(raw, ctx);
  assert.ok(got, 'the adapter maps embeddings results');
  assert.equal(got.object, 'list');
  assert.equal(got.model, 'fast');
  assert.deepEqual(
    got.data,
    raw.embeddings.map((e, index) => ({ object: 'embedding', index, embedding: e.values })),
  );
  assert.equal(got.data.length, 2);
  assert.deepEqual(got.usage, { prompt_tokens: 0, total_tokens: 0 });
});

// ---------------------------------------------------------------------------------------------
// Errors.

void test('error bodies → status, kind, type (status name), code (ErrorInfo reason), retry delay', () => {
  const cases: readonly [string, number, string, string | null, string | null, number | null][] = [
    ['error-400-api-key-invalid.json', 400, 'auth', 'INVALID_ARGUMENT', 'API_KEY_INVALID', null],
    ['error-400-failed-precondition.json', 400, 'permission', 'FAILED_PRECONDITION', null, null],
    ['error-400-invalid-argument.json', 400, 'bad_request', 'INVALID_ARGUMENT', null, null],
    ['error-403-permission-denied.json', 403, 'permission', 'PERMISSION_DENIED', 'SERVICE_DISABLED', null],
    ['error-404-not-found.json', 404, 'not_found', 'NOT_FOUND', null, null],
    ['error-429-retry-info.json', 429, 'rate_limited', 'RESOURCE_EXHAUSTED', null, 17_479],
    ['error-429-per-day.json', 429, 'quota', 'RESOURCE_EXHAUSTED', null, null],
    ['error-500-internal.json', 500, 'server', 'INTERNAL', null, null],
    ['error-503-unavailable.json', 503, 'overloaded', 'UNAVAILABLE', null, null],
    ['error-504-deadline-exceeded.json', 504, 'timeout', 'DEADLINE_EXCEEDED', null, null],
    ['error-400-interactions.json', 400, 'bad_request', 'invalid_request', null, null],
  ];
  for (const [file, status, kind, type, code, retryAfterMs] of cases) {
    const text = fixture(file);
    const err = gemini.error(status, {}, text);
    const stated = (JSON.parse(text) as { error: { message: string } }).error.message;
    assert.deepEqual(
      { status: err.status, kind: err.kind, type: err.type, code: err.code, retryAfterMs: err.retryAfterMs, requestId: err.requestId, message: err.message },
      { status, kind, type, code, retryAfterMs, requestId: null, message: stated },
      file,
    );
  }
});

void test('a BadRequest field violation is the param the provider blamed', () => {
  assert.equal(gemini.error(400, {}, fixture('error-400-invalid-argument.json')).param, 'generation_config');
  assert.equal(gemini.error(400, {}, fixture('error-400-api-key-invalid.json')).param, null);
});

void test('retry delay: RetryInfo wins over Retry-After; Retry-After seconds are used without it', () => {
  assert.equal(gemini.error(429, { 'retry-after': '5' }, fixture('error-429-retry-info.json')).retryAfterMs, 17_479);
  assert.equal(gemini.error(429, { 'retry-after': '5' }, fixture('error-429-per-day.json')).retryAfterMs, 5_000);
  // An HTTP-date Retry-After is measured against the response's own Date; without one it is unusable.
  assert.equal(gemini.error(429, { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }, fixture('error-429-per-day.json')).retryAfterMs, null);
  assert.equal(gemini.error(429, { 'retry-after': 'Wed, 21 Oct 2015 07:28:30 GMT', date: 'Wed, 21 Oct 2015 07:28:00 GMT' }, fixture('error-429-per-day.json')).retryAfterMs, 30_000);
  const cases: readonly [unknown, number | null][] = [
    ['30s', 30_000],
    ['1.5s', 1_500],
    ['0s', 0],
    ['58.934310785s', 58_935],
    ['30', null],
    ['-1s', null],
    [30, null],
  ];
  for (const [v, want] of cases) assert.equal(parseDuration(v), want, String(v));
});

void test('foreign bodies (HTML, empty, JSON without error) still give a ProviderError with the status', () => {
  const html = fixture('error-502-html.html');
  const a = gemini.error(502, { 'retry-after': '30' }, html);
  assert.deepEqual(
    { status: a.status, kind: a.kind, type: a.type, code: a.code, retryAfterMs: a.retryAfterMs },
    { status: 502, kind: 'server', type: null, code: null, retryAfterMs: 30_000 },
  );
  // The start of the page, never the whole of it.
  assert.ok(a.message.startsWith(html.trim().slice(0, 200)) && a.message.length < html.trim().length, a.message);
  const b = gemini.error(503, {}, '');
  assert.deepEqual([b.status, b.kind, b.type], [503, 'overloaded', null]);
  assert.ok(b.message.length > 0);
  const c = gemini.error(429, {}, '{"message":"slow down"}');
  assert.deepEqual([c.status, c.kind, c.type, c.message], [429, 'rate_limited', null, '{"message":"slow down"}']);
});

void test('an error wrapped in a JSON array (non-SSE streaming) is read like a plain one', () => {
  const err = gemini.error(400, {}, `[${fixture('error-400-api-key-invalid.json')}]`);
  assert.deepEqual([err.kind, err.type, err.code], ['auth', 'INVALID_ARGUMENT', 'API_KEY_INVALID']);
});
