import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as p from '../src/protocol.mjs';

test('requests of the devtools channel parse', () => {
  assert.deepEqual(p.parseRequest({ type: p.SUBSCRIBE }), { type: p.SUBSCRIBE, snapshot: true });
  assert.deepEqual(p.parseRequest({ type: p.SUBSCRIBE, snapshot: false, extra: 1 }), { type: p.SUBSCRIBE, snapshot: false });
  assert.deepEqual(p.parseRequest({ type: p.GET_STATE, id: 'a' }), { type: p.GET_STATE, id: 'a' });
  assert.deepEqual(p.parseRequest({ type: p.DISPATCH, id: 3, action: { type: 'x' } }), {
    type: p.DISPATCH,
    id: 3,
    action: { type: 'x' },
  });
});

test('bad requests become errors that keep their id', () => {
  assert.deepEqual(p.parseRequest([]), { error: 'a request must be a JSON object', id: null });
  assert.equal(p.parseRequest({ type: 'nope', id: 4 }).id, 4);
  assert.match(p.parseRequest({ type: 'nope' }).error, /unknown request type "nope"/);
  assert.match(p.parseRequest({ type: '@@devtools/inject' }).error, /not served on this endpoint/);
  assert.match(p.parseRequest({ type: p.DISPATCH, id: 1, action: [] }).error, /'action' must be a JSON object/);
  assert.match(p.parseRequest({ type: p.DISPATCH, action: { kind: 'x' } }).error, /string 'type'/);
  assert.match(p.parseRequest({ type: p.SUBSCRIBE, snapshot: 'yes' }).error, /true or false/);
  assert.match(p.parseRequest({ type: p.GET_STATE, id: 1.5 }).error, /'id' must be/);
});

test('the X-Rdt-Connection header is trimmed; empty, long or control values are ignored', () => {
  assert.equal(p.parseCauseHeader(' 17 '), '17');
  assert.equal(p.parseCauseHeader(''), null);
  assert.equal(p.parseCauseHeader('x'.repeat(201)), null);
  assert.equal(p.parseCauseHeader('a\tb'), null);
  assert.equal(p.parseCauseHeader(undefined), null);
});

test('messages have the fields of PROTOCOL §1', () => {
  assert.deepEqual(p.hello({ name: 'n', version: '1', v: 0, hash: 'h' }), {
    type: p.HELLO,
    protocol: 1,
    server: { name: 'n', version: '1' },
    v: 0,
    hash: 'h',
  });
  assert.deepEqual(p.snapshot(3, {}, 'h'), { type: p.SNAPSHOT, v: 3, state: {}, hash: 'h' });
  assert.deepEqual(p.snapshot(3, {}, 'h', 'q').id, 'q');
  assert.equal('hash' in p.event(1, {}, null), false);
  assert.deepEqual(p.dispatched(1, false, [], 'no'), { type: p.DISPATCHED, id: 1, ok: false, events: [], error: 'no', replies: [] });
});
