// Planted: version 2 of the sales-order twin that also counts removed lines, so `rdt compare`
// against samples/js/sales_order.mjs:reducer (or samples.sales_order:reducer) diverges from the
// first order/line-removed on (REMOVED_V = 40 on the planted sales log). It is the JS twin of
// tests/replayer/planted/sales_order_v0.py: compared with that one it agrees everywhere.

import { reducer as twin } from '../sales_order.mjs'

export function reducer(state, event) {
  const next = twin(state, event)
  if (event.type === 'order/line-removed') {
    return { ...next, removed_lines: (next.removed_lines ?? 0) + 1 }
  }
  return next
}

export default reducer
