// Sample: the sales-order reducer of samples/sales_order.py, written for Node with Redux Toolkit.
//
// The JavaScript twin of the Python reducer: for the same events it builds the same state JSON
// (the same keys and numbers), so `rdt compare LOG --reducer samples.sales_order:reducer
// --against samples/js/sales_order.mjs:reducer` agrees over any recorded sales-order log.
//
// Events (each reaches the reducer as the whole action, fields at the top level, as the server
// emits them: {type, ...fields, v, ts, sender}):
//   order/created {id, customer}          order/line-added {order, sku, qty, price}
//   order/line-removed {order, sku}       order/submitted {order}      order/cancelled {order}
// Any other type (@@INIT included) leaves the state as it is; the state for `undefined` is
// INITIAL. Time comes only from `event.ts` (integer nanoseconds; beyond 2^53 they arrive in JS as
// the nearest double, as JSON.parse makes them). Prices are integer cents.
//
// One difference stays: a SKU spelled "__proto__" cannot be a key of a plain JS object by
// assignment (the server never lets such a name through in practice; the Python twin keeps it).

import { createSlice } from '@reduxjs/toolkit'

export const INITIAL = { orders: {}, count: 0 }

const own = (object, key) => (Object.hasOwn(object, key) ? object[key] : undefined)

/** The case reducers by event type (after the slice name), Immer style: "mutate" the draft. */
export const caseReducers = {
  created(state, event) {
    state.orders[event.id] = {
      id: event.id,
      customer: event.customer,
      status: 'open',
      lines: {},
      total: 0,
      created_ns: event.ts,
      updated_ns: event.ts,
    }
    state.count += 1
  },

  'line-added'(state, event) {
    const order = state.orders[event.order]
    const amount = event.qty * event.price
    const old = own(order.lines, event.sku)
    if (old === undefined) {
      order.lines[event.sku] = {
        sku: event.sku,
        qty: event.qty,
        price: event.price,
        amount,
        adds: 1,
      }
    } else {
      old.qty += event.qty
      old.price = event.price
      old.amount += amount
      old.adds += 1
    }
    order.total += amount
    order.updated_ns = event.ts
  },

  'line-removed'(state, event) {
    const order = state.orders[event.order]
    const line = order.lines[event.sku]
    delete order.lines[event.sku]
    order.total -= line.amount
    order.updated_ns = event.ts
  },

  submitted: status('submitted'),
  cancelled: status('cancelled'),
}

function status(value) {
  return (state, event) => {
    const order = state.orders[event.order]
    order.status = value
    order.updated_ns = event.ts
  }
}

/** A sales-order slice over `handlers` (so variants can swap one case reducer, as in Python). */
export function makeSlice(handlers) {
  return createSlice({ name: 'order', initialState: INITIAL, reducers: handlers })
}

export const slice = makeSlice(caseReducers)

/** The root reducer: pure, never mutates its input, time only from `event.ts`. */
export const reducer = slice.reducer

export default reducer
