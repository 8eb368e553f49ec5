// The devtools channel's messages (docs/PROTOCOL.md §1) as plain data. Pure, no I/O.
//
// Builders return the objects a server sends; parseRequest turns a decoded client frame into a
// request or {error, id} (it never throws): an unknown type or a malformed field is answered with
// @@devtools/error and the connection stays open; unknown fields are ignored.

export const PROTOCOL_VERSION = 1;
export const HELLO = '@@devtools/hello';
export const SNAPSHOT = '@@devtools/snapshot';
export const EVENT = '@@devtools/event';
export const DISPATCHED = '@@devtools/dispatched';
export const ERROR = '@@devtools/error';
export const SUBSCRIBE = '@@devtools/subscribe';
export const GET_STATE = '@@devtools/get-state';
export const DISPATCH = '@@devtools/dispatch';

/** The handshake header a recording proxy sends upstream to name its client connection. */
export const CONNECTION_HEADER = 'x-rdt-connection';
/** The longest X-Rdt-Connection value accepted (longer values are ignored). */
export const MAX_CONNECTION_ID = 200;
/** The sender of actions dispatched through the devtools channel. */
export const DEVTOOLS_SENDER = 'devtools';

const CONTROL_ONLY = new Set(['@@devtools/inject', '@@devtools/mark', '@@devtools/status']);

const isInt = (value) => Number.isSafeInteger(value);
const validId = (value) => value === undefined || value === null || typeof value === 'string' || isInt(value);
const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/** A decoded request: {type, ...} or {error, id} for one that cannot be served. */
export function parseRequest(obj) {
  if (!isObject(obj)) return { error: 'a request must be a JSON object', id: null };
  const kind = obj.type;
  const id = validId(obj.id) ? (obj.id ?? null) : null;
  if (typeof kind !== 'string') return { error: "a request needs a string 'type'", id };
  if (!validId(obj.id)) return { error: "'id' must be a string or an integer", id: null };
  if (kind === SUBSCRIBE) {
    const snapshot = obj.snapshot ?? true;
    if (typeof snapshot !== 'boolean') return { error: "'snapshot' must be true or false", id };
    return { type: SUBSCRIBE, snapshot };
  }
  if (kind === GET_STATE) return { type: GET_STATE, id };
  if (kind === DISPATCH) {
    const action = obj.action;
    if (!isObject(action)) return { error: "'action' must be a JSON object", id };
    if (typeof action.type !== 'string') return { error: "'action' needs a string 'type'", id };
    return { type: DISPATCH, id, action };
  }
  if (CONTROL_ONLY.has(kind)) {
    return { error: `${kind} is not served on this endpoint`, id };
  }
  return { error: `unknown request type ${JSON.stringify(kind)}`, id };
}

/** The connection id in an X-Rdt-Connection header value, or null (empty, too long, control chars). */
export function parseCauseHeader(value) {
  if (Array.isArray(value)) value = value[0];
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  if (!trimmed || trimmed.length > MAX_CONNECTION_ID) return null;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) return null;
  return trimmed;
}

export const cause = (connection, n) => ({ connection, n });

export function hello({ name, version, v, hash }) {
  return { type: HELLO, protocol: PROTOCOL_VERSION, server: { name, version }, v, hash };
}

export function snapshot(v, state, hash, id = null) {
  const message = { type: SNAPSHOT, v, state, hash };
  if (id !== null && id !== undefined) message.id = id;
  return message;
}

export function event(v, event, cause, hash = null) {
  const message = { type: EVENT, v, event, cause };
  if (hash !== null && hash !== undefined) message.hash = hash;
  return message;
}

export function dispatched(id, ok, events, error = null, replies = []) {
  return { type: DISPATCHED, id, ok, events: [...events], error, replies: [...replies] };
}

export function error(message, id = null) {
  return { type: ERROR, id, error: message };
}
