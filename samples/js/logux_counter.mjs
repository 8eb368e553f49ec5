// The Logux counter's reducer, for `rdt state LOG --reducer samples/js/logux_counter.mjs:reducer`.
// Events are Logux actions as `rdt record --protocol logux` stores them (the action, its
// absolute Logux meta under `meta`). `counter/add` adds `by` (an integer); a `logux/undo` takes
// back the action it carries, as a Logux client's reducer does when the server refuses one (the
// server's own state never had it); `logux/processed` and every other type leave the state as
// it is. Pure: never mutates its input.

export const INITIAL = { value: 0, count: 0 }

function amount(action) {
  if (!action || action.type !== 'counter/add' || !Number.isInteger(action.by)) return null
  return action.by
}

export function reducer(state = INITIAL, action) {
  let by = amount(action)
  let sign = 1
  if (by === null && action.type === 'logux/undo') {
    by = amount(action.action)
    sign = -1
  }
  if (by === null) return state
  return { value: state.value + sign * by, count: state.count + sign }
}
