// The pipe protocol's framing (see replayer/jsworker.py). Pure: bytes in, frames out.
//
// A frame is: u32 header length, u32 body length (both little-endian), the header (UTF-8 JSON
// text of an object), the body (bytes). Replies name parts of their body as [offset, length]
// pairs (bytes, relative to the body's start) in the header.

export const PREFIX = 8;

/**
 * Encode one frame from a header object and a list of body strings.
 * Returns {frame: Buffer}. `header.parts` is set to the [offset, length] of each body string.
 */
export function encodeFrame(header, parts = []) {
  let offset = 0;
  const spans = [];
  for (const part of parts) {
    const length = Buffer.byteLength(part, 'utf8');
    spans.push([offset, length]);
    offset += length;
  }
  if (parts.length) header.parts = spans;
  const headerText = JSON.stringify(header);
  const headerLength = Buffer.byteLength(headerText, 'utf8');
  const frame = Buffer.allocUnsafe(PREFIX + headerLength + offset);
  frame.writeUInt32LE(headerLength, 0);
  frame.writeUInt32LE(offset, 4);
  let at = PREFIX + frame.write(headerText, PREFIX, 'utf8');
  for (const part of parts) at += frame.write(part, at, 'utf8');
  return frame;
}

/** Accumulates bytes and cuts them into frames. Read into space(), then commit(n). */
export class FrameDecoder {
  constructor(size = 1 << 20) {
    this.buf = Buffer.allocUnsafe(size);
    this.start = 0;
    this.end = 0;
  }

  /** A writable view of at least `min` bytes at the end of the buffered data. */
  space(min = 1 << 16) {
    if (this.buf.length - this.end < min) {
      const used = this.end - this.start;
      const need = used + Math.max(min, this._wanted());
      if (need > this.buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
        this.buf.copy(grown, 0, this.start, this.end);
        this.buf = grown;
      } else {
        this.buf.copy(this.buf, 0, this.start, this.end);
      }
      this.start = 0;
      this.end = used;
    }
    return this.buf.subarray(this.end);
  }

  commit(count) {
    this.end += count;
  }

  _wanted() {
    if (this.end - this.start < PREFIX) return PREFIX;
    const total = PREFIX + this.buf.readUInt32LE(this.start) + this.buf.readUInt32LE(this.start + 4);
    return Math.max(0, total - (this.end - this.start));
  }

  /**
   * The next complete frame as {header, buf, bodyStart, bodyEnd}, or null when more bytes are
   * needed. The body stays in the decoder's buffer: read it before the next space() call.
   */
  next() {
    const have = this.end - this.start;
    if (have < PREFIX) return null;
    const headerLength = this.buf.readUInt32LE(this.start);
    const bodyLength = this.buf.readUInt32LE(this.start + 4);
    if (have < PREFIX + headerLength + bodyLength) return null;
    const headerStart = this.start + PREFIX;
    const bodyStart = headerStart + headerLength;
    const header = JSON.parse(this.buf.toString('utf8', headerStart, bodyStart));
    this.start = bodyStart + bodyLength;
    return { header, buf: this.buf, bodyStart, bodyEnd: this.start };
  }
}
