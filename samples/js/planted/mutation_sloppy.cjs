// Planted: sloppy-mode CommonJS (no "use strict") that writes into its input state. From the
// first order/cancelled on (CANCELLED_V = 31 on the planted sales log) it bumps the input's
// `count` by 1000 in place, then reduces from the changed input (so the state it returns has the
// bump too). Were the input frozen, the write would fail silently here, with no error: freezing
// alone does not show this bug.

const clean = require('./clean_plain.cjs')

function reducer(state, event) {
  if (state !== undefined && event.type === 'order/cancelled') {
    state.count = state.count + 1000
  }
  return clean.reducer(state, event)
}

module.exports.reducer = reducer
