import assert from 'node:assert/strict';
import { test } from 'node:test';
import { duplicateMember } from './duplicates.ts';

void test('duplicate member names are found with their JSON pointer', () => {
  const cases: readonly [string, string | undefined][] = [
    ['{"a":1,"b":2}', undefined],
    ['{"owner_id":"me","owner_id":"victim"}', '/owner_id'],
    ['{"a":{"x":1,"x":2}}', '/a/x'],
    ['{"items":[{"q":1},{"q":2,"q":3}]}', '/items/1/q'],
    ['{"a":"}\\",\\"a\\":","b":1}', undefined],
    ['{"\\u0061":1,"a":2}', '/a'],
    ['[1,{"a/b":1,"a/b":2}]', '/1/a~1b'],
    ['"just a string"', undefined],
    ['{"a\\\\":1,"a\\\\":2}', '/a\\'],
    ['{"k":"x\\\\","k":1}', '/k'],
    ['[[1],[{"a":1,"a":1}]]', '/1/0/a'],
    ['{"":1,"":2}', '/'],
    ['{"a":[1,2,{"b":{}}],"c":{"d":[],"d":0}}', '/c/d'],
    ['{"a":{"b":1},"b":2}', undefined],
  ];
  for (const [text, want] of cases) assert.equal(duplicateMember(text), want, text);
});
