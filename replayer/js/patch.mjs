// The change from one state to the next as a patch, so a per-event walk sends what the event
// changed instead of the whole state (replayer/patch.py applies it; the rule is there).
//
// A patch is a JSON array of operations, applied in order: [path, value] sets the value at
// path (an array of object keys and array indexes; an index equal to the array's length
// appends), [path] deletes an object key, and [[], value] replaces the whole state. Subtrees
// that are the same object (===) in both states are skipped, as a reducer that updates
// immutably leaves them; an object keeps its key order on the Python side only when the next
// state's keys are the previous ones (some removed) followed by new ones, so any other order,
// and an array that shrinks, is sent whole.

import { NotJSON, jsonText } from './canonical.mjs';

function pointerOf(path) {
  let out = '';
  for (const token of path) out += '/' + String(token).replaceAll('~', '~0').replaceAll('/', '~1');
  return out;
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function definedKeys(value) {
  return Object.keys(value).filter((key) => value[key] !== undefined);
}

function text(value, path) {
  try {
    return jsonText(value);
  } catch (error) {
    if (error instanceof NotJSON) throw new NotJSON(pointerOf(path) + error.pointer, error.problem);
    throw error;
  }
}

function set(ops, path, value) {
  ops.push(`[${JSON.stringify(path)},${text(value, path)}]`);
}

// The common case, with one pass and no filtering: the same keys in the same order (a
// reducer's {...prev, [key]: value}). False, with nothing written, when it is not that case.
function sameKeysDiff(prev, next, path, ops) {
  const keys = Object.keys(next);
  const before = Object.keys(prev);
  if (keys.length !== before.length) return false;
  for (let i = 0; i < keys.length; i++) if (keys[i] !== before[i]) return false;
  const start = ops.length;
  // values in key order, compared by position: no keyed load for the keys that kept their value
  const olds = Object.values(prev);
  const news = Object.values(next);
  for (let i = 0; i < keys.length; i++) {
    const a = olds[i];
    const b = news[i];
    if (a === b) continue;
    const key = keys[i];
    if (a === undefined) {
      ops.length = start; // a key Python does not have comes back in the middle: not this case
      return false;
    }
    path.push(key);
    if (b === undefined) ops.push(`[${JSON.stringify(path)}]`);
    else diff(a, b, path, ops);
    path.pop();
  }
  return true;
}

function diff(prev, next, path, ops) {
  if (prev === next) return;
  if (Array.isArray(prev) && Array.isArray(next) && next.length >= prev.length) {
    for (let i = 0; i < next.length; i++) {
      path.push(i);
      if (i < prev.length) diff(prev[i], next[i], path, ops);
      else set(ops, path, next[i]);
      path.pop();
    }
    return;
  }
  if (isObject(prev) && isObject(next) && Object.getPrototypeOf(next) === Object.prototype) {
    if (sameKeysDiff(prev, next, path, ops)) return;
    const before = definedKeys(prev);
    const after = definedKeys(next);
    const kept = before.filter((key) => next[key] !== undefined && Object.hasOwn(next, key));
    let ordered = after.length >= kept.length;
    for (let i = 0; ordered && i < kept.length; i++) ordered = after[i] === kept[i];
    for (let i = kept.length; ordered && i < after.length; i++) {
      ordered = prev[after[i]] === undefined || !Object.hasOwn(prev, after[i]);
    }
    if (ordered) {
      for (const key of before) {
        if (next[key] === undefined || !Object.hasOwn(next, key)) {
          path.push(key);
          ops.push(`[${JSON.stringify(path)}]`);
          path.pop();
        }
      }
      for (let i = 0; i < after.length; i++) {
        const key = after[i];
        path.push(key);
        if (i < kept.length) diff(prev[key], next[key], path, ops);
        else set(ops, path, next[key]);
        path.pop();
      }
      return;
    }
  }
  set(ops, path, next);
}

/** The patch from `prev` to `next` as JSON text (throws NotJSON for a changed part that is
 * not JSON, naming its path in the state). */
export function patchText(prev, next) {
  const ops = [];
  diff(prev, next, [], ops);
  return `[${ops.join(',')}]`;
}
