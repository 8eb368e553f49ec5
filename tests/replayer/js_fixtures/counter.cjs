// A CommonJS reducer.
function reducer(state, event) {
  if (state === undefined) state = { count: 0 };
  if (event.type === '@@INIT') return state;
  return { count: state.count + 1 };
}
module.exports = { reducer, reducers: { root: reducer } };
