// Spins forever on an event of type "spin".
export function reducer(state = { n: 0 }, event) {
  if (event.type === 'spin') for (;;) {}
  return event.type === '@@INIT' ? state : { n: state.n + 1 };
}
