// Sloppy-mode CommonJS (no "use strict"): writes into its input state, at the top level on
// "bump" and deep inside on "deep"; both on a frozen input fail silently here.
function reducer(state, event) {
  if (state === undefined) state = { count: 0, nested: { items: [1, 2] } };
  if (event.type === 'bump') {
    state.count = state.count + 1;
    return Object.assign({}, state);
  }
  if (event.type === 'deep') {
    state.nested.items[1] = 99;
    return Object.assign({}, state, { touched: true });
  }
  return Object.assign({}, state, { other: (state.other || 0) + 1 });
}
module.exports = { reducer };
