import assert from 'node:assert/strict';
import { test } from 'node:test';

import { stateHash } from '../src/canonical.mjs';
import { createDevtools } from '../src/channel.mjs';

const TS0 = 1795420800000000001n;

/** A clock stepping 1000 ns from TS0, exact. */
function stepClock() {
  let t = TS0 - 1000n;
  return () => (t += 1000n);
}

const counter = (state = { n: 0, last: null, senders: [] }, event) =>
  event.type === 'inc' ? { n: state.n + 1, last: event.ts, senders: [...state.senders, event.sender] } : state;

/** A peer that keeps what it was sent, parsed. */
function recorder(devtools) {
  const got = [];
  const peer = devtools.openPeer({ send: (text) => got.push(JSON.parse(text)), close() {} });
  return { peer, got, send: (obj) => peer.receive(JSON.stringify(obj)) };
}

/** Redux's createStore in miniature (what an enhancer receives). */
function createStore(reducer, preloaded, enhancer) {
  if (enhancer) return enhancer(createStore)(reducer, preloaded);
  let state = reducer(preloaded, { type: '@@redux/INITx.y.z' });
  return {
    getState: () => state,
    dispatch(action) {
      state = reducer(state, action);
      return action;
    },
    subscribe: () => () => {},
    replaceReducer(next) {
      reducer = next;
    },
  };
}

test('accepted actions become events v = 1, 2 … with exact ts and the sender', () => {
  const devtools = createDevtools({ clock: stepClock() });
  const store = devtools.wrapReducer(counter);
  const seen = [];
  devtools.onEvent((record) => seen.push(record));
  const client = devtools.client({ headers: {} });
  client.received();
  assert.deepEqual(client.dispatch({ type: 'inc' }).events, [1]);
  assert.deepEqual(devtools.dispatchAs('worker', { type: 'inc' }).events, [2]);
  assert.equal(devtools.v, 2);
  assert.equal(seen[0].text, '{"type":"inc","v":1,"ts":1795420800000000001,"sender":"c1"}');
  assert.equal(seen[1].event.ts, TS0 + 1000n);
  assert.deepEqual(store.getState().senders, ['c1', 'worker']);
  // the reducer got what JSON.parse makes of the exact text: the nearest double
  assert.equal(store.getState().last, Number(TS0 + 1000n));
});

test('the reducer receives JSON.parse of the event text, which a replay gives it too', () => {
  const got = [];
  const devtools = createDevtools({ clock: stepClock() });
  devtools.wrapReducer((state = 0, event) => {
    if (event.type === 'x') got.push(event);
    return state;
  });
  const texts = [];
  devtools.onEvent((record) => texts.push(record.text));
  devtools.dispatchAs('c9', { type: 'x', when: undefined, list: [1, 'a'] });
  assert.deepEqual(texts, ['{"type":"x","list":[1,"a"],"v":1,"ts":1795420800000000001,"sender":"c9"}']);
  const replayed = JSON.parse(texts[0]);
  assert.deepEqual(got, [replayed]);
});

test('what JSON cannot carry, or what the reducer throws on, is refused and takes no v', () => {
  const devtools = createDevtools({ clock: stepClock() });
  devtools.wrapReducer((state = 0, event) => {
    if (event.type === 'boom') throw new Error('reducer says no');
    return state + 1;
  });
  const bad = devtools.dispatchAs('c1', { type: 'x', f: () => 1 });
  assert.equal(bad.ok, false);
  assert.match(bad.error, /not JSON at \/f/);
  const boom = devtools.dispatchAs('c1', { type: 'boom' });
  assert.deepEqual([boom.ok, boom.error], [false, 'reducer says no']);
  assert.deepEqual(devtools.dispatchAs('c1', { type: 'ok' }).events, [1]);
});

test('X-Rdt-Connection gives each event its cause: the connection and the message index n', () => {
  const devtools = createDevtools({ clock: stepClock() });
  devtools.wrapReducer(counter);
  const d = recorder(devtools);
  d.send({ type: '@@devtools/subscribe' });
  const proxied = devtools.client({ headers: { 'x-rdt-connection': '42' } });
  const direct = devtools.client({ headers: {} });
  proxied.received();
  proxied.received();
  proxied.dispatch({ type: 'inc' });
  direct.received();
  direct.dispatch({ type: 'inc' });
  const events = d.got.filter((m) => m.type === '@@devtools/event');
  assert.deepEqual(
    events.map((m) => [m.v, m.cause, m.event.sender]),
    [
      [1, { connection: '42', n: 2 }, 'c1'],
      [2, null, 'c2'],
    ],
  );
});

test('hello, then the join: a snapshot at the current v and every later event, none twice', () => {
  const devtools = createDevtools({ clock: stepClock(), name: 'orders', version: '2' });
  const store = devtools.wrapReducer(counter);
  for (let i = 0; i < 5; i++) store.dispatch({ type: 'inc' });
  const d = recorder(devtools);
  assert.deepEqual(d.got[0], { type: '@@devtools/hello', protocol: 1, server: { name: 'orders', version: '2' }, v: 5, hash: stateHash(store.getState()) });
  d.send({ type: '@@devtools/subscribe' });
  for (let i = 0; i < 3; i++) store.dispatch({ type: 'inc' });
  const [snapshot, ...events] = d.got.slice(1);
  assert.equal(snapshot.type, '@@devtools/snapshot');
  assert.equal(snapshot.v, 5);
  assert.equal(snapshot.hash, stateHash(snapshot.state));
  assert.deepEqual(events.map((m) => m.v), [6, 7, 8]);
  assert.deepEqual(events.map((m) => m.event.v), [6, 7, 8]);
  assert.equal(events.at(-1).hash, stateHash(store.getState()));
});

test('subscribe without a snapshot, hashEvery and snapshotEvery', () => {
  const devtools = createDevtools({ clock: stepClock(), hashEvery: 2, snapshotEvery: 3 });
  const store = devtools.wrapReducer(counter);
  const d = recorder(devtools);
  d.send({ type: '@@devtools/subscribe', snapshot: false });
  for (let i = 0; i < 4; i++) store.dispatch({ type: 'inc' });
  const kinds = d.got.slice(1).map((m) => [m.type.slice(11), m.v, 'hash' in m && m.hash !== null]);
  assert.deepEqual(kinds, [
    ['event', 1, false],
    ['event', 2, true],
    ['event', 3, false],
    ['snapshot', 3, true],
    ['event', 4, true],
  ]);
});

test('get-state answers with its id; dispatch runs as sender devtools and says which events', () => {
  const devtools = createDevtools({ clock: stepClock() });
  devtools.wrapReducer(counter);
  const d = recorder(devtools);
  d.send({ type: '@@devtools/dispatch', id: 'a', action: { type: 'inc' } });
  d.send({ type: '@@devtools/dispatch', id: 'b', action: { type: 'noop' } });
  d.send({ type: '@@devtools/get-state', id: 7 });
  const [, first, second, snap] = d.got;
  assert.deepEqual(first, { type: '@@devtools/dispatched', id: 'a', ok: true, events: [1], error: null, replies: [] });
  assert.deepEqual(second.events, [2]);
  assert.deepEqual([snap.type, snap.id, snap.v, snap.state.senders], ['@@devtools/snapshot', 7, 2, ['devtools']]);
});

test('bad frames and unknown requests get an error and the peer stays', () => {
  const devtools = createDevtools({ clock: stepClock() });
  devtools.wrapReducer(counter);
  const d = recorder(devtools);
  d.peer.receive('not json');
  d.send({ type: 'what', id: 9 });
  d.send({ type: '@@devtools/get-state' });
  assert.deepEqual(
    d.got.slice(1).map((m) => [m.type, m.id ?? null]),
    [
      ['@@devtools/error', null],
      ['@@devtools/error', 9],
      ['@@devtools/snapshot', null],
    ],
  );
});

test('a peer that does not read is dropped, and the others go on', () => {
  const devtools = createDevtools({ clock: stepClock(), maxBuffered: 10 });
  const store = devtools.wrapReducer(counter);
  const closed = [];
  const slow = devtools.openPeer({ send() {}, close: (code) => closed.push(code), bufferedAmount: 1000 });
  slow.receive('{"type":"@@devtools/subscribe"}');
  const d = recorder(devtools);
  d.send({ type: '@@devtools/subscribe' });
  store.dispatch({ type: 'inc' });
  assert.deepEqual(closed, [1008]);
  assert.equal(devtools.subscribers, 1);
  assert.equal(d.got.at(-1).v, 1);
});

test('the store enhancer numbers what reaches the reducer, not Redux internals', () => {
  const devtools = createDevtools({ clock: stepClock() });
  const store = createStore(counter, undefined, devtools.enhancer);
  assert.equal(store.devtools, devtools);
  assert.equal(devtools.v, 0);
  store.dispatch({ type: 'inc' });
  store.dispatch({ type: '@@redux/PROBE_UNKNOWN_ACTION' });
  store.dispatch({ type: 'inc' });
  assert.equal(devtools.v, 2);
  assert.equal(store.getState().n, 2);
  assert.deepEqual(devtools.state, store.getState());
  assert.equal(devtools.stateHash(), stateHash(store.getState()));
});

test('useStore routes dispatchAs through the outer store (its middleware)', () => {
  const devtools = createDevtools({ clock: stepClock() });
  const inner = createStore(counter, undefined, devtools.enhancer);
  const outer = { ...inner, dispatch: (command) => (command.type === 'twice' ? [inner.dispatch({ type: 'inc' }), inner.dispatch({ type: 'inc' })] && 'done' : inner.dispatch(command)) };
  devtools.useStore(outer);
  const outcome = devtools.dispatchAs('c1', { type: 'twice' });
  assert.deepEqual([outcome.ok, outcome.events, outcome.result], [true, [1, 2], 'done']);
});
