import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FrameDecoder, encodeFrame } from '../../replayer/js/framing.mjs';

test('a frame round-trips, its parts named by byte offsets', () => {
  const frame = encodeFrame({ ok: true }, ['é', '{"a":1}']);
  assert.equal(frame.readUInt32LE(4), 2 + 7);
  const decoder = new FrameDecoder(16);
  const space = decoder.space(frame.length);
  frame.copy(space);
  decoder.commit(frame.length);
  const got = decoder.next();
  assert.deepEqual(got.header, { ok: true, parts: [[0, 2], [2, 7]] });
  assert.equal(got.buf.toString('utf8', got.bodyStart, got.bodyEnd), 'é{"a":1}');
  assert.equal(decoder.next(), null);
});

test('frames arriving a byte at a time, and several in one read', () => {
  const frames = [encodeFrame({ n: 1 }, ['x'.repeat(5000)]), encodeFrame({ n: 2 }), encodeFrame({ n: 3 }, ['[]'])];
  const all = Buffer.concat(frames);
  const decoder = new FrameDecoder(4);
  const seen = [];
  for (let i = 0; i < all.length; i++) {
    const space = decoder.space(1);
    space[0] = all[i];
    decoder.commit(1);
    for (let frame; (frame = decoder.next()); ) seen.push([frame.header.n, frame.bodyEnd - frame.bodyStart]);
  }
  assert.deepEqual(seen, [[1, 5000], [2, 0], [3, 2]]);
  const bulk = new FrameDecoder();
  all.copy(bulk.space(all.length));
  bulk.commit(all.length);
  assert.deepEqual([bulk.next().header.n, bulk.next().header.n, bulk.next().header.n, bulk.next()], [1, 2, 3, null]);
});
