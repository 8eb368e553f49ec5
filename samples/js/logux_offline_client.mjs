// A real Logux client (@logux/core 0.10's ClientNode over `ws`) that queues N `counter/add`
// actions while offline, in a MemoryStore log, then connects and syncs its whole backlog at once
// — the offline-first case rdt records. Watchers (other clients subscribed to the `counter`
// channel) connect first and receive the server's resends of every accepted action.
//
//   node samples/js/logux_offline_client.mjs URL [--actions N] [--refused] [--watchers W]
//                                                [--timeout SECONDS]
//
// URL is the Logux server (samples/js/logux_server.mjs), or `rdt record` in front of it.
// With --refused the first watcher also sends one action with `by: -1`, which the server's
// `access` refuses (`logux/undo`, reason "denied"; from a client of its own, since
// @logux/server then undoes every action still queued behind it from that client). When every action is answered and every watcher has its
// resends, the client asks for the server's counter (`counter/get`) and prints one JSON line:
//
//   {"actions", "processed", "undone", "resent": [per watcher], "refused": {"id", "answer"},
//    "state": {"value", "count"}, "expected": {"value", "count"},
//    "ids": {"first", "last", "sha256" (of the backlog's ids, sorted, one per line)},
//    "clients": [{"node", "sent": {"frames", "bytes", "sha256"}, "received": {…}}]}
//
// "sent"/"received" digest every websocket frame the client sent or got, in order: SHA-256
// over each frame's length (8 bytes, big-endian) and then its bytes — what a recorder in
// between must have stored for that connection, byte for byte.

import { createHash } from 'node:crypto'
import { parseArgs } from 'node:util'

import { ClientNode, Log, MemoryStore, WsConnection } from '@logux/core'
import WebSocket from 'ws'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    actions: { type: 'string', default: '100' },
    refused: { type: 'boolean', default: false },
    watchers: { type: 'string', default: '0' },
    timeout: { type: 'string', default: '120' }
  }
})
if (positionals.length !== 1) {
  process.stderr.write('usage: logux_offline_client.mjs URL [--actions N] [--refused] [--watchers W]\n')
  process.exit(2)
}
const url = positionals[0]
const actions = Number(values.actions)
const watchers = Number(values.watchers)
if (values.refused && watchers < 1) {
  process.stderr.write('logux_offline_client: --refused needs --watchers 1 or more\n')
  process.exit(2)
}
const timer = setTimeout(() => {
  process.stderr.write(`logux_offline_client: not done after ${values.timeout} s\n`)
  process.exit(1)
}, Number(values.timeout) * 1000)

/** SHA-256 over (length, bytes) of each frame, in order. */
class Digest {
  constructor() {
    this.frames = 0
    this.bytes = 0
    this.hash = createHash('sha256')
  }

  add(data) {
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data)
    const length = Buffer.alloc(8)
    length.writeBigUInt64BE(BigInt(bytes.length))
    this.hash.update(length)
    this.hash.update(bytes)
    this.frames += 1
    this.bytes += bytes.length
  }

  toJSON() {
    return { frames: this.frames, bytes: this.bytes, sha256: this.hash.copy().digest('hex') }
  }
}

/** A `ws` WebSocket class that digests every frame it sends and receives. */
function digestingSocket(sent, received) {
  return class extends WebSocket {
    constructor(...args) {
      super(...args)
      this.on('message', data => received.add(data))
    }

    send(data, ...rest) {
      sent.add(data)
      super.send(data, ...rest)
    }
  }
}

/** A client node on its own MemoryStore log, its frames digested. */
function client(nodeId) {
  const sent = new Digest()
  const received = new Digest()
  const log = new Log({ nodeId, store: new MemoryStore() })
  const connection = new WsConnection(url, digestingSocket(sent, received), { maxPayload: 2 ** 30 })
  const node = new ClientNode(nodeId, log, connection, {
    subprotocol: 1,
    ping: 0,
    timeout: 0,
    // As @logux/client does: only this node's own actions go to the server, with the meta the
    // server accepts from a client (id and time; a client's other meta is refused as denied).
    onSend: (action, meta) =>
      meta.id.split(' ')[1] === nodeId ? [action, { id: meta.id, time: meta.time }] : false
  })
  node.catch(error => {
    process.stderr.write(`logux_offline_client: ${nodeId}: ${error.message}\n`)
    process.exit(1)
  })
  return { nodeId, log, node, sent, received }
}

/** Resolves, once every action of `ids` is answered (`logux/processed` or `logux/undo`), with
 * how many answers were which. */
function answered(log, ids) {
  const left = new Set(ids)
  const answers = { processed: 0, undone: 0 }
  return new Promise(resolve => {
    log.on('add', action => {
      if (action.type !== 'logux/processed' && action.type !== 'logux/undo') return
      if (!left.delete(action.id)) return
      answers[action.type === 'logux/undo' ? 'undone' : 'processed'] += 1
      if (left.size === 0) resolve(answers)
    })
  })
}

// Watchers first: connected and subscribed before the backlog arrives.
const watching = []
for (let w = 1; w <= watchers; w++) {
  const watcher = client(`w${w}:watcher`)
  watcher.resent = 0
  watcher.log.on('add', (action, meta) => {
    const own = meta.id.split(' ')[1] === watcher.nodeId
    if (action.type === 'counter/add' && !own) watcher.resent += 1
  })
  watcher.node.connection.connect()
  await watcher.node.waitFor('synchronized')
  const id = watcher.log.generateId()
  const done = answered(watcher.log, [id])
  await watcher.log.add({ type: 'logux/subscribe', channel: 'counter' }, { id, sync: true })
  await done
  watching.push(watcher)
}

// One action the server refuses, from a watcher (its undo names it).
let refused = null
if (values.refused) {
  const log = watching[0].log
  const id = log.generateId()
  const answer = new Promise(resolve => {
    log.on('add', action => {
      if (action.id === id) resolve(action.type)
    })
  })
  await log.add({ type: 'counter/add', by: -1 }, { id, sync: true })
  refused = { id, answer: await answer }
}

// The offline client: its whole queue is in its log before it ever connects.
const offline = client('10:offline')
const ids = []
const expected = { value: 0, count: 0 }
for (let i = 0; i < actions; i++) {
  const by = (i % 7) + 1
  const meta = await offline.log.add({ type: 'counter/add', by }, { reasons: ['queue'] })
  ids.push(meta.id)
  expected.value += by
  expected.count += 1
}
const answers = answered(offline.log, ids)
offline.node.connection.connect()
const { processed, undone } = await answers

// Every watcher gets every accepted action once, resent by the server.
await new Promise(resolve => {
  const check = () => {
    if (watching.every(w => w.resent >= expected.count)) resolve()
    else setTimeout(check, 20)
  }
  check()
})

// The server's own counter.
const state = new Promise(resolve => {
  offline.log.on('add', action => {
    if (action.type === 'counter/state') resolve({ value: action.value, count: action.count })
  })
})
const get = offline.log.generateId()
const got = answered(offline.log, [get])
await offline.log.add({ type: 'counter/get' }, { id: get, sync: true })
await got
const counter = await state

const everyone = [...watching, offline]
for (const c of everyone) c.node.connection.disconnect()
clearTimeout(timer)
process.stdout.write(
  JSON.stringify({
    actions,
    processed,
    undone,
    resent: watching.map(w => w.resent),
    refused,
    state: counter,
    expected,
    ids: {
      first: ids[0],
      last: ids[ids.length - 1],
      sha256: createHash('sha256').update([...ids].sort().join('\n')).digest('hex')
    },
    clients: everyone.map(c => ({ node: c.nodeId, sent: c.sent, received: c.received }))
  }) + '\n'
)
