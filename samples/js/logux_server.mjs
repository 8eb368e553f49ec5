// A real @logux/server sample: a counter whose `counter/add` actions are checked (`access`:
// `by` must be a positive integer, else Logux answers `logux/undo`), applied (`process`) and
// resent to every client subscribed to the `counter` channel.
//
//   node samples/js/logux_server.mjs [PORT] [HOST]   (default 31337 127.0.0.1; prints
//   "listening PORT"; or: rdt sample logux-counter --port PORT)

import { Server } from '@logux/server'

import { reducer } from './logux_counter.mjs'

const port = Number(process.argv[2] || 31337)
const host = process.argv[3] || '127.0.0.1'
let state = reducer(undefined, { type: '@@INIT' })

const server = new Server({ subprotocol: 1, minSubprotocol: 1, port, host })
server.auth(() => true)
server.channel('counter', { access: () => true })
server.type('counter/add', {
  access: (ctx, action) => Number.isInteger(action.by) && action.by > 0,
  resend: () => 'counter',
  process: (ctx, action) => {
    state = reducer(state, action)
  }
})
server.type('counter/get', {
  access: () => true,
  process: ctx => ctx.sendBack({ type: 'counter/state', ...state })
})
await server.listen()
process.stdout.write(`listening ${port}\n`)
