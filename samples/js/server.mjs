// Sample: the sales-order service of samples/sales_order.py, as a Node server — ws + Redux
// Toolkit (the twin reducer in sales_order.mjs) + the rdt-devtools package.
//
//   node samples/js/server.mjs [--port 8700] [--host 127.0.0.1] [--token T]   (or: rdt sample node-sales-order)
//
// Clients send JSON commands, as with the Python sample:
//   {"type":"order/create","customer":"ACME"}
//   {"type":"order/add-line","order":"o1","sku":"apple","qty":2,"price":150}
//   {"type":"order/remove-line","order":"o1","sku":"apple"}
//   {"type":"order/submit","order":"o1"}   {"type":"order/cancel","order":"o1"}
//   {"type":"order/list"}                  (answered to the sender only, no event)
// A Redux middleware validates each command and turns it into its event (order/created,
// order/line-added …); every event is pushed to every connected client; a refused command gets
// {"type":"error","error":…,"n":…,"request":…} back. Try it with `npx wscat -c ws://127.0.0.1:8700/`.
// The devtools channel is at /devtools (token: --token, else $RDT_TOKEN, else generated and
// printed), on loopback unless --host says otherwise.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import { configureStore } from '@reduxjs/toolkit';
import { createDevtools } from 'rdt-devtools';
import { WebSocketServer } from 'ws';

import { reducer } from './sales_order.mjs';

export const NAME = 'node-sales-order';
export const VERSION = '1.0';

/** A command the business rules refuse: the sender gets an error, nobody an event. */
export class Rejected extends Error {}

const nonEmpty = (value) => typeof value === 'string' && value.trim() !== '';
const count = (value, minimum) => Number.isSafeInteger(value) && value >= minimum;
const show = (value) => (value === undefined ? 'undefined' : JSON.stringify(value));

function openOrder(state, message) {
  const id = message.order;
  const order = typeof id === 'string' && Object.hasOwn(state.orders, id) ? state.orders[id] : undefined;
  if (order === undefined) throw new Rejected(`unknown order ${show(id)}`);
  if (order.status !== 'open') throw new Rejected(`order ${id} is ${order.status} and cannot change`);
  return order;
}

/** The command middleware: validate, pick ids, pass the event on (the reducer never sees commands). */
export const commands = (api) => (next) => (message) => {
  const state = api.getState();
  switch (message.type) {
    case 'order/list':
      return { type: 'order/list', orders: state.orders };
    case 'order/create':
      if (!nonEmpty(message.customer)) throw new Rejected("order/create needs a non-empty 'customer'");
      next({ type: 'order/created', id: `o${state.count + 1}`, customer: message.customer });
      return undefined;
    case 'order/add-line':
      openOrder(state, message);
      if (!nonEmpty(message.sku)) throw new Rejected("order/add-line needs a non-empty 'sku'");
      if (!count(message.qty, 1)) throw new Rejected("'qty' must be a positive integer");
      if (!count(message.price, 0)) throw new Rejected("'price' must be a non-negative integer (cents)");
      next({ type: 'order/line-added', order: message.order, sku: message.sku, qty: message.qty, price: message.price });
      return undefined;
    case 'order/remove-line': {
      const order = openOrder(state, message);
      if (typeof message.sku !== 'string' || !Object.hasOwn(order.lines, message.sku)) {
        throw new Rejected(`order ${order.id} has no line ${show(message.sku)}`);
      }
      next({ type: 'order/line-removed', order: message.order, sku: message.sku });
      return undefined;
    }
    case 'order/submit': {
      const order = openOrder(state, message);
      if (Object.keys(order.lines).length === 0) throw new Rejected(`order ${order.id} is empty and cannot be submitted`);
      next({ type: 'order/submitted', order: message.order });
      return undefined;
    }
    case 'order/cancel': {
      const id = message.order;
      const order = typeof id === 'string' && Object.hasOwn(state.orders, id) ? state.orders[id] : undefined;
      if (order === undefined) throw new Rejected(`unknown order ${show(id)}`);
      if (order.status === 'cancelled') throw new Rejected(`order ${id} is already cancelled`);
      next({ type: 'order/cancelled', order: id });
      return undefined;
    }
    default:
      throw new Rejected(`unknown message type ${show(message.type)}`);
  }
};

/** The store and its devtools core: configureStore + the command middleware + the enhancer. */
export function makeStore(options = {}) {
  const devtools = createDevtools({ name: NAME, version: VERSION, ...options });
  const store = configureStore({
    reducer,
    middleware: (getDefault) => getDefault({ immutableCheck: false, serializableCheck: false }).concat(commands),
    enhancers: (getDefault) => getDefault().concat(devtools.enhancer),
  });
  devtools.useStore(store); // devtools dispatches run through the command middleware too
  return { store, devtools };
}

/**
 * Start the sample: an http server with the clients' websocket at every path but `devtoolsPath`.
 *
 * @returns {Promise<{url: string, devtoolsUrl: string, port: number, close(): Promise<void>, store, devtools}>}
 */
export async function startServer({ port = 8700, host = '127.0.0.1', token, devtoolsPath = '/devtools', ...options } = {}) {
  const { store, devtools } = makeStore(options);
  const http = createServer((request, response) => {
    response.writeHead(426, { 'Content-Type': 'text/plain' }).end('this is a websocket server\n');
  });
  const wss = new WebSocketServer({ server: http, maxPayload: 1024 * 1024 });
  wss.on('error', () => {}); // the http server's own errors (EADDRINUSE …) are handled below
  const channel = devtools.attach(wss, { token, path: devtoolsPath, host });
  const sockets = new Set();

  devtools.onEvent(({ text }) => {
    for (const ws of sockets) if (ws.readyState === ws.OPEN) ws.send(text);
  });

  wss.on('connection', (ws, request) => {
    const client = devtools.client(request);
    sockets.add(ws);
    const reply = (message) => ws.readyState === ws.OPEN && ws.send(JSON.stringify(message));
    ws.on('message', (data, isBinary) => {
      const n = client.received();
      let message;
      try {
        message = isBinary ? undefined : JSON.parse(data.toString('utf8'));
      } catch {
        message = undefined;
      }
      if (message === null || typeof message !== 'object' || Array.isArray(message) || typeof message.type !== 'string') {
        reply({ type: 'error', error: 'bad frame: not a JSON object with a string type', n });
        return;
      }
      const outcome = client.dispatch(message);
      if (!outcome.ok) reply({ type: 'error', error: outcome.error, n, request: message.type });
      else if (outcome.result && typeof outcome.result === 'object' && outcome.result !== message) reply(outcome.result);
    });
    ws.on('close', () => sockets.delete(ws));
    ws.on('error', () => sockets.delete(ws));
  });

  await new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const bound = http.address().port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `ws://${shown}:${bound}/`,
    devtoolsUrl: `ws://${shown}:${bound}${devtoolsPath}`,
    port: bound,
    store,
    devtools,
    close: () =>
      new Promise((resolve) => {
        channel.close();
        for (const ws of sockets) ws.terminate();
        wss.close();
        http.close(() => resolve());
      }),
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8700' },
      host: { type: 'string', default: '127.0.0.1' },
      token: { type: 'string' },
      'devtools-path': { type: 'string', default: '/devtools' },
      'hash-every': { type: 'string', default: '1' },
      'snapshot-every': { type: 'string', default: '0' },
    },
  });
  const int = (name) => {
    const value = Number(values[name]);
    if (!Number.isSafeInteger(value) || value < 0) {
      console.error(`--${name} must be a non-negative integer, not ${values[name]}`);
      process.exit(3);
    }
    return value;
  };
  const given = values.token || process.env.RDT_TOKEN || '';
  const token = given || randomBytes(32).toString('base64url');
  let server;
  try {
    server = await startServer({
      port: int('port'),
      host: values.host,
      token,
      devtoolsPath: values['devtools-path'],
      hashEvery: int('hash-every'),
      snapshotEvery: int('snapshot-every'),
    });
  } catch (error) {
    console.error(`cannot listen on ${values.host}:${values.port}: ${error.code ?? error.message}`);
    process.exit(3);
  }
  console.log(`sample:   ${NAME}`);
  console.log(`clients:  ${server.url}`);
  console.log(`devtools: ${server.devtoolsUrl}`);
  console.log(`token:    ${given ? `(from ${values.token ? '--token' : 'RDT_TOKEN'})` : token}`);
  const stop = () => server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
