// Hidden module state: after 5 calls its output changes.
let calls = 0;
export function reducer(state = { n: 0 }, event) {
  calls += 1;
  if (event.type === '@@INIT') return state;
  return { n: state.n + (calls > 5 ? 2 : 1) };
}
