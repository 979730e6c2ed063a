/**
 * The unified API's validation names the field a client must fix, in OpenAI's `param` style.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import { firstProblem, paramOf, validateChat, validateEmbeddings } from './schema.ts';

function problemOf(body: unknown): { param: string; problem: string } {
  assert.equal(validateChat(body), false, JSON.stringify(body));
  return firstProblem(validateChat.errors);
}

void test('paramOf: JSON pointers in OpenAI param style', () => {
  assert.equal(paramOf(''), 'body');
  assert.equal(paramOf('/temperature'), 'temperature');
  assert.equal(paramOf('/messages/2/content/0/type'), 'messages[2].content[0].type');
  assert.equal(paramOf('/logit_bias/a~1b'), 'logit_bias.a/b');
});

void test('a missing required field is named itself, at the top level and below', () => {
  assert.deepEqual(problemOf({ model: 'm' }), { param: 'messages', problem: 'is required' });
  assert.deepEqual(problemOf({ messages: [{ role: 'user', content: 'x' }] }), { param: 'model', problem: 'is required' });
  assert.deepEqual(problemOf({ model: 'm', messages: [{ content: 'x' }] }), { param: 'messages[0].role', problem: 'is required' });
  assert.equal(validateEmbeddings({ model: 'm' }), false);
  assert.equal(firstProblem(validateEmbeddings.errors).param, 'input');
});

void test('an out-of-range or wrong-typed field is named', () => {
  assert.equal(problemOf({ model: 'm', messages: [{ role: 'user', content: 'x' }], temperature: 3 }).param, 'temperature');
  assert.equal(problemOf({ model: 'm', messages: [{ role: 'wizard', content: 'x' }] }).param, 'messages[0].role');
});

void test('an unknown field of a closed object is named itself', () => {
  const validate = new Ajv({ allErrors: true }).compile({ type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false });
  assert.equal(validate({ text: 'x', colour: 'red' }), false);
  assert.deepEqual(firstProblem(validate.errors), { param: 'colour', problem: 'is not a known field' });
  assert.equal(validate({}), false);
  assert.deepEqual(firstProblem(validate.errors), { param: 'text', problem: 'is required' });
  assert.deepEqual(firstProblem([]), { param: 'body', problem: 'invalid' });
});
