// Clock and random-source guards for `rdt verify` (installed only when asked).
//
// installGuards() replaces Math.random, Date.now, the Date constructor (as a Proxy that sees
// `new Date()` and `Date()` called without arguments), performance.now, process.hrtime (and
// .bigint), globalThis.crypto.randomUUID / getRandomValues and node:crypto's randomUUID /
// getRandomValues / randomBytes / randomInt by wrappers that still return what the original
// returns. While guard.v is set (a reducer call is running) each call is recorded per call
// site (file, line, column, function: the first stack frame outside this file), with the first
// v and a count. Install before the reducer is imported, so a module that keeps
// `const now = Date.now` keeps the wrapper.

import { createRequire, syncBuiltinESMExports } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const HERE = fileURLToPath(import.meta.url);

function stackFrames() {
  const prepare = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  Error.prepareStackTrace = (_error, frames) => frames;
  Error.stackTraceLimit = 30;
  const holder = {};
  Error.captureStackTrace(holder);
  const frames = holder.stack;
  Error.prepareStackTrace = prepare;
  Error.stackTraceLimit = limit;
  return Array.isArray(frames) ? frames : [];
}

function fileOf(frame) {
  const name = frame.getFileName() || frame.getScriptNameOrSourceURL?.() || '<unknown>';
  if (name.startsWith('file://')) {
    try {
      return fileURLToPath(name);
    } catch {
      return name;
    }
  }
  return name;
}

export class Guard {
  constructor() {
    this.v = null;
    this.sites = new Map();
    this.changed = new Set();
    this.busy = false;
  }

  record(name) {
    if (this.v === null || this.busy) return;
    this.busy = true;
    try {
      const frames = stackFrames();
      let site = null;
      for (const frame of frames) {
        const file = fileOf(frame);
        if (file !== HERE && !file.startsWith('node:')) {
          site = frame;
          break;
        }
      }
      const file = site ? fileOf(site) : '<unknown>';
      const line = site?.getLineNumber() ?? 0;
      const column = site?.getColumnNumber() ?? 0;
      const key = `${name}\0${file}\0${line}\0${column}`;
      let entry = this.sites.get(key);
      if (entry === undefined) {
        const fn = site?.getFunctionName() || site?.getMethodName() || '<anonymous>';
        entry = { name, file, line, column, function: fn, v: this.v, count: 0 };
        this.sites.set(key, entry);
      }
      entry.count += 1;
      this.changed.add(entry);
    } finally {
      this.busy = false;
    }
  }

  /** The sites called since the last drain (first v ever, count so far). */
  drain() {
    const out = [...this.changed].map((entry) => ({ ...entry }));
    this.changed.clear();
    return out;
  }
}

function wrap(guard, name, original) {
  const guarded = function (...args) {
    guard.record(name);
    return new.target ? Reflect.construct(original, args, new.target) : original.apply(this, args);
  };
  Object.defineProperty(guarded, 'name', { value: original.name });
  return guarded;
}

function patch(guard, holder, attr, name) {
  const original = holder[attr];
  if (typeof original !== 'function') return;
  const guarded = wrap(guard, name, original);
  for (const key of Object.keys(original)) guarded[key] = original[key];
  try {
    holder[attr] = guarded;
  } catch {
    // fall through to defineProperty
  }
  if (holder[attr] !== guarded) {
    Object.defineProperty(holder, attr, { value: guarded, writable: true, configurable: true });
  }
}

export function installGuards() {
  const guard = new Guard();
  patch(guard, Math, 'random', 'Math.random');

  const OriginalDate = globalThis.Date;
  const originalNow = OriginalDate.now;
  OriginalDate.now = function now() {
    guard.record('Date.now');
    return originalNow.call(OriginalDate);
  };
  globalThis.Date = new Proxy(OriginalDate, {
    construct(target, args, newTarget) {
      if (args.length === 0) guard.record('new Date()');
      return Reflect.construct(target, args, newTarget === globalThis.Date ? target : newTarget);
    },
    apply(target, self, args) {
      guard.record('Date()');
      return Reflect.apply(target, self, args);
    },
  });

  patch(guard, globalThis.performance, 'now', 'performance.now');

  const originalHrtime = process.hrtime;
  const originalBigint = originalHrtime.bigint;
  const hrtime = function hrtime(...args) {
    guard.record('process.hrtime');
    return originalHrtime.apply(process, args);
  };
  hrtime.bigint = function bigint() {
    guard.record('process.hrtime.bigint');
    return originalBigint.call(process.hrtime);
  };
  process.hrtime = hrtime;

  const webcrypto = globalThis.crypto;
  if (webcrypto) {
    for (const attr of ['randomUUID', 'getRandomValues']) {
      let owner = webcrypto;
      while (owner && !Object.hasOwn(owner, attr)) owner = Object.getPrototypeOf(owner);
      const original = owner?.[attr];
      if (typeof original !== 'function') continue;
      const guarded = function (...args) {
        guard.record(`crypto.${attr}`);
        return original.apply(this === undefined || this === globalThis ? webcrypto : this, args);
      };
      Object.defineProperty(guarded, 'name', { value: attr });
      Object.defineProperty(owner, attr, { value: guarded, writable: true, configurable: true, enumerable: true });
    }
  }
  // node:crypto's getRandomValues is a getter that calls globalThis.crypto's: already guarded.
  const nodeCrypto = require('node:crypto');
  for (const attr of ['randomUUID', 'randomBytes', 'randomInt', 'randomFillSync']) {
    patch(guard, nodeCrypto, attr, `crypto.${attr}`);
  }
  // Named ESM imports of builtins (`import { randomUUID } from 'node:crypto'`) see the patches.
  syncBuiltinESMExports();
  return guard;
}
