// rdt-devtools: the rdt devtools channel (docs/PROTOCOL.md §1) for Node reducer servers.
//
//   import { createDevtools } from 'rdt-devtools'
//   const devtools = createDevtools({ name: 'orders', version: '1.0' })
//   const store = devtools.useStore(configureStore({ reducer, enhancers: (g) => g().concat(devtools.enhancer) }))
//   //   or, for a bare reducer: const store = devtools.wrapReducer(reducer)
//   devtools.attach(wss, { token: process.env.RDT_TOKEN })         // a ws WebSocketServer or an http server
//   wss.on('connection', (ws, request) => {
//     const client = devtools.client(request)                       // sender "c1" …, X-Rdt-Connection
//     ws.on('message', (data) => { client.received(); client.dispatch(JSON.parse(data)) })
//   })

import { attach as attachTo } from './src/attach.mjs';
import { Devtools } from './src/channel.mjs';

Devtools.prototype.attach = function attach(server, options) {
  return attachTo(this, server, options);
};

export { Client, CLOSE_TOO_SLOW, Devtools, createDevtools } from './src/channel.mjs';
export { attachTo as attach };
export { canonical, NotJSON, stateHash } from './src/canonical.mjs';
export { NotWritable, stringify, toNs, wallClockNs } from './src/exact.mjs';
export { authorized, hostAllows, isLoopback, originAllowed, parseBearer, tokenMatches } from './src/auth.mjs';
export * as protocol from './src/protocol.mjs';
