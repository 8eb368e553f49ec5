// Sample: a plain `ws` + Redux server with no devtools channel — the kind rdt records with
// `rdt record --events-from inbound`. Every client message whose type starts with `order/` is
// dispatched to the Redux store unchanged (the sales-order twin reducer in sales_order.mjs) and
// broadcast to every client; `query/list` is answered to the sender with the order count and
// `query/state` with the whole state (no action either way).
//
//   node samples/js/plain_server.mjs [--port 0] [--host 127.0.0.1]
//
// Prints {"port": N} on one line once it listens.

import { parseArgs } from 'node:util';

import { configureStore } from '@reduxjs/toolkit';
import { WebSocketServer } from 'ws';

import { reducer } from './sales_order.mjs';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } },
});

const store = configureStore({ reducer, middleware: () => [], devTools: false });
const server = new WebSocketServer({ port: Number(values.port), host: values.host });

server.on('connection', (ws) => {
  ws.on('message', (data) => {
    let message;
    try {
      message = JSON.parse(data.toString());
    } catch {
      ws.send(JSON.stringify({ type: 'error', error: 'not JSON' }));
      return;
    }
    const type = typeof message?.type === 'string' ? message.type : '';
    if (type.startsWith('order/')) {
      store.dispatch(message);
      for (const client of server.clients) client.send(data.toString());
    } else if (type === 'query/state') {
      ws.send(JSON.stringify({ type: 'state', state: store.getState() }));
    } else {
      ws.send(JSON.stringify({ type: 'orders', count: store.getState().count }));
    }
  });
});

server.on('listening', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
