// A .js file under "type": "module": an ES module.
export default function reducer(state = { n: 0 }, event) {
  return event.type === '@@INIT' ? state : { n: state.n + 1 };
}
