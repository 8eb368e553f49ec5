// Clean: the sales-order reducer as a plain CommonJS file (no packages, copies instead of
// mutation, no "use strict"). The same states as samples/js/sales_order.mjs for every event.

const INITIAL = { orders: {}, count: 0 }

function withOrder(state, order) {
  return Object.assign({}, state, { orders: Object.assign({}, state.orders, { [order.id]: order }) })
}

function own(object, key) {
  return Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined
}

const handlers = {
  'order/created': function (state, event) {
    const order = {
      id: event.id,
      customer: event.customer,
      status: 'open',
      lines: {},
      total: 0,
      created_ns: event.ts,
      updated_ns: event.ts,
    }
    return Object.assign(withOrder(state, order), { count: state.count + 1 })
  },
  'order/line-added': function (state, event) {
    const order = state.orders[event.order]
    const amount = event.qty * event.price
    const old = own(order.lines, event.sku)
    const line =
      old === undefined
        ? { sku: event.sku, qty: event.qty, price: event.price, amount: amount, adds: 1 }
        : Object.assign({}, old, {
            qty: old.qty + event.qty,
            price: event.price,
            amount: old.amount + amount,
            adds: old.adds + 1,
          })
    const lines = Object.assign({}, order.lines, { [event.sku]: line })
    return withOrder(
      state,
      Object.assign({}, order, { lines: lines, total: order.total + amount, updated_ns: event.ts })
    )
  },
  'order/line-removed': function (state, event) {
    const order = state.orders[event.order]
    const line = order.lines[event.sku]
    const lines = {}
    for (const sku of Object.keys(order.lines)) if (sku !== event.sku) lines[sku] = order.lines[sku]
    const total = order.total - line.amount
    return withOrder(state, Object.assign({}, order, { lines: lines, total: total, updated_ns: event.ts }))
  },
  'order/submitted': status('submitted'),
  'order/cancelled': status('cancelled'),
}

function status(value) {
  return function (state, event) {
    const order = state.orders[event.order]
    return withOrder(state, Object.assign({}, order, { status: value, updated_ns: event.ts }))
  }
}

function reducer(state, event) {
  if (state === undefined) state = INITIAL
  const handler = own(handlers, event.type)
  return handler === undefined ? state : handler(state, event)
}

module.exports = { reducer: reducer, INITIAL: INITIAL }
