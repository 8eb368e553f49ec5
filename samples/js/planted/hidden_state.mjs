// Planted: numbers submissions with a module-level call counter that carries across calls (the
// twin of tests/replayer/planted/global_state_bug.py). At every order/submitted (the first at
// SUBMITTED_V = 23 on the planted sales log) it stores how many times the reducer was called so
// far. A fresh process always gives the same states (two separate runs agree), but a second
// replay in the same, warmed-up process differs from v=23 on.

import { reducer as twin } from '../sales_order.mjs'

let calls = 0

export function reducer(state, event) {
  calls += 1
  const next = twin(state, event)
  if (event.type === 'order/submitted') return { ...next, submit_no: calls }
  return next
}

export default reducer
