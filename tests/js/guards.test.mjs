import assert from 'node:assert/strict';
import { test } from 'node:test';

import { installGuards } from '../../replayer/js/guards.mjs';

const guard = installGuards();

test('calls are recorded only while v is set, per call site, and still work', () => {
  assert.equal(typeof Math.random(), 'number');
  assert.deepEqual(guard.drain(), []);
  guard.v = 7;
  const values = [];
  for (let i = 0; i < 3; i++) values.push(Math.random());
  const now = Date.now();
  const date = new Date();
  const fixed = new Date(0);
  guard.v = null;
  assert.ok(values.every((x) => x >= 0 && x < 1));
  assert.ok(now > 0 && date instanceof Date && fixed.getTime() === 0);
  const calls = guard.drain();
  assert.deepEqual(
    calls.map((c) => [c.name, c.v, c.count, c.function]),
    [['Math.random', 7, 3, '<anonymous>'], ['Date.now', 7, 1, '<anonymous>'], ['new Date()', 7, 1, '<anonymous>']],
  );
  assert.ok(calls.every((c) => c.file.endsWith('guards.test.mjs') && c.line > 0));
});

test('a Date made with arguments is not a clock read; instanceof and statics still work', () => {
  guard.v = 1;
  const d = new Date(2020, 0, 1);
  const parsed = Date.parse('2020-01-01T00:00:00Z');
  guard.v = null;
  assert.ok(d instanceof Date);
  assert.equal(parsed, 1577836800000);
  assert.deepEqual(guard.drain(), []);
});
