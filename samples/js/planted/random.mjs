// Planted: draws a promo code from Math.random() into the state at every order/submitted (the
// first at SUBMITTED_V = 23 on the planted sales log). Before it, the states are the twin's.

import { reducer as twin } from '../sales_order.mjs'

function promoCode() {
  return Math.floor(Math.random() * 1e9)
}

export function reducer(state, event) {
  const next = twin(state, event)
  if (event.type === 'order/submitted') return { ...next, code: promoCode() }
  return next
}

export default reducer
