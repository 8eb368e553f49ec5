export function reducer(state, event) {
  if (event.type === '@@INIT') throw new Error('no initial state today');
  return state;
}
