// Planted: throws at the first order/line-removed (REMOVED_V = 40 on the planted sales log),
// from a helper two calls deep so the stack names this file.

import { reducer as twin } from '../sales_order.mjs'

function restock(event) {
  throw new RangeError(`no stock record for ${event.sku} in ${event.order}`)
}

function onRemoved(state, event) {
  restock(event)
  return twin(state, event)
}

export function reducer(state, event) {
  if (event.type === 'order/line-removed') return onRemoved(state, event)
  return twin(state, event)
}

export default reducer
