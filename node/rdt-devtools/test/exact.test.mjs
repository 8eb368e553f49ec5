import assert from 'node:assert/strict';
import { test } from 'node:test';

import { NotWritable, stringify, toNs, wallClockNs } from '../src/exact.mjs';

test('a BigInt is written as its exact digits, beyond 2^53 too', () => {
  assert.equal(stringify({ ts: 1795420800000150001n }), '{"ts":1795420800000150001}');
  assert.equal(stringify([-18446744073709551617n, 0n]), '[-18446744073709551617,0]');
  // JSON.stringify of the double would lose the last digits
  assert.equal(JSON.stringify({ ts: Number(1795420800000150001n) }), '{"ts":1795420800000150000}');
});

test('everything else is written as JSON.stringify writes it', () => {
  const value = { a: 'x"\u2028', b: [1, 2.5, -0, 1e21, null, true], c: { d: undefined, e: {} }, '': [] };
  assert.equal(stringify(value), JSON.stringify(value));
});

test('what JSON cannot carry is refused, naming the path', () => {
  assert.throws(() => stringify({ a: [1, NaN] }), (e) => e instanceof NotWritable && e.pointer === '/a/1');
  assert.throws(() => stringify({ 'x/y': new Map() }), (e) => e.pointer === '/x~1y');
  assert.throws(() => stringify([undefined]), NotWritable);
  const loop = {};
  loop.self = loop;
  assert.throws(() => stringify(loop), /circular/);
});

test('toNs takes BigInt, safe integers and digit strings only', () => {
  assert.equal(toNs(5n), 5n);
  assert.equal(toNs(7), 7n);
  assert.equal(toNs('1795420800000150001'), 1795420800000150001n);
  assert.throws(() => toNs(1.5), TypeError);
  assert.throws(() => toNs(2 ** 60), TypeError);
});

test('the wall clock gives BigInt nanoseconds near Date.now() that never go backwards', () => {
  const clock = wallClockNs();
  const a = clock();
  const b = clock();
  assert.equal(typeof a, 'bigint');
  assert.ok(b >= a);
  const drift = Number(a / 1_000_000n) - Date.now();
  assert.ok(Math.abs(drift) < 1000, `drift ${drift} ms`);
});
