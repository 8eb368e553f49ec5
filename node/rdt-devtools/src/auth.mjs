// Who may open the devtools channel: the bearer token (constant time), the Origin, the address.
// Pure: each check takes header values or addresses and answers; attach.mjs applies them.

import { createHash, timingSafeEqual } from 'node:crypto';

/** The token in an Authorization header value, or null (scheme case-insensitive, RFC 7235). */
export function parseBearer(value) {
  if (Array.isArray(value)) value = value[0];
  if (typeof value !== 'string' || !value) return null;
  const match = /^\s*(\S+)\s+(.*?)\s*$/.exec(value);
  if (!match || match[1].toLowerCase() !== 'bearer' || !match[2]) return null;
  return match[2];
}

const digest = (text) => createHash('sha256').update(text, 'utf8').digest();

/**
 * Whether `presented` equals `expected`, in constant time: both are hashed to 32 bytes first,
 * so neither the content nor the length of the expected token shows in the time taken.
 * null (no token) never matches, nor does anything against an empty expected token.
 */
export function tokenMatches(expected, presented) {
  if (typeof presented !== 'string' || typeof expected !== 'string' || !expected) return false;
  return timingSafeEqual(digest(presented), digest(expected));
}

/** Whether an Authorization header value carries the expected bearer token. */
export const authorized = (expected, authorization) => tokenMatches(expected, parseBearer(authorization));

/** Whether a handshake's Origin is acceptable: none (not a browser) or one of `allowed`. */
export function originAllowed(origin, allowed = []) {
  if (Array.isArray(origin)) origin = origin[0];
  if (origin === undefined || origin === null) return true;
  return allowed.includes(origin);
}

/** Whether an address is on the loopback interface (127.0.0.0/8, ::1, IPv4-mapped 127.x). */
export function isLoopback(address) {
  if (typeof address !== 'string') return false;
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  return plain === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(plain);
}

const ANY = new Set(['0.0.0.0', '::', '*']);

/**
 * Whether a connection that arrived on local address `local` may reach a channel told to
 * serve `host`: loopback hosts (the default) accept loopback addresses only, `0.0.0.0`, `::`
 * or `*` accept any, another address only itself.
 */
export function hostAllows(host, local) {
  if (ANY.has(host)) return true;
  if (host === 'localhost' || isLoopback(host)) return isLoopback(local);
  const plain = typeof local === 'string' && local.startsWith('::ffff:') ? local.slice(7) : local;
  return plain === host;
}
