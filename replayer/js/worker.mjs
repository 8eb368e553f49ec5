// rdt's Node worker: runs a JavaScript reducer for replayer/jsworker.py (the protocol is
// described there). Requests arrive on stdin (fd 0), replies leave on fd 3; stdout is not
// used (the reducer may console.log). The reducer is loaded asynchronously once, then the
// worker serves requests in a synchronous loop (blocking fs.readSync: no event-loop turn per
// page).

import { readSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { NotJSON, jsonText, stateHash } from './canonical.mjs';
import { FrameDecoder, encodeFrame } from './framing.mjs';
import { installGuards } from './guards.mjs';
import { LoadFailure, loadReducer } from './load.mjs';
import { patchText } from './patch.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const replyArg = process.argv.find((arg) => arg.startsWith('--reply-fd='));
const REPLIES = replyArg ? Number(replyArg.slice('--reply-fd='.length)) : 3;
const SHARE = 0.01;
const FLOOR_MS = 5;
const SEEK_MS = 60;
const INIT = Object.freeze({ type: '@@INIT' });
const MAX_MUTATIONS = 20;

const cpuMs = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

const decoder = new FrameDecoder();
let reducer = null;
let guard = null;
let state;
let session = null;
let reported = 0;

function readFrame() {
  for (;;) {
    const frame = decoder.next();
    if (frame) return frame;
    const space = decoder.space();
    let count;
    try {
      count = readSync(0, space, 0, space.length, null);
    } catch (error) {
      if (error.code === 'EAGAIN') continue;
      if (error.code === 'EOF') return null;
      throw error;
    }
    if (count === 0) return null;
    decoder.commit(count);
  }
}

function send(header, parts) {
  const frame = encodeFrame(header, parts);
  let offset = 0;
  while (offset < frame.length) offset += writeSync(REPLIES, frame, offset, frame.length - offset);
}

function cleanStack(error) {
  if (!(error instanceof Error) || typeof error.stack !== 'string') return String(error);
  return error.stack
    .split('\n')
    .filter((line) => !line.includes(HERE))
    .join('\n');
}

class Failure extends Error {
  constructor(detail) {
    super(detail.message ?? detail.kind);
    this.detail = detail;
  }
}

function thrown(error, v) {
  const isError = error instanceof Error;
  return new Failure({
    kind: 'throw',
    v,
    name: isError ? error.name || 'Error' : typeof error,
    message: isError ? String(error.message) : String(error),
    stack: cleanStack(error),
  });
}

function notJSON(error, v) {
  if (!(error instanceof NotJSON)) throw error;
  return new Failure({ kind: 'notjson', v, pointer: error.pointer, problem: error.problem, message: error.message });
}

function call(input, event, v) {
  if (guard === null) return reducer(input, event);
  guard.v = v;
  try {
    return reducer(input, event);
  } finally {
    guard.v = null;
  }
}

function textOf(value, v) {
  try {
    return jsonText(value);
  } catch (error) {
    throw notJSON(error, v);
  }
}

function hashEntry(v) {
  try {
    return [v, stateHash(state), null];
  } catch (error) {
    if (error instanceof NotJSON) return [v, null, error.message];
    throw error;
  }
}

function fingerprint(value) {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined; // a BigInt or a cycle: not comparable, not reported
  }
}

// -- mutation checks ------------------------------------------------------------------------

function escapeToken(token) {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

function shallowCopy(value) {
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) return { keys: null, values: value.slice() };
  const keys = Object.keys(value);
  const values = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) values[i] = value[keys[i]];
  return { keys, values };
}

function shallowChanged(copy, value) {
  if (copy.keys === null) {
    const items = copy.values;
    const n = Math.min(items.length, value.length);
    for (let i = 0; i < n; i++) if (!Object.is(items[i], value[i])) return `/${i}`;
    return items.length === value.length ? null : `/${n}`;
  }
  const { keys, values } = copy;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (!Object.is(values[i], value[key]) || !Object.hasOwn(value, key)) return `/${escapeToken(key)}`;
  }
  const now = Object.keys(value);
  if (now.length !== keys.length) {
    const had = new Set(keys);
    for (const key of now) if (!had.has(key)) return `/${escapeToken(key)}`;
  }
  return null;
}

/** The pointer of the first place where `after` differs from the JSON value `before`. */
function firstDifference(before, after, pointer = '') {
  if (before === null || typeof before !== 'object') {
    return Object.is(before, after) || (before === 0 && after === 0) ? null : pointer;
  }
  if (after === null || typeof after !== 'object' || Array.isArray(before) !== Array.isArray(after)) return pointer;
  if (Array.isArray(before)) {
    const n = Math.min(before.length, after.length);
    for (let i = 0; i < n; i++) {
      const found = firstDifference(before[i], after[i], `${pointer}/${i}`);
      if (found !== null) return found;
    }
    return before.length === after.length ? null : `${pointer}/${n}`;
  }
  const keys = new Set(Object.keys(before));
  for (const key of Object.keys(after)) if (after[key] !== undefined) keys.add(key);
  for (const key of [...keys].sort()) {
    const found = firstDifference(before[key], after[key], `${pointer}/${escapeToken(key)}`);
    if (found !== null) return found;
  }
  return null;
}

// -- the fold ---------------------------------------------------------------------------------

class Pacing {
  constructor(started) {
    this.started = started;
    this.spent = 0;
    this.lastCost = 0;
    this.since = started;
  }

  overdue(now) {
    return now - this.since >= SEEK_MS;
  }

  due(now) {
    if (this.overdue(now)) return true;
    const replay = now - this.started - this.spent;
    return this.spent + this.lastCost <= Math.max(FLOOR_MS, SHARE * replay);
  }

  taken(began, ended) {
    this.lastCost = ended - began;
    this.spent += this.lastCost;
    this.since = ended;
  }
}

function startSession(fid, firstV) {
  session = {
    fid,
    dead: false,
    pacing: new Pacing(cpuMs()),
    windowRef: state,
    windowText: guard === null ? undefined : fingerprint(state),
    windowFrom: firstV,
    scanning: true,
  };
}

function mutation(out, entry) {
  if (reported >= MAX_MUTATIONS) return;
  reported += 1;
  out.push(entry);
}

function windowCheck(v, text, mutations) {
  const again = fingerprint(session.windowRef);
  if (session.windowText !== undefined && again !== undefined && again !== session.windowText) {
    const found = firstDifference(JSON.parse(session.windowText), session.windowRef);
    mutation(mutations, { kind: 'window', v, path: found, window: [session.windowFrom, v] });
  }
  session.windowRef = state;
  session.windowText = text === undefined ? fingerprint(state) : text;
  session.windowFrom = v + 1;
}

function fold(header, text) {
  const { fid, v0, every, pace, hashes: hashMode, last } = header;
  const vs = header.vs ?? null;
  if (session === null || session.fid !== fid) startSession(fid, vs ? vs[0] : v0);
  if (session.dead) return [{ ok: true, skipped: true }, []];
  let events;
  try {
    events = JSON.parse(text);
  } catch (error) {
    session.dead = true;
    throw new Failure({ kind: 'parse', message: String(error.message) });
  }
  const n = events.length;
  const keep = header.keep && header.keep.length ? new Set(header.keep) : null;
  const hashAt = header.hash_at && header.hash_at.length ? new Set(header.hash_at) : null;
  const scanTo = header.scan ?? null;
  const each = hashMode === 'each';
  const atCheckpoints = hashMode === 'checkpoints';
  const checkpoints = [];
  const hashes = [];
  const states = [];
  const mutations = [];
  const parts = [];
  let v = 0;
  try {
    for (let i = 0; i < n; i++) {
      v = vs === null ? v0 + i : vs[i];
      const input = state;
      const copy = guard === null ? null : shallowCopy(input);
      const before = scanTo !== null && session.scanning && v <= scanTo ? fingerprint(input) : undefined;
      try {
        state = call(input, events[i], v);
      } catch (error) {
        throw thrown(error, v);
      }
      if (copy !== null) {
        const path = shallowChanged(copy, input);
        if (path !== null) mutation(mutations, { kind: 'shallow', v, path, window: null });
      }
      if (before !== undefined) {
        const after = fingerprint(input);
        if (after !== undefined && after !== before) {
          session.scanning = false;
          const path = firstDifference(JSON.parse(before), input);
          mutation(mutations, { kind: 'scan', v, path, window: null });
        }
      }
      if (every > 0 && v % every === 0) {
        let checkpointText;
        if (!pace || session.pacing.due(cpuMs())) {
          const began = cpuMs();
          checkpointText = textOf(state, v);
          checkpoints.push([v, parts.length]);
          parts.push(checkpointText);
          session.pacing.taken(began, cpuMs());
        }
        if (atCheckpoints) hashes.push(hashEntry(v));
        if (guard !== null) windowCheck(v, checkpointText, mutations);
      } else if (every > 0 && pace && (v & 15) === 0 && session.pacing.overdue(cpuMs())) {
        // A slow reducer: more than SEEK_MS of reductions since the last checkpoint, so one
        // here too, between multiples of K, keeps a later seek within SEEK_MS of reductions.
        const began = cpuMs();
        checkpoints.push([v, parts.length]);
        parts.push(textOf(state, v));
        session.pacing.taken(began, cpuMs());
      }
      if (each) hashes.push(hashEntry(v));
      else if (hashAt !== null && hashAt.has(v) && !(atCheckpoints && every > 0 && v % every === 0)) {
        hashes.push(hashEntry(v));
      }
      if (keep !== null && keep.has(v)) {
        states.push([v, parts.length]);
        parts.push(textOf(state, v));
      }
    }
  } catch (error) {
    session.dead = true;
    if (error instanceof Failure) error.detail.done = v;
    throw error;
  }
  if (last && n > 0) {
    const lastV = v;
    if (atCheckpoints && !(every > 0 && lastV % every === 0)) hashes.push(hashEntry(lastV));
    if (guard !== null && !(every > 0 && lastV % every === 0)) windowCheck(lastV, undefined, mutations);
  }
  const reply = { ok: true, last_v: v, checkpoints, hashes, states, mutations };
  if (guard !== null) reply.calls = guard.drain();
  return [reply, parts];
}

function steps(header, text) {
  let events;
  try {
    events = JSON.parse(text);
  } catch (error) {
    throw new Failure({ kind: 'parse', message: String(error.message) });
  }
  // patch: each event's change as a patch (patch.mjs), then the last state whole, which the
  // Python side compares with the patched one (a reducer that changes its input in place)
  const patch = header.patch === true;
  const parts = [];
  let v = 0;
  for (let i = 0; i < events.length; i++) {
    v = header.vs[i];
    const before = state;
    try {
      state = call(before, events[i], v);
    } catch (error) {
      throw thrown(error, v);
    }
    if (!patch) {
      parts.push(textOf(state, v));
      continue;
    }
    try {
      parts.push(patchText(before, state));
    } catch (error) {
      throw notJSON(error, v);
    }
  }
  if (patch && events.length) parts.push(textOf(state, v));
  const reply = { ok: true };
  if (guard !== null) reply.calls = guard.drain();
  return [reply, parts];
}

function serve(header, frame) {
  const body = () => frame.buf.toString('utf8', frame.bodyStart, frame.bodyEnd);
  switch (header.op) {
    case 'fold':
      return fold(header, body());
    case 'steps':
      return steps(header, body());
    case 'init':
      session = null;
      try {
        state = call(undefined, { ...INIT }, 0);
      } catch (error) {
        throw thrown(error, 0);
      }
      return [guard === null ? { ok: true } : { ok: true, calls: guard.drain() }, []];
    case 'set':
      session = null;
      try {
        state = JSON.parse(body());
      } catch (error) {
        throw new Failure({ kind: 'parse', message: String(error.message) });
      }
      return [{ ok: true }, []];
    case 'get':
      return [{ ok: true }, [textOf(state, header.v ?? null)]];
    case 'hash':
      try {
        return [{ ok: true, hash: stateHash(state) }, []];
      } catch (error) {
        throw notJSON(error, header.v ?? null);
      }
    default:
      throw new Failure({ kind: 'protocol', message: `unknown op ${JSON.stringify(header.op)}` });
  }
}

async function main() {
  const first = readFrame();
  if (first === null) process.exit(0);
  const { path, name, guards } = first.header;
  try {
    if (guards) guard = installGuards();
    const loaded = await loadReducer(path, name);
    reducer = loaded.reducer;
    send({ ok: true, identity: loaded.identity, node: process.version }, []);
  } catch (error) {
    const message = error instanceof LoadFailure ? error.message : `${error?.name ?? 'Error'}: ${error?.message ?? error}`;
    send({ ok: false, error: { kind: 'load', message } }, []);
    process.exit(0);
  }
  for (;;) {
    const frame = readFrame();
    if (frame === null) process.exit(0);
    let reply;
    let parts = [];
    try {
      [reply, parts] = serve(frame.header, frame);
    } catch (error) {
      reply =
        error instanceof Failure
          ? { ok: false, error: error.detail }
          : { ok: false, error: { kind: 'internal', message: String(error?.message ?? error), stack: cleanStack(error) } };
      parts = [];
    }
    send(reply, parts);
  }
}

await main();
