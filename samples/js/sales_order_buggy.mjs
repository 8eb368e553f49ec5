// Sample: the sales-order reducer with a planted bug, the twin of samples/sales_order_buggy.py.
//
// The bug: removing a line subtracts the line's amount once *per time the SKU was added* instead
// of once. A line added once behaves correctly, so the bug hides until exactly this sequence:
//
//   order/created     {id: "o1", customer: "ACME"}
//   order/line-added  {order: "o1", sku: "A", qty: 1, price: 500}   total 500
//   order/line-added  {order: "o1", sku: "A", qty: 1, price: 500}   total 1000 (line A: 1000)
//   order/line-removed {order: "o1", sku: "A"}                      total -1000, should be 0
//
// It shows at the same event as the Python one: `rdt compare LOG --reducer
// samples.sales_order_buggy:reducer --against samples/js/sales_order_buggy.mjs:reducer` agrees,
// and against samples/js/sales_order.mjs:reducer diverges at the first removal of a line added
// more than once.

import { caseReducers, makeSlice } from './sales_order.mjs'

export const slice = makeSlice({
  ...caseReducers,
  'line-removed'(state, event) {
    // The planted bug: the whole amount, once for every time the line was added.
    const order = state.orders[event.order]
    const line = order.lines[event.sku]
    delete order.lines[event.sku]
    order.total -= line.amount * line.adds
    order.updated_ns = event.ts
  },
})

/** The buggy root reducer (pure and deterministic: the bug is in the arithmetic only). */
export const reducer = slice.reducer

export default reducer
