"""Sans-I/O capture: a copy of one direction's bytes in, whole messages and the close out.

The proxy forwards the raw bytes untouched and feeds a copy here. Frames are parsed with the
websockets sans-I/O frame parser (:meth:`websockets.frames.Frame.parse`) configured with the
extensions the two ends negotiated, so compressed traffic comes out decompressed; fragments are
joined into messages, pings and pongs are skipped, and a close frame is reported with its code.
Nothing here does I/O, and nothing here raises on bad input: a stream that cannot be parsed
stops the capture of that direction and reports why in :attr:`StreamCapture.error`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, Frame, Opcode
from websockets.headers import parse_extension

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the pure-Python fallback
    from websockets.utils import apply_mask

OP_TEXT, OP_BINARY, OP_CONT, OP_CLOSE = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.CLOSE
OP_PING = Opcode.PING
_OPCODES: list[Opcode | None] = [None] * 16  # by the low nibble of the first header byte
for _op in Opcode:
    _OPCODES[_op.value] = _op


@dataclass(frozen=True, slots=True)
class Captured:
    """One whole data message, decompressed and defragmented."""

    payload: bytes
    binary: bool


@dataclass(frozen=True, slots=True)
class CapturedClose:
    """A close frame: its code (``None`` when it had none) and reason."""

    code: int | None
    reason: str


class Oversize:
    """Which messages past the store limit are still kept whole, to be parsed for their events.

    The recorder stores at most ``--max-frame-size`` bytes of a message; past that the capture
    skips a message without buffering it. A message whose events are wanted (a Logux ``sync``:
    its actions are events even when its bytes are not stored) may instead be kept up to a
    second ceiling, ``--max-parse-size``, counted across every connection and direction of the
    recorder: at most ``ceiling`` bytes of such messages are held at once. One object is shared
    by all captures (all on the event loop, so no lock).

    Args:
        ceiling: the most bytes of kept messages held at once (and so the largest one).
        active: whether messages may be kept at all now (e.g. the recording speaks Logux).
        wanted: from the first bytes of a text message (at most :data:`PREFIX`), whether it
            may be one whose events are wanted (``False`` only when it certainly is not).
    """

    __slots__ = ("active", "ceiling", "held", "wanted")

    def __init__(
        self, ceiling: int, active: Callable[[], bool], wanted: Callable[[bytes], bool]
    ) -> None:
        self.ceiling = ceiling
        self.active = active
        self.wanted = wanted
        self.held = 0
        """Bytes of kept messages held now."""

    def available(self) -> int:
        return max(self.ceiling - self.held, 0)

    def take(self, n: int) -> bool:
        """Count ``n`` more bytes as held, if they fit under the ceiling."""
        if self.held + n > self.ceiling:
            return False
        self.held += n
        return True

    def give(self, n: int) -> None:
        self.held -= n


PREFIX = 64
"""Bytes of a message :attr:`Oversize.wanted` is shown."""

_NOTHING: list[Captured | CapturedClose] = []  # never appended to
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


def negotiated_extensions(header: str | None, *, from_client: bool) -> tuple[list[Extension], str]:
    """The decoders for one direction, from the server's ``Sec-WebSocket-Extensions`` answer.

    Args:
        header: the 101 response's ``Sec-WebSocket-Extensions`` value (``None``: no extensions).
        from_client: ``True`` for the client → server direction.

    Returns:
        The extensions to parse that direction with, and the names of any extension that
        could not be configured (empty when all are understood).
    """
    if not header:
        return [], ""
    try:
        offers = parse_extension(header)
    except Exception as error:  # malformed header: capture without extensions, say so
        return [], f"unparseable extensions header ({error})"
    result: list[Extension] = []
    unknown: list[str] = []
    for name, params in offers:
        if name != "permessage-deflate":
            unknown.append(name)
            continue
        values = dict(params)
        side = "client" if from_client else "server"
        bits = values.get(f"{side}_max_window_bits")
        window = int(bits) if bits else 15
        result.append(
            PerMessageDeflate(
                remote_no_context_takeover=f"{side}_no_context_takeover" in values,
                local_no_context_takeover=True,
                remote_max_window_bits=window,
                local_max_window_bits=15,
            )
        )
    return result, ", ".join(unknown)


_EMPTY_BLOCK = b"\x00\x00\xff\xff"


def _inflate(deflate: PerMessageDeflate, payload: bytes, room: int | None) -> bytes:
    """:meth:`PerMessageDeflate.decode` of a small unfragmented message (websockets' own branch
    for it, on the extension's own decoder) without the two :class:`Frame` values it builds:
    most captured messages come this way."""
    if deflate.remote_no_context_takeover:
        deflate.decoder = zlib.decompressobj(wbits=-deflate.remote_max_window_bits)
    try:
        data = deflate.decoder.decompress(payload + _EMPTY_BLOCK, 0 if room is None else room)
        if deflate.decoder.unconsumed_tail:
            raise PayloadTooBig(None, room)
    except zlib.error as exc:
        raise ProtocolError("decompression failed") from exc
    return data


class StreamCapture:
    """Parses one direction of a websocket connection.

    The frame header layout, unmasking (websockets' C ``apply_mask``), the :class:`Frame` value
    and the extension decoders are websockets'; the loop over the buffer is ours, so a chunk
    holding many small frames costs one call instead of one generator step per read.

    Args:
        from_client: ``True`` for client → server bytes (masked frames).
        extensions: the negotiated decoders (see :func:`negotiated_extensions`).
        on_message: when given, each whole data message is passed to it as
            ``(payload, binary)`` the moment it completes instead of being returned by
            :meth:`feed` (the proxy's hot path: no object per message); :meth:`feed` then
            returns only the close.
        max_size: the most bytes a message may have once decompressed and joined; ``None``:
            no limit. Past it the message is not kept: its frames are skipped as they go by
            (never buffered, never inflated past the limit) and ``on_too_large(wire_size,
            binary)`` is called once it ends. With context takeover the decoder cannot skip
            a compressed message, so the capture of that direction stops (:attr:`error`).
        on_too_large: see ``max_size`` (default: nothing is reported).
        oversize: the policy keeping some messages past ``max_size`` whole (see
            :class:`Oversize`); they go to ``on_message`` like any other. A compressed frame
            whose wire size alone is past ``max_size`` is never kept.
        on_unparsed: called instead of ``on_too_large`` for a message skipped although
            ``oversize`` wanted it (past its ceiling, or its decoding went past it): its
            events could not be derived.
        on_ping: called with each ping's payload (a client answering pings itself; the
            proxy forwards them and needs no call).
    """

    __slots__ = (
        "_binary",
        "_buf",
        "_deflate",
        "_extensions",
        "_held",
        "_mask",
        "_max",
        "_on_message",
        "_on_ping",
        "_on_too_large",
        "_on_unparsed",
        "_over",
        "_parts",
        "_skip_binary",
        "_skip_fin",
        "_skip_frame",
        "_skip_missed",
        "_skip_msg",
        "_skip_wire",
        "_stop_after_skip",
        "closed",
        "error",
    )

    def __init__(
        self,
        *,
        from_client: bool,
        extensions: Sequence[Extension] = (),
        on_message: Callable[[bytes, bool], object] | None = None,
        max_size: int | None = None,
        on_too_large: Callable[[int, bool], object] | None = None,
        oversize: Oversize | None = None,
        on_unparsed: Callable[[int, bool], object] | None = None,
        on_ping: Callable[[bytes], object] | None = None,
    ) -> None:
        self._on_message = on_message
        self._on_ping = on_ping
        self._max = max_size
        self._on_too_large = on_too_large
        self._over = oversize if max_size is not None else None
        self._on_unparsed = on_unparsed
        self._held = 0
        """Bytes of the current message counted in :attr:`Oversize.held` (kept past the limit)."""
        self._skip_missed = False
        """Whether the message being skipped was one ``oversize`` wanted."""
        self._skip_frame = 0
        """Bytes of the frame being skipped still to come."""
        self._skip_fin = False
        self._skip_msg = False
        """Whether the rest of the current message is being skipped (it is past the limit)."""
        self._skip_wire = 0
        self._skip_binary = False
        self._stop_after_skip: str | None = None
        self._buf = bytearray()
        self._mask = from_client
        self._extensions = list(reversed(extensions))
        only = self._extensions[0] if len(self._extensions) == 1 else None
        self._deflate = only if isinstance(only, PerMessageDeflate) else None
        """The decoder when permessage-deflate is the one extension (the fast path)."""
        self._parts: list[bytes] = []
        self._binary = False
        self.error: str | None = None
        """Why parsing stopped (a protocol error, or end of stream mid-frame), else ``None``."""
        self.closed = False
        """Whether a close frame went by."""

    @property
    def pending_bytes(self) -> int:
        """Bytes of the current unfinished message (0 at a message boundary)."""
        return sum(len(part) for part in self._parts)

    @property
    def at_frame_boundary(self) -> bool:
        """Whether the bytes fed so far end exactly at the end of a frame."""
        return not self._buf

    def feed_eof(self) -> None:
        """The stream ended; an unfinished frame or message becomes :attr:`error`."""
        if self.error is None and not self.closed:
            if self._buf:
                self.error = "stream ended inside a frame"
            elif self._parts:
                self.error = "stream ended inside a fragmented message"

    def feed(self, data: bytes) -> list[Captured | CapturedClose]:
        """Feed the bytes just forwarded; return the messages and close they completed."""
        if self.error is not None or self.closed:
            return _NOTHING
        buf = self._buf
        if buf:
            buf += data
            view: bytes | bytearray = buf
        else:
            view = data
        out: list[Captured | CapturedClose] = []
        try:
            used = self._frames(view, out)
        except ProtocolError as error:  # what came before the bad frame is kept
            self.error = f"protocol error: {error}"
            used = len(view)
        except Exception as error:  # decompression errors and the like: never raise to the proxy
            self.error = f"unparseable frame: {type(error).__name__}: {error}"
            used = len(view)
        if self.error is not None or self.closed:
            self.release()
        if view is buf:
            del buf[:used]
        elif used < len(view):
            buf += view[used:]
        return out

    def _frames(self, data: bytes | bytearray, out: list[Captured | CapturedClose]) -> int:
        """Parse whole frames into ``out``; return how many bytes they used."""
        size = len(data)
        pos = 0
        masked = self._mask
        extensions = self._extensions
        emit = self._on_message
        limit = self._max
        while True:
            if self._skip_frame:
                n = min(self._skip_frame, size - pos)
                pos += n
                self._skip_frame -= n
                if self._skip_frame:
                    break
                if self._skip_fin:
                    self._too_large_done()
                    if self.error is not None:
                        return size
            if size - pos < 2:
                break
            head1 = data[pos]
            head2 = data[pos + 1]
            length = head2 & 0x7F
            at = pos + 2
            if length == 126:
                if size - at < 2:
                    break
                (length,) = _U16.unpack_from(data, at)
                at += 2
            elif length == 127:
                if size - at < 8:
                    break
                (length,) = _U64.unpack_from(data, at)
                at += 8
            if bool(head2 & 0x80) != masked:
                raise ProtocolError("incorrect masking")
            op_bits = head1 & 0x0F
            skip = self._skip_msg
            if (
                op_bits < 8
                and not skip
                and limit is not None
                and length + self.pending_bytes > limit
            ):
                keep = self._keep_frame(op_bits, head1, data, at, length)
                if keep is None:  # the message's first bytes decide: wait for them
                    break
                skip = not keep
            if skip:
                # A data frame of a message past the limit: skip it as it goes by.
                if op_bits == 0 and not self._skip_msg and not self._parts:
                    raise ProtocolError("unexpected continuation frame")
                if not self._skip_msg:
                    self._start_skip(op_bits, bool(head1 & 0x40), self._skip_missed)
                self._skip_wire += length
                self._skip_fin = bool(head1 & 0x80)
                self._skip_frame = (4 if masked else 0) + length
                pos = at
                continue
            if masked:
                if size - at < 4 + length:
                    break
                payload = apply_mask(data[at + 4 : at + 4 + length], data[at : at + 4])
                at += 4 + length
            else:
                if size - at < length:
                    break
                payload = bytes(data[at : at + length])
                at += length
            pos = at
            opcode = _OPCODES[head1 & 0x0F]
            if opcode is None:
                raise ProtocolError("invalid opcode")
            fin = bool(head1 & 0x80)
            try:
                deflate = self._deflate
                if (
                    deflate is not None
                    and head1 & 0xF0 == 0xC0  # fin and RSV1 alone: a whole compressed message
                    and (op_bits == 1 or op_bits == 2)
                    and length < 2044
                    and not deflate.decode_cont_data
                ):
                    payload = _inflate(deflate, payload, self._room(opcode))
                elif head1 & 0x70:
                    room = self._room(opcode)
                    frame = Frame(
                        opcode,
                        payload,
                        fin,
                        bool(head1 & 0x40),
                        bool(head1 & 0x20),
                        bool(head1 & 0x10),
                    )
                    for extension in extensions:
                        frame = extension.decode(frame, max_size=room)
                    frame.check()
                    payload = bytes(frame.data)
                elif extensions and opcode is OP_CONT and self._parts:
                    room = self._room(opcode)
                    frame = Frame(opcode, payload, fin)
                    for extension in extensions:
                        frame = extension.decode(frame, max_size=room)
                    payload = bytes(frame.data)
            except PayloadTooBig:
                # Inflating went past the limit: stop there (the bytes are forwarded anyway).
                wire = length
                binary = self._binary if opcode is OP_CONT else opcode is OP_BINARY
                missed = self._could_keep(binary) and (
                    self._held > 0 or not self._parts or self._over.wanted(self._prefix())  # type: ignore[union-attr]
                )
                self._start_skip(0 if opcode is OP_CONT else opcode.value, True, missed)
                self._skip_binary = binary
                self._skip_wire += wire
                self._skip_fin = fin
                if fin:
                    self._too_large_done()
                    if self.error is not None:
                        return size
                continue
            if (
                limit is not None
                and len(payload) + self.pending_bytes > limit
                and not self._keep_decoded(opcode, payload)
            ):
                self._start_skip(0 if opcode is OP_CONT else opcode.value, False, self._skip_missed)
                if opcode is not OP_CONT:
                    self._skip_binary = opcode is OP_BINARY
                self._skip_wire += length
                self._skip_fin = fin
                if fin:
                    self._too_large_done()
                    if self.error is not None:
                        return size
                continue
            item: Captured | CapturedClose | None = None
            if opcode is OP_TEXT or opcode is OP_BINARY:
                if self._parts:
                    raise ProtocolError("expected a continuation frame")
                if not fin:
                    self._binary = opcode is OP_BINARY
                    self._parts = [payload]
                elif emit is not None:
                    emit(payload, opcode is OP_BINARY)
                    self._release()
                else:
                    item = Captured(payload, opcode is OP_BINARY)
                    self._release()
            elif opcode is OP_CONT:
                if not self._parts:
                    raise ProtocolError("unexpected continuation frame")
                self._parts.append(payload)
                if fin:
                    whole = b"".join(self._parts)
                    self._parts = []
                    if emit is not None:
                        emit(whole, self._binary)
                    else:
                        item = Captured(whole, self._binary)
                    del whole
                    self._release()
            elif opcode is OP_CLOSE:
                if not fin or length > 125:
                    raise ProtocolError("invalid close frame")
                try:
                    close = Close.parse(payload)
                    code: int | None = None if close.code == 1005 else close.code
                    item = CapturedClose(code, close.reason)
                except (ProtocolError, UnicodeDecodeError) as error:
                    item = CapturedClose(None, f"malformed close frame: {error}")
                self.closed = True
            elif not fin or length > 125:  # ping / pong: forwarded, not recorded
                raise ProtocolError("fragmented or oversized control frame")
            elif opcode is OP_PING and self._on_ping is not None:
                self._on_ping(payload)
            if item is not None:
                out.append(item)
                if self.closed:
                    return size
        return pos

    # ------------------------------------------------------------ past the limit

    def _could_keep(self, binary: bool) -> bool:
        """Whether a message past the limit may be kept at all (text, and the policy on)."""
        over = self._over
        return over is not None and not binary and over.active()

    def _prefix(self) -> bytes:
        """The first bytes of the current message (its parts so far)."""
        head = b""
        for part in self._parts:
            head += part[: PREFIX - len(head)]
            if len(head) >= PREFIX:
                break
        return head

    def _grow(self, total: int) -> bool:
        """Count the kept message's ``total`` bytes in the shared ceiling, if they fit."""
        over = self._over
        assert over is not None
        if total > self._held:
            if not over.take(total - self._held):
                return False
            self._held = total
        return True

    def _release(self) -> None:
        """The current message ended (or was dropped): its bytes leave the shared count."""
        if self._held:
            self._over.give(self._held)  # type: ignore[union-attr]
            self._held = 0

    def release(self) -> None:
        """The connection ended: give back what an unfinished kept message held."""
        self._parts = []
        self._release()

    def _keep_frame(
        self, op_bits: int, head1: int, data: bytes | bytearray, at: int, length: int
    ) -> bool | None:
        """A data frame takes its message past the limit, by its wire length: whether to go
        on with it (``None``: wait for more bytes). Sets :attr:`_skip_missed` for a skip."""
        self._skip_missed = False
        binary = self._binary if op_bits == 0 else op_bits == OP_BINARY.value
        if (op_bits == 0 and not self._parts) or not self._could_keep(binary):
            return False
        over = self._over
        assert over is not None
        total = length + self.pending_bytes
        if self._held == 0:
            if self._parts:
                prefix = self._prefix()
            else:
                n = min(length, PREFIX)
                masked = self._mask
                if len(data) - at < (4 if masked else 0) + n:
                    return None
                if masked:
                    prefix = apply_mask(data[at + 4 : at + 4 + n], data[at : at + 4])
                else:
                    prefix = bytes(data[at : at + n])
            compressed = bool(head1 & 0x40) if op_bits else self._decoding_cont()
            if compressed and self._extensions and not self._parts:
                # Compressed wire bytes alone past the limit: never kept (decoded, larger still).
                self._skip_missed = True
                return False
            if not over.wanted(prefix):
                return False
        compressed = bool(self._extensions) and (
            bool(head1 & 0x40) if op_bits else self._decoding_cont()
        )
        if compressed:  # decoding decides (:meth:`_room`, :meth:`_keep_decoded`)
            if total <= self._max + self._held + over.available():  # type: ignore[operator]
                return True
        elif self._grow(total):
            return True
        self._skip_missed = True
        return False

    def _room(self, opcode: Opcode) -> int | None:
        """How many more bytes the current message may take once decoded (``None``: no
        limit): up to the limit, or past it as far as the shared ceiling allows."""
        limit = self._max
        if limit is None:
            return None
        binary = self._binary if opcode is OP_CONT else opcode is OP_BINARY
        if opcode in (OP_TEXT, OP_BINARY, OP_CONT) and self._could_keep(binary):
            limit += self._held + self._over.available()  # type: ignore[union-attr]
        return max(limit - self.pending_bytes, 0) or 1

    def _keep_decoded(self, opcode: Opcode, payload: bytes) -> bool:
        """A decoded data frame takes its message past the limit: whether it is kept. Sets
        :attr:`_skip_missed` for a skip."""
        self._skip_missed = False
        binary = self._binary if opcode is OP_CONT else opcode is OP_BINARY
        if opcode not in (OP_TEXT, OP_BINARY, OP_CONT) or not self._could_keep(binary):
            return False
        if self._held == 0:
            prefix = self._prefix() if self._parts else payload[:PREFIX]
            if not self._over.wanted(prefix):  # type: ignore[union-attr]
                return False
        if self._grow(len(payload) + self.pending_bytes):
            return True
        self._skip_missed = True
        return False

    def _start_skip(self, op_bits: int, compressed: bool, missed: bool = False) -> None:
        """The current message goes past the limit: drop what was kept, skip the rest."""
        if op_bits == 0:  # a continuation: the message began earlier
            binary = self._binary
            wire = sum(len(part) for part in self._parts)
            compressed = compressed or bool(self._extensions and self._decoding_cont())
        else:
            binary = op_bits == OP_BINARY.value
            wire = 0
        self._parts = []
        self._release()
        self._skip_msg = True
        self._skip_binary = binary
        self._skip_wire = wire
        self._skip_missed = missed
        if compressed and self._extensions:
            deflate = self._extensions[-1]
            if isinstance(deflate, PerMessageDeflate):
                deflate.decode_cont_data = False
                if not deflate.remote_no_context_takeover:
                    self._stop_after_skip = (
                        "a compressed message went past the size limit and the peers keep the "
                        "compression context: later messages cannot be decoded"
                    )

    def _decoding_cont(self) -> bool:
        return any(getattr(e, "decode_cont_data", False) for e in self._extensions)

    def _too_large_done(self) -> None:
        """The skipped message ended: report it (its wire size) and go on, or stop."""
        self._skip_msg = False
        report = self._on_too_large
        if self._skip_missed and self._on_unparsed is not None:
            report = self._on_unparsed
        self._skip_missed = False
        if report is not None:
            report(self._skip_wire, self._skip_binary)
        self._skip_wire = 0
        if self._stop_after_skip is not None:
            self.error = self._stop_after_skip
