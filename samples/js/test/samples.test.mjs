// node --test samples/js/test/samples.test.mjs — the JS samples checked from Node itself
// (tests/samples/test_js_samples.py runs this file, and compares the twins with Python there).

import assert from 'node:assert/strict'
import { test } from 'node:test'

import { reducer as combined } from '../combined.mjs'
import { reducer as counter } from '../logux_counter.mjs'
import twinDefault, { INITIAL, reducer as twin } from '../sales_order.mjs'
import { reducer as buggy } from '../sales_order_buggy.mjs'

let v = 0
const ev = (type, fields) => ({ type, ...fields, v: ++v, ts: 1_700_000_000_000_000 + v, sender: 'c1' })

const DOCUMENTED = [
  ev('order/created', { id: 'o1', customer: 'ACME' }),
  ev('order/line-added', { order: 'o1', sku: 'A', qty: 1, price: 500 }),
  ev('order/line-added', { order: 'o1', sku: 'A', qty: 1, price: 500 }),
  ev('order/line-removed', { order: 'o1', sku: 'A' }),
]

const fold = (reducer, events) => events.reduce(reducer, reducer(undefined, { type: '@@INIT' }))

test('the initial state is the Python INITIAL, and default is the same reducer', () => {
  assert.deepEqual(twin(undefined, { type: '@@INIT' }), { orders: {}, count: 0 })
  assert.deepEqual(INITIAL, { orders: {}, count: 0 })
  assert.equal(twinDefault, twin)
})

test('an unknown type returns the very same state', () => {
  const state = fold(twin, DOCUMENTED.slice(0, 2))
  assert.equal(twin(state, { type: 'order/listed' }), state)
  assert.equal(combined(state, { type: 'order/listed' }), state)
})

test('the documented sequence goes negative only in the buggy twin', () => {
  assert.equal(fold(buggy, DOCUMENTED).orders.o1.total, -1000)
  assert.equal(fold(twin, DOCUMENTED).orders.o1.total, 0)
  assert.deepEqual(fold(combined, DOCUMENTED), fold(twin, DOCUMENTED))
})

test('the twin never changes its input (Immer copies on write)', () => {
  let state = twin(undefined, { type: '@@INIT' })
  for (const event of DOCUMENTED) {
    const input = state
    const before = structuredClone(input)
    state = twin(input, event)
    assert.deepEqual(input, before)
    assert.notDeepEqual(state, before)
    assert.ok(Object.isFrozen(state))
  }
})

test('the Logux counter takes back an action the server undid', () => {
  const add = { type: 'counter/add', by: -1, meta: { id: '5 10:a 0', time: 5 } }
  const undo = { type: 'logux/undo', id: '5 10:a 0', reason: 'denied', action: { type: 'counter/add', by: -1 } }
  const events = [{ type: 'counter/add', by: 3 }, add, { type: 'logux/processed', id: 'x' }, undo]
  assert.deepEqual(fold(counter, events), { value: 3, count: 1 })
  assert.deepEqual(fold(counter, events.slice(0, 2)), { value: 2, count: 2 })
})
