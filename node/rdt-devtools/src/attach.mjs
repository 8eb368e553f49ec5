// Serving the devtools channel on a server you already have: a `ws` WebSocketServer or an
// `http` server. The only module here that touches sockets.
//
// Upgrades to `path` are checked before the upgrade: a connection that arrived on a local
// address the channel does not serve (loopback only, unless `host` says otherwise) gets 403, a
// missing or wrong `Authorization: Bearer TOKEN` gets 401 (constant-time compare), an `Origin`
// header not in `allowOrigins` gets 403. Accepted ones get their own websocket (a private
// WebSocketServer in noServer mode) fed to the Devtools core. Other paths are left alone.

import { WebSocketServer } from 'ws';

import { authorized, hostAllows, originAllowed } from './auth.mjs';

function pathOf(request) {
  const url = request.url ?? '/';
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

function refuse(socket, status, reason, headers = {}) {
  const body = `${reason}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Forbidden'}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  if (socket.writable) socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  else socket.destroy();
}

/**
 * Serve `devtools`' channel on `server` at `options.path`.
 *
 * @param {import('./channel.mjs').Devtools} devtools the core to serve
 * @param {import('ws').WebSocketServer | import('node:http').Server} server where upgrades arrive
 * @param {object} options
 * @param {string} options.token the bearer token the handshake must carry (required)
 * @param {string} [options.path] where the channel is served; "/devtools"
 * @param {string} [options.host] which local address the channel answers on: "127.0.0.1"
 *   (loopback only; the default), "0.0.0.0" / "::" / "*" (any), or one address
 * @param {string[]} [options.allowOrigins] Origin values a browser handshake may carry
 * @param {number} [options.maxPayload] the largest frame accepted from a devtools client
 * @returns {{path: string, close(): void}} a handle; close() detaches and closes the peers
 */
export function attach(devtools, server, options = {}) {
  const { token, path = '/devtools', host = '127.0.0.1', allowOrigins = [], maxPayload = 64 * 1024 * 1024 } = options;
  if (typeof token !== 'string' || token === '') throw new TypeError('attach needs a non-empty token');
  const wss = new WebSocketServer({ noServer: true, maxPayload });

  const handle = (request, socket, head) => {
    if (!hostAllows(host, socket.localAddress)) {
      refuse(socket, 403, `the devtools channel is served on ${host} only`);
      return;
    }
    if (!authorized(token, request.headers.authorization)) {
      refuse(socket, 401, 'missing or wrong token', { 'WWW-Authenticate': 'Bearer' });
      return;
    }
    if (!originAllowed(request.headers.origin, allowOrigins)) {
      refuse(socket, 403, 'origin not allowed');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const peer = devtools.openPeer(ws);
      ws.on('message', (data, isBinary) => peer.receive(isBinary ? data : data.toString('utf8')));
      ws.on('close', () => peer.close());
      ws.on('error', () => peer.close());
    });
  };

  let detach;
  if (typeof server?.handleUpgrade === 'function' && server instanceof WebSocketServer) {
    // The app's WebSocketServer calls this.handleUpgrade for every upgrade it sees (and its
    // users call it in noServer mode): take the devtools path before it does.
    const original = server.handleUpgrade;
    server.handleUpgrade = function handleUpgrade(request, socket, head, callback) {
      if (pathOf(request) === path) return handle(request, socket, head);
      return original.call(this, request, socket, head, callback);
    };
    detach = () => {
      server.handleUpgrade = original;
    };
  } else if (typeof server?.on === 'function' && typeof server?.listen === 'function') {
    const listener = (request, socket, head) => {
      if (pathOf(request) === path) handle(request, socket, head);
    };
    server.on('upgrade', listener);
    detach = () => server.off('upgrade', listener);
  } else {
    throw new TypeError('attach needs a ws WebSocketServer or an http/https server');
  }

  return {
    path,
    close() {
      detach();
      for (const client of wss.clients) client.terminate();
      wss.close();
    },
  };
}
