// JSON text with exact integers, and the nanosecond clock. Pure except for `wallClockNs`.
//
// JSON.stringify throws on a BigInt, and a Number cannot hold a nanosecond time exactly (beyond
// 2^53 a double is off by up to 128 ns, and JSON.stringify writes its shortest round-trip form,
// "1795420800000150000", not its exact value). So `ts` is a BigInt here and `stringify` writes
// every BigInt as its decimal digits, exactly; everything else as JSON.stringify writes it.

/** Why a value cannot be written as JSON: {pointer, problem}, or null. */
function problemOf(value) {
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? null : `${value} is not a JSON number`;
    case 'undefined':
      return 'undefined is not a JSON value';
    case 'function':
      return 'a function is not a JSON value';
    case 'symbol':
      return 'a symbol is not a JSON value';
    default:
      return null;
  }
}

function escapeToken(token) {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

export class NotWritable extends TypeError {
  constructor(path, problem) {
    const pointer = path.map((t) => '/' + escapeToken(t)).join('');
    super(`not JSON at ${pointer === '' ? 'the root' : pointer}: ${problem}`);
    this.name = 'NotWritable';
    this.pointer = pointer;
    this.problem = problem;
  }
}

function isPlainObject(value) {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The JSON text of `value` with every BigInt written as its exact decimal digits.
 *
 * Plain objects, arrays, strings, finite numbers, booleans, null and BigInt are written; an
 * object property whose value is undefined is left out (as JSON.stringify leaves it out).
 * Anything else (NaN, functions, Map, Date, class instances, cycles) throws NotWritable naming
 * the RFC 6901 pointer.
 */
export function stringify(value) {
  const out = [];
  const path = [];
  const open = new Set();
  const write = (item) => {
    switch (typeof item) {
      case 'bigint':
        out.push(item.toString());
        return;
      case 'string':
      case 'boolean':
        out.push(JSON.stringify(item));
        return;
      case 'object':
        break;
      default: {
        const problem = problemOf(item);
        if (problem) throw new NotWritable(path, problem);
        out.push(JSON.stringify(item));
        return;
      }
    }
    if (item === null) {
      out.push('null');
      return;
    }
    if (open.has(item)) throw new NotWritable(path, 'circular reference');
    open.add(item);
    if (Array.isArray(item)) {
      out.push('[');
      for (let i = 0; i < item.length; i++) {
        if (i) out.push(',');
        path.push(i);
        write(item[i]);
        path.pop();
      }
      out.push(']');
    } else {
      if (!isPlainObject(item)) {
        throw new NotWritable(path, `a ${item.constructor?.name || 'non-plain object'} is not a plain JSON object`);
      }
      out.push('{');
      let first = true;
      for (const key of Object.keys(item)) {
        const child = item[key];
        if (child === undefined) continue;
        if (!first) out.push(',');
        first = false;
        out.push(JSON.stringify(key), ':');
        path.push(key);
        write(child);
        path.pop();
      }
      out.push('}');
    }
    open.delete(item);
  };
  write(value);
  return out.join('');
}

/** A value as the wall clock's integer nanoseconds: a BigInt, or the digits of an integer. */
export function toNs(value) {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  throw new TypeError(`a clock must give integer nanoseconds (a BigInt), not ${String(value)}`);
}

/**
 * A wall clock in integer nanoseconds (BigInt): Date.now() once, then the monotonic
 * process.hrtime.bigint() from there, so readings never go backwards and carry every digit.
 */
export function wallClockNs() {
  const base = BigInt(Date.now()) * 1_000_000n;
  const start = process.hrtime.bigint();
  return () => base + (process.hrtime.bigint() - start);
}
