import assert from 'node:assert/strict';
import { test } from 'node:test';

import { NotJSON, canonical, jsonProblem, jsonText, stateHash } from '../../replayer/js/canonical.mjs';

test('keys sort by UTF-16 code units, numbers in ECMAScript form, -0 as 0', () => {
  assert.equal(canonical({ b: 1, a: [-0, 1e21, 5e-324, 1e-7, 1.5] }), '{"a":[0,1e+21,5e-324,1e-7,1.5],"b":1}');
  assert.equal(canonical({ '\ue000': 1, '\u{1F600}': 2 }), '{"\u{1F600}":2,"\ue000":1}');
});

test('undefined object properties are left out, as JSON.stringify does', () => {
  assert.equal(canonical({ a: undefined, b: 1 }), '{"b":1}');
  assert.equal(jsonText({ a: undefined, b: 1 }), '{"b":1}');
});

test('the hash is sha256 of the canonical text', () => {
  assert.equal(stateHash({}), 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
});

const cases = [
  [{ a: { b: NaN } }, '/a/b', 'NaN is not a JSON number'],
  [{ x: [1, Infinity] }, '/x/1', 'Infinity is not a JSON number'],
  [[1, undefined], '/1', 'undefined is not a JSON value'],
  [undefined, '', 'undefined is not a JSON value'],
  [{ f: () => 1 }, '/f', 'a function is not a JSON value'],
  [{ s: Symbol('s') }, '/s', 'a symbol is not a JSON value'],
  [{ n: 1n }, '/n', 'a BigInt is not a JSON number'],
  [{ m: new Map() }, '/m', 'a Map is not JSON (use an object)'],
  [{ s: new Set() }, '/s', 'a Set is not JSON (use an array)'],
  [{ d: new Date(0) }, '/d', 'a Date is not a plain JSON object'],
  [{ 'a/b': { '~': NaN } }, '/a~1b/~0', 'NaN is not a JSON number'],
  [{ s: 'x\ud800' }, '/s', 'string holds a lone surrogate (not valid UTF-8)'],
];

for (const [value, pointer, problem] of cases) {
  test(`not JSON: ${problem} at ${pointer || 'the root'}`, () => {
    assert.deepEqual(jsonProblem(value), { pointer, problem });
    assert.throws(() => canonical(value), (error) => error instanceof NotJSON && error.pointer === pointer);
    assert.throws(() => jsonText(value), NotJSON);
  });
}

test('a cycle is named where it closes', () => {
  const a = { name: 'a' };
  a.self = a;
  assert.deepEqual(jsonProblem({ a }), { pointer: '/a/self', problem: 'circular reference' });
});

test('a shared (not circular) object is fine', () => {
  const shared = { x: 1 };
  assert.equal(canonical({ a: shared, b: shared }), '{"a":{"x":1},"b":{"x":1}}');
});

test('the message names the pointer like Python CanonicalError', () => {
  assert.throws(() => canonical({ a: [NaN] }), { message: 'state is not JSON at /a/0: NaN is not a JSON number' });
  assert.throws(() => canonical(undefined), { message: 'state is not JSON at the root: undefined is not a JSON value' });
});
