// A .js file with no package.json "type": CommonJS by Node's rules; module.exports is a function.
module.exports = function reducer(state, event) {
  const s = state === undefined ? { seen: [] } : state;
  if (event.type === '@@INIT') return s;
  return { seen: [...s.seen, event.type] };
};
