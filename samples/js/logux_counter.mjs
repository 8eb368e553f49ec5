// The Logux counter's reducer, for `rdt state LOG --reducer samples/js/logux_counter.mjs:reducer`.
// Events are Logux actions as `rdt record --protocol logux` stores them (the action, its
// absolute Logux meta under `meta`). `counter/add` adds `by`; `logux/processed`, `logux/undo`
// and every other type leave the state as it is. Pure: never mutates its input.

export const INITIAL = { value: 0, count: 0 }

export function reducer(state = INITIAL, action) {
  if (action.type !== 'counter/add' || !Number.isInteger(action.by)) return state
  return { value: state.value + action.by, count: state.count + 1 }
}
