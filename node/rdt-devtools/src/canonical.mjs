// Canonical JSON (RFC 8785) and state hashes (PROTOCOL.md §5), the JavaScript side. Pure.
//
// canonical(value) gives the text that devtools.canonical.canonical_bytes gives in Python for
// the same JSON: object keys sorted by UTF-16 code units (Array.prototype.sort's default order),
// numbers in the ECMAScript Number-to-String form (-0 written as 0), strings escaped as
// JSON.stringify escapes them. Integers beyond ±2^53 differ by nature: JSON.parse makes
// doubles of them, and the double's form is written (2^64 + 1 -> 18446744073709552000).
//
// What counts as JSON: plain objects (prototype Object.prototype or null), arrays, strings
// without lone surrogates, finite numbers, booleans, null. An object property whose value is
// undefined is left out, as JSON.stringify leaves it out (a hash of the state equals the hash of
// its JSON round trip). Anything else is a NotJSON error naming the RFC 6901 pointer: NaN,
// Infinity, undefined inside an array (or at the root), functions, symbols, BigInt, Map, Set,
// class instances (Date …), cycles.

import { createHash } from 'node:crypto';

export class NotJSON extends Error {
  constructor(pointer, problem) {
    super(`state is not JSON at ${pointer === '' ? 'the root' : pointer}: ${problem}`);
    this.name = 'NotJSON';
    this.pointer = pointer;
    this.problem = problem;
  }
}

const LONE_SURROGATE = /\p{Surrogate}/u;

function wellFormed(text) {
  return typeof text.isWellFormed === 'function' ? text.isWellFormed() : !LONE_SURROGATE.test(text);
}

function escapeToken(token) {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

function pointerOf(path) {
  let out = '';
  for (const token of path) out += '/' + escapeToken(token);
  return out;
}

function describe(value) {
  switch (typeof value) {
    case 'undefined':
      return 'undefined is not a JSON value';
    case 'function':
      return 'a function is not a JSON value';
    case 'symbol':
      return 'a symbol is not a JSON value';
    case 'bigint':
      return 'a BigInt is not a JSON number';
    case 'number':
      return `${value} is not a JSON number`;
    default:
      break;
  }
  if (value instanceof Map) return 'a Map is not JSON (use an object)';
  if (value instanceof Set) return 'a Set is not JSON (use an array)';
  const name = value?.constructor?.name;
  return `a ${name || 'non-plain object'} is not a plain JSON object`;
}

function isPlainObject(value) {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Walk `value` and return null when it is JSON, else {pointer, problem} for the first problem.
 * Object keys are visited in sorted order, so the problem named is the one canonical() meets.
 */
export function jsonProblem(value) {
  const path = [];
  const open = new Set();
  const found = (problem) => ({ pointer: pointerOf(path), problem });
  const walk = (item) => {
    switch (typeof item) {
      case 'string':
        return wellFormed(item) ? null : found('string holds a lone surrogate (not valid UTF-8)');
      case 'number':
        return Number.isFinite(item) ? null : found(describe(item));
      case 'boolean':
        return null;
      case 'object':
        break;
      default:
        return found(describe(item));
    }
    if (item === null) return null;
    if (open.has(item)) return found('circular reference');
    if (Array.isArray(item)) {
      open.add(item);
      for (let i = 0; i < item.length; i++) {
        path.push(i);
        const problem = walk(item[i]);
        if (problem) return problem;
        path.pop();
      }
      open.delete(item);
      return null;
    }
    if (!isPlainObject(item)) return found(describe(item));
    open.add(item);
    const keys = Object.keys(item).sort();
    for (const key of keys) {
      path.push(key);
      if (!wellFormed(key)) return found('key holds a lone surrogate (not valid UTF-8)');
      const child = item[key];
      if (child !== undefined) {
        const problem = walk(child);
        if (problem) return problem;
      }
      path.pop();
    }
    open.delete(item);
    return null;
  };
  try {
    return walk(value);
  } catch (error) {
    if (error instanceof RangeError) return { pointer: pointerOf(path.slice(0, 64)), problem: 'nesting too deep' };
    throw error;
  }
}

function raiseProblem(problem) {
  throw new NotJSON(problem.pointer, problem.problem);
}

/** JSON.stringify(value) after checking that it is JSON (throws NotJSON naming the path). */
export function jsonText(value) {
  const problem = jsonProblem(value);
  if (problem) raiseProblem(problem);
  return JSON.stringify(value);
}

function write(value, out) {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      out.push(JSON.stringify(value));
      return;
    default:
      break;
  }
  if (value === null) {
    out.push('null');
  } else if (Array.isArray(value)) {
    if (value.length === 0) {
      out.push('[]');
      return;
    }
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i) out.push(',');
      write(value[i], out);
    }
    out.push(']');
  } else {
    const keys = Object.keys(value).sort();
    out.push('{');
    let first = true;
    for (const key of keys) {
      const child = value[key];
      if (child === undefined) continue;
      if (!first) out.push(',');
      first = false;
      out.push(JSON.stringify(key), ':');
      write(child, out);
    }
    out.push('}');
  }
}

/** The canonical JSON text of `value` (throws NotJSON naming the path of a problem). */
export function canonical(value) {
  const problem = jsonProblem(value);
  if (problem) raiseProblem(problem);
  const out = [];
  write(value, out);
  return out.join('');
}

/** "sha256:" + the lowercase hex SHA-256 of the canonical UTF-8 bytes. */
export function stateHash(value) {
  return 'sha256:' + createHash('sha256').update(canonical(value), 'utf8').digest('hex');
}
