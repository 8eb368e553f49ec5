// Sample: the sales-order reducer again, as plain Redux slice reducers joined by combineReducers.
//
// No Redux Toolkit and no Immer: each slice reducer copies what it changes. The root state has
// the same two keys as samples/sales_order.py ({orders, count}) and the same values for the same
// events, so it is a third twin of the Python reducer:
//   rdt compare LOG --reducer samples/js/sales_order.mjs:reducer --against samples/js/combined.mjs:reducer

import { combineReducers } from 'redux'

const withOrder = (orders, order) => ({ ...orders, [order.id]: order })

const own = (object, key) => (Object.hasOwn(object, key) ? object[key] : undefined)

function lineAdded(order, event) {
  const amount = event.qty * event.price
  const old = own(order.lines, event.sku)
  const line =
    old === undefined
      ? { sku: event.sku, qty: event.qty, price: event.price, amount, adds: 1 }
      : {
          ...old,
          qty: old.qty + event.qty,
          price: event.price,
          amount: old.amount + amount,
          adds: old.adds + 1,
        }
  const lines = { ...order.lines, [event.sku]: line }
  return { ...order, lines, total: order.total + amount, updated_ns: event.ts }
}

function lineRemoved(order, event) {
  const { [event.sku]: line, ...lines } = order.lines
  return { ...order, lines, total: order.total - line.amount, updated_ns: event.ts }
}

/** The `orders` slice: orders by id. */
export function orders(state = {}, event) {
  switch (event.type) {
    case 'order/created':
      return withOrder(state, {
        id: event.id,
        customer: event.customer,
        status: 'open',
        lines: {},
        total: 0,
        created_ns: event.ts,
        updated_ns: event.ts,
      })
    case 'order/line-added':
      return withOrder(state, lineAdded(state[event.order], event))
    case 'order/line-removed':
      return withOrder(state, lineRemoved(state[event.order], event))
    case 'order/submitted':
      return withOrder(state, { ...state[event.order], status: 'submitted', updated_ns: event.ts })
    case 'order/cancelled':
      return withOrder(state, { ...state[event.order], status: 'cancelled', updated_ns: event.ts })
    default:
      return state
  }
}

/** The `count` slice: how many orders were ever created. */
export function count(state = 0, event) {
  return event.type === 'order/created' ? state + 1 : state
}

export const reducer = combineReducers({ orders, count })

export default reducer
