// A reducer that edits its state as each event says, immutably (copying the containers on the
// way, as Redux reducers do) or, for "mutate", in place: for the per-event patch tests.
//   {type: "set", path, value}     {type: "delete", path}     {type: "push", path, value}
//   {type: "pop", path}            {type: "replace", value}   {type: "undefine", path}
//   {type: "front", path, key, value} (a new key first: another key order)
//   {type: "mutate", path, value}  (in place: the state object is returned as it was)

function edit(node, path, change) {
  if (path.length === 0) return change(node);
  const [head, ...rest] = path;
  const copy = Array.isArray(node) ? node.slice() : { ...node };
  copy[head] = edit(node[head], rest, change);
  return copy;
}

export function editor(state = { items: {}, list: [], n: 0 }, event) {
  const path = event.path ?? [];
  switch (event.type) {
    case 'set':
      return edit(state, path.slice(0, -1), (node) => {
        const copy = Array.isArray(node) ? node.slice() : { ...node };
        copy[path[path.length - 1]] = event.value;
        return copy;
      });
    case 'delete':
      return edit(state, path.slice(0, -1), (node) => {
        const copy = { ...node };
        delete copy[path[path.length - 1]];
        return copy;
      });
    case 'undefine':
      return edit(state, path.slice(0, -1), (node) => ({ ...node, [path[path.length - 1]]: undefined }));
    case 'push':
      return edit(state, path, (node) => [...node, event.value]);
    case 'pop':
      return edit(state, path, (node) => node.slice(0, -1));
    case 'front':
      return edit(state, path, (node) => ({ [event.key]: event.value, ...node }));
    case 'replace':
      return event.value;
    case 'mutate': {
      let node = state;
      for (const key of path.slice(0, -1)) node = node[key];
      node[path[path.length - 1]] = event.value;
      return state;
    }
    default:
      return state;
  }
}
