// The devtools channel's core: numbering, stamping, hashing, the join rule. No sockets here.
//
// A Devtools object sits between a reducer and the world. Every action that reaches the reducer
// (through the Redux store enhancer or the bare-reducer wrapper) becomes event `v` (1, 2, 3 …),
// stamped with `ts` (integer nanoseconds, a BigInt, written exactly) and `sender`; the reducer
// receives JSON.parse of the event's exact JSON text, which is what a replay gives it later.
// Devtools peers (any transport with send(text) and close(code, reason)) get the hello, the
// snapshot + every later event on subscribe, snapshots on get-state, and may dispatch.
//
// The join is atomic by construction: events are published synchronously at the end of each
// dispatch, and a subscribe sends its snapshot and registers the peer synchronously, so on
// Node's single thread one cannot interleave with the other (none lost, none twice).

import { stateHash } from './canonical.mjs';
import { stringify, toNs, wallClockNs } from './exact.mjs';
import * as protocol from './protocol.mjs';

/** Close code for a devtools peer whose outgoing buffer overflowed. */
export const CLOSE_TOO_SLOW = 1008;

const REDUX_PRIVATE = /^@@redux\//;

function hashOf(state) {
  try {
    return stateHash(state);
  } catch {
    return null; // a state JSON cannot carry has no hash (PROTOCOL §5)
  }
}

function asReplies(result) {
  if (Array.isArray(result)) return result.filter((r) => r && typeof r === 'object' && typeof r.type === 'string');
  if (result && typeof result === 'object' && typeof result.type === 'string') return [result];
  return [];
}

/** One application client connection: its sender id, its X-Rdt-Connection id and message count. */
export class Client {
  constructor(devtools, id, connection) {
    this.devtools = devtools;
    /** The sender id its events carry: "c1", "c2" … */
    this.id = id;
    /** The X-Rdt-Connection id its handshake carried (a recording proxy's), or null. */
    this.connection = connection;
    /** Messages received so far on this connection (call received() for every frame). */
    this.n = 0;
  }

  /** Count one frame received from this client (every frame, valid or not); returns its n. */
  received() {
    this.n += 1;
    return this.n;
  }

  /** The cause of events the current message produces: {connection, n}, or null. */
  cause() {
    return this.connection === null ? null : protocol.cause(this.connection, this.n);
  }

  /** Dispatch `action` as this client (see Devtools.dispatchAs). */
  dispatch(action) {
    return this.devtools.dispatchAs(this.id, action, this.cause());
  }
}

export class Devtools {
  /**
   * @param {object} [options]
   * @param {string} [options.name] what the hello reports as the server's name
   * @param {string} [options.version] … and version
   * @param {number} [options.hashEvery] send the state hash with every K-th event (0: never); 1
   * @param {number} [options.snapshotEvery] also send subscribers a snapshot every K events (0: never)
   * @param {() => bigint} [options.clock] integer nanoseconds (BigInt); default: the wall clock
   * @param {string} [options.defaultSender] the sender of actions dispatched outside any client
   * @param {number} [options.maxBuffered] bytes a peer may have unsent before it is dropped
   */
  constructor(options = {}) {
    this.name = options.name ?? 'node-server';
    this.version = options.version ?? '0';
    this.hashEvery = options.hashEvery ?? 1;
    this.snapshotEvery = options.snapshotEvery ?? 0;
    this.clock = options.clock ?? wallClockNs();
    this.defaultSender = options.defaultSender ?? 'server';
    this.maxBuffered = options.maxBuffered ?? 64 * 1024 * 1024;
    /** The last event's number (0 before any). */
    this.v = 0;
    /** The state after event v. */
    this.state = undefined;
    this._hash = null; // [v, hash]
    this._context = null;
    this._pending = [];
    this._dispatch = null;
    this._peers = new Set();
    this._subscribers = new Set();
    this._listeners = new Set();
    this._clients = 0;
    this._peerIds = 0;
    this.enhancer = (createStore) => (reducer, preloaded, ...rest) => {
      const inner = createStore(this._wrap(reducer), preloaded, ...rest);
      this.state = inner.getState();
      const dispatch = (action) => {
        try {
          return inner.dispatch(action);
        } finally {
          this._flush();
        }
      };
      const store = {
        ...inner,
        dispatch,
        replaceReducer: (next) => inner.replaceReducer(this._wrap(next)),
        devtools: this,
      };
      this._dispatch ??= dispatch;
      return store;
    };
  }

  // ------------------------------------------------------------------ stores

  /**
   * A minimal store over a bare reducer: {getState, dispatch, subscribe, devtools}. The initial
   * state is reducer(preloaded, {type: "@@INIT"}) (as rdt's replayer starts).
   */
  wrapReducer(reducer, preloaded = undefined) {
    const wrapped = this._wrap(reducer);
    let state = reducer(preloaded, { type: '@@INIT' });
    this.state = state;
    const listeners = new Set();
    const store = {
      getState: () => state,
      dispatch: (action) => {
        try {
          state = wrapped(state, action);
        } finally {
          this._flush();
        }
        for (const listener of [...listeners]) listener();
        return action;
      },
      subscribe: (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      devtools: this,
    };
    this._dispatch ??= store.dispatch;
    return store;
  }

  /**
   * Make `store.dispatch` the one dispatchAs uses (so devtools dispatches run through the
   * store's whole middleware chain). configureStore's store, built with `enhancer`, needs this
   * call: the enhancer only sees the store inside the middleware.
   */
  useStore(store) {
    this._dispatch = store.dispatch;
    return store;
  }

  _wrap(reducer) {
    return (state, action) => {
      const kind = action?.type;
      if (typeof kind !== 'string' || REDUX_PRIVATE.test(kind)) return reducer(state, action);
      const context = this._context ?? { sender: this.defaultSender, cause: null };
      const v = this.v + this._pending.length + 1;
      const stamped = { ...action, v, ts: toNs(this.clock()), sender: context.sender };
      const text = stringify(stamped); // refuse what JSON cannot carry before the reducer sees it
      const next = reducer(state, JSON.parse(text));
      this._pending.push({ v, stamped, text, state: next, cause: context.cause });
      return next;
    };
  }

  // ------------------------------------------------------------------ dispatching

  /** A new application client (from its upgrade request, for X-Rdt-Connection). */
  client(request = null) {
    this._clients += 1;
    const header = request?.headers?.[protocol.CONNECTION_HEADER];
    return new Client(this, `c${this._clients}`, protocol.parseCauseHeader(header));
  }

  /**
   * Dispatch `action` with `sender` (and `cause`) on the events it produces.
   *
   * @returns {{ok: boolean, events: number[], result?: any, error?: string}} the events' numbers,
   *   what dispatch returned, or the error it threw (the events before the throw stay).
   */
  dispatchAs(sender, action, cause = null) {
    if (this._dispatch === null) throw new Error('no store: use devtools.enhancer, wrapReducer or useStore');
    const before = this.v;
    const saved = this._context;
    this._context = { sender, cause };
    try {
      const result = this._dispatch(action);
      return { ok: true, events: this._since(before), result };
    } catch (error) {
      return { ok: false, events: this._since(before), error: error?.message ?? String(error) };
    } finally {
      this._context = saved;
    }
  }

  _since(before) {
    const out = [];
    for (let v = before + 1; v <= this.v; v++) out.push(v);
    return out;
  }

  /**
   * Call `listener({v, event, text, cause, state, hash})` after every event (the sample server
   * broadcasts `text`: the event's JSON with `ts` exact). Returns an unsubscribe function.
   */
  onEvent(listener) {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  /** The hash of the current state (cached per v), or null for a state JSON cannot carry. */
  stateHash() {
    if (this._hash === null || this._hash[0] !== this.v) this._hash = [this.v, hashOf(this.state)];
    return this._hash[1];
  }

  _flush() {
    const pending = this._pending;
    if (pending.length === 0) return;
    this._pending = [];
    for (const item of pending) {
      this.v = item.v;
      this.state = item.state;
      const wantHash = this.hashEvery > 0 && item.v % this.hashEvery === 0;
      const wantSnap = this.snapshotEvery > 0 && item.v % this.snapshotEvery === 0;
      const hash = wantHash || wantSnap ? this.stateHash() : null;
      if (this._subscribers.size) {
        const message = stringify(protocol.event(item.v, item.stamped, item.cause, wantHash ? hash : null));
        const snap = wantSnap ? this._snapshotText() : null;
        for (const peer of [...this._subscribers]) {
          peer.send(message);
          if (snap !== null) peer.send(snap);
        }
      }
      const record = { v: item.v, event: item.stamped, text: item.text, cause: item.cause, state: item.state, hash };
      for (const listener of [...this._listeners]) {
        try {
          listener(record);
        } catch (error) {
          console.error(`rdt-devtools: an onEvent listener failed: ${error?.message ?? error}`);
        }
      }
    }
  }

  // ------------------------------------------------------------------ devtools peers

  _snapshotText(id = null) {
    try {
      return stringify(protocol.snapshot(this.v, this.state, this.stateHash(), id));
    } catch {
      return stringify(protocol.error('the state cannot be sent as JSON', id));
    }
  }

  /**
   * A devtools connection over `transport` ({send(text), close(code, reason), bufferedAmount?}):
   * sends the hello now; feed it every frame with receive(text) and call close() when it ends.
   */
  openPeer(transport) {
    this._peerIds += 1;
    const devtools = this;
    const peer = {
      id: `devtools-${this._peerIds}`,
      dropped: false,
      send(text) {
        if (peer.dropped) return;
        if ((transport.bufferedAmount ?? 0) > devtools.maxBuffered) {
          peer.dropped = true;
          devtools._forget(peer);
          transport.close(CLOSE_TOO_SLOW, 'too slow: outgoing buffer overflowed');
          return;
        }
        transport.send(text);
      },
      receive(text) {
        devtools._request(peer, text);
      },
      close() {
        devtools._forget(peer);
      },
    };
    this._peers.add(peer);
    peer.send(stringify(protocol.hello({ name: this.name, version: this.version, v: this.v, hash: this.stateHash() })));
    return peer;
  }

  _forget(peer) {
    this._peers.delete(peer);
    this._subscribers.delete(peer);
  }

  _request(peer, text) {
    let obj;
    try {
      obj = JSON.parse(typeof text === 'string' ? text : text.toString('utf8'));
    } catch {
      peer.send(stringify(protocol.error('bad frame: not JSON')));
      return;
    }
    const request = protocol.parseRequest(obj);
    if (request.error !== undefined) {
      peer.send(stringify(protocol.error(request.error, request.id)));
    } else if (request.type === protocol.SUBSCRIBE) {
      // The join point: snapshot at the current v and registration, synchronously.
      if (request.snapshot) peer.send(this._snapshotText());
      if (!peer.dropped) this._subscribers.add(peer);
    } else if (request.type === protocol.GET_STATE) {
      peer.send(this._snapshotText(request.id));
    } else if (request.type === protocol.DISPATCH) {
      const outcome = this.dispatchAs(protocol.DEVTOOLS_SENDER, request.action);
      // What dispatch returned, unless it is the action itself (Redux's default), is the reply.
      const replies = outcome.ok && outcome.result !== request.action ? asReplies(outcome.result) : [];
      let answer;
      try {
        answer = stringify(protocol.dispatched(request.id, outcome.ok, outcome.events, outcome.error ?? null, replies));
      } catch {
        answer = stringify(protocol.dispatched(request.id, outcome.ok, outcome.events, outcome.error ?? null, []));
      }
      peer.send(answer);
    }
  }

  /** How many devtools peers are subscribed. */
  get subscribers() {
    return this._subscribers.size;
  }
}

/** A new Devtools core (see the class for the options). */
export function createDevtools(options = {}) {
  return new Devtools(options);
}
