import assert from 'node:assert/strict';
import { test } from 'node:test';

import { authorized, hostAllows, isLoopback, originAllowed, parseBearer, tokenMatches } from '../src/auth.mjs';

test('the bearer token is read case-insensitively, with whitespace ignored', () => {
  assert.equal(parseBearer('Bearer abc'), 'abc');
  assert.equal(parseBearer('  bearer   abc  '), 'abc');
  assert.equal(parseBearer('Basic abc'), null);
  assert.equal(parseBearer('Bearer'), null);
  assert.equal(parseBearer(undefined), null);
});

test('tokens match only when equal, whatever their lengths', () => {
  assert.ok(tokenMatches('secret', 'secret'));
  assert.ok(!tokenMatches('secret', 'secreT'));
  assert.ok(!tokenMatches('secret', 'secret-and-more'));
  assert.ok(!tokenMatches('secret', ''));
  assert.ok(!tokenMatches('', ''));
  assert.ok(!tokenMatches('secret', null));
  assert.ok(authorized('t', 'Bearer t'));
  assert.ok(!authorized('t', 'Bearer u'));
  assert.ok(!authorized('t', undefined));
});

test('a handshake without Origin passes; one with an Origin needs it allowed', () => {
  assert.ok(originAllowed(undefined));
  assert.ok(!originAllowed('http://evil.example'));
  assert.ok(originAllowed('http://127.0.0.1:3000', ['http://127.0.0.1:3000']));
});

test('loopback by default; any address only when asked', () => {
  for (const address of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(address), address);
  for (const address of ['10.0.0.1', '::ffff:10.0.0.1', '0.0.0.0', undefined]) assert.ok(!isLoopback(address), String(address));
  assert.ok(hostAllows('127.0.0.1', '::ffff:127.0.0.1'));
  assert.ok(hostAllows('localhost', '::1'));
  assert.ok(!hostAllows('127.0.0.1', '192.168.1.5'));
  assert.ok(hostAllows('0.0.0.0', '192.168.1.5'));
  assert.ok(hostAllows('192.168.1.5', '::ffff:192.168.1.5'));
  assert.ok(!hostAllows('192.168.1.5', '192.168.1.6'));
});
