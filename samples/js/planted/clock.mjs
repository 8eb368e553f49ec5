// Planted: stamps the wall clock into the state at every order/submitted (the first at
// SUBMITTED_V = 23 on the planted sales log). Three exports:
//   reducer    Date.now()                      planted, shows at v=23
//   newDate    new Date() without arguments    planted, shows at v=23
//   eventDate  new Date(event.ts / 1e6)        clean: a date made from the event's own time

import { reducer as twin } from '../sales_order.mjs'

export function reducer(state, event) {
  const next = twin(state, event)
  if (event.type === 'order/submitted') return { ...next, opened_at: Date.now() }
  return next
}

export function newDate(state, event) {
  const next = twin(state, event)
  if (event.type === 'order/submitted') return { ...next, opened_at: new Date().toISOString() }
  return next
}

export function eventDate(state, event) {
  const next = twin(state, event)
  if (event.type === 'order/submitted') {
    return { ...next, opened_at: new Date(Math.floor(event.ts / 1e6)).toISOString() }
  }
  return next
}

export default reducer
