// Copy-on-write and deep-freeze like Immer's auto-freeze: never writes its input.
function deepFreeze(value) {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze(value[key]);
  }
  return value;
}
export function reducer(state = deepFreeze({ count: 0, nested: { items: [1, 2] } }), event) {
  if (event.type === '@@INIT') return state;
  return deepFreeze({ ...state, count: state.count + 1, nested: { ...state.nested, items: [...state.nested.items, event.v] } });
}
