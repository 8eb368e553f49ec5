// Writes to stderr and exits the process on an event of type "exit".
export function reducer(state = { n: 0 }, event) {
  if (event.type === 'exit') {
    console.error('fatal: the reducer gave up at', event.v);
    process.exit(7);
  }
  return event.type === '@@INIT' ? state : { n: state.n + 1 };
}
