// Clean: the sales-order reducer with Redux Toolkit's createReducer and Immer-style "mutating"
// code (drafts written in place, a line deleted, counters bumped). Immer copies on write, so the
// input state is never changed: a mutation check must pass it. The same states as
// samples/js/sales_order.mjs for every event.

import { createReducer } from '@reduxjs/toolkit'

const INITIAL = { orders: {}, count: 0 }

export const reducer = createReducer(INITIAL, (builder) => {
  builder
    .addCase('order/created', (state, event) => {
      state.orders[event.id] = {
        id: event.id,
        customer: event.customer,
        status: 'open',
        lines: {},
        total: 0,
        created_ns: event.ts,
        updated_ns: event.ts,
      }
      state.count++
    })
    .addCase('order/line-added', (state, event) => {
      const order = state.orders[event.order]
      const amount = event.qty * event.price
      const line = Object.hasOwn(order.lines, event.sku) ? order.lines[event.sku] : undefined
      if (line) {
        Object.assign(line, { qty: line.qty + event.qty, price: event.price })
        line.amount += amount
        line.adds++
      } else {
        order.lines[event.sku] = { sku: event.sku, qty: event.qty, price: event.price, amount, adds: 1 }
      }
      order.total += amount
      order.updated_ns = event.ts
    })
    .addCase('order/line-removed', (state, event) => {
      const order = state.orders[event.order]
      order.total -= order.lines[event.sku].amount
      delete order.lines[event.sku]
      order.updated_ns = event.ts
    })
    .addMatcher(
      (event) => event.type === 'order/submitted' || event.type === 'order/cancelled',
      (state, event) => {
        const order = state.orders[event.order]
        order.status = event.type === 'order/submitted' ? 'submitted' : 'cancelled'
        order.updated_ns = event.ts
      }
    )
})

export default reducer
