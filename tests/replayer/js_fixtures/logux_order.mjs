// An order-sensitive reducer over Logux counter actions, the twin of
// tests/replayer/logux_order.py: the `by` of every `counter/add` in the order it was folded,
// and the last one (last write wins). Pure: never mutates its input.
export function reducer(state = { adds: [], last: null }, action) {
  if (action.type !== 'counter/add') return state
  return { adds: [...state.adds, action.by], last: action.by }
}
