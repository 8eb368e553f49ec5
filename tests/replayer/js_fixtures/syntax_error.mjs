export function reducer(state, event) {
  return { ...state,, };
}
