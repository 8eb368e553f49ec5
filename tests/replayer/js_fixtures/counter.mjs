// A plain ESM reducer: counts events and sums their `n`.
export function reducer(state, event) {
  if (state === undefined) state = { count: 0, total: 0, last: null };
  switch (event.type) {
    case '@@INIT':
      return state;
    case 'add':
      return { ...state, count: state.count + 1, total: state.total + (event.n ?? 0), last: event.v ?? null };
    case 'boom':
      if (event.n === 13) throw new TypeError('thirteen is unlucky');
      return state;
    default:
      return { ...state, count: state.count + 1 };
  }
}

export const reducers = { root: reducer, notAFunction: 42 };
export const value = { a: 1 };
export default reducer;
