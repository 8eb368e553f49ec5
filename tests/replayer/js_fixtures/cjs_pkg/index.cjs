// CommonJS requiring a local helper and a package from node_modules.
const { inc } = require('./lib.cjs');
const tiny = require('tiny-pkg');
exports.reducer = function reducer(state, event) {
  const s = state === undefined ? { n: 0 } : state;
  return event.type === '@@INIT' ? s : { n: inc(s.n) + tiny.zero };
};
