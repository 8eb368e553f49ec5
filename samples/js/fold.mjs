// Test helper: fold JSON-lines events through a JS reducer and print the state as JSON.
//
//   node samples/js/fold.mjs FILE.mjs:name [--each] [--runs N] [--freeze] [--check-input] < events.jsonl
//
// FILE is resolved from the current folder; `name` is an export (dotted names are followed,
// `default` is the default export; a CommonJS file's module.exports is looked in too). The fold
// starts from reducer(undefined, {type: "@@INIT"}). Output, one JSON value per line:
//   default        the final state of each run
//   --each         {"run", "v", "state"} after every event of each run
// --runs N folds the same events N times in this one process (module state carries over);
// --freeze deep-freezes every state before the reducer sees it; --check-input fails when the
// reducer changed its input state (its JSON before and after the call differ).
//
// Exit codes: 0 done; 1 the reducer threw or changed its input (one line on stderr with the v);
// 3 bad use, a file that does not load, or an export that is missing or not a function.

import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

function fail(code, message) {
  process.stderr.write(`fold: ${message}\n`)
  process.exit(code)
}

function parseArgs(argv) {
  const opts = { ref: null, each: false, runs: 1, freeze: false, checkInput: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--each') opts.each = true
    else if (arg === '--freeze') opts.freeze = true
    else if (arg === '--check-input') opts.checkInput = true
    else if (arg === '--runs') {
      opts.runs = Number(argv[++i])
      if (!Number.isInteger(opts.runs) || opts.runs < 1) fail(3, '--runs needs a positive integer')
    } else if (opts.ref === null && !arg.startsWith('--')) opts.ref = arg
    else fail(3, `unexpected argument ${JSON.stringify(arg)}`)
  }
  if (opts.ref === null) fail(3, 'usage: fold.mjs FILE.mjs:name [--each] [--runs N] < events.jsonl')
  return opts
}

async function loadReducer(ref) {
  const colon = ref.lastIndexOf(':')
  if (colon <= 0) fail(3, `${JSON.stringify(ref)} is not FILE:name`)
  const file = resolve(ref.slice(0, colon))
  const name = ref.slice(colon + 1)
  let ns
  try {
    ns = await import(pathToFileURL(file).href)
  } catch (err) {
    fail(3, `cannot load ${file}: ${String(err?.message ?? err).split('\n')[0]}`)
  }
  const follow = (root) =>
    name.split('.').reduce((obj, part) => (obj == null ? undefined : obj[part]), root)
  let found = follow(ns)
  if (found === undefined && ns.default && typeof ns.default === 'object') found = follow(ns.default)
  if (found === undefined) fail(3, `${file} has no export ${JSON.stringify(name)}`)
  if (typeof found !== 'function') fail(3, `${file}:${name} is not a function (${typeof found})`)
  return found
}

function deepFreeze(value) {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const key of Object.keys(value)) deepFreeze(value[key])
  }
  return value
}

function readEvents() {
  const text = readFileSync(0, 'utf8')
  const events = []
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return
    try {
      events.push(JSON.parse(line))
    } catch (err) {
      fail(3, `stdin line ${i + 1} is not JSON: ${err.message}`)
    }
  })
  return events
}

const opts = parseArgs(process.argv.slice(2))
const reducer = await loadReducer(opts.ref)
const events = readEvents()
const out = []

function call(state, event, v) {
  if (opts.freeze) deepFreeze(state)
  const before = opts.checkInput ? JSON.stringify(state) : null
  let next
  try {
    next = reducer(state, event)
  } catch (err) {
    const where = (err?.stack ?? String(err)).split('\n').find((l) => l.includes('at ')) ?? ''
    fail(1, `reducer threw at v=${v} (${event.type}): ${err?.name ?? 'Error'}: ${err?.message ?? err} ${where.trim()}`)
  }
  if (opts.checkInput && JSON.stringify(state) !== before) {
    fail(1, `reducer changed its input state at v=${v} (${event.type})`)
  }
  return next
}

for (let run = 1; run <= opts.runs; run++) {
  let state = call(undefined, { type: '@@INIT' }, 0)
  for (const event of events) {
    state = call(state, event, event.v)
    if (opts.each) out.push(JSON.stringify({ run, v: event.v, state }))
  }
  if (!opts.each) out.push(JSON.stringify(state))
}
process.stdout.write(out.length ? `${out.join('\n')}\n` : '')
