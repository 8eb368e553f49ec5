// Logs on every call, to stdout and stderr: the pipe protocol must not care.
export function reducer(state = { n: 0 }, event) {
  console.log('reducing', JSON.stringify(event), '\x00\x01 not a frame');
  console.error('on stderr', event.type);
  return event.type === '@@INIT' ? state : { n: state.n + 1 };
}
