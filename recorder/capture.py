"""Sans-I/O capture: a copy of one direction's bytes in, whole messages and the close out.

The proxy forwards the raw bytes untouched and feeds a copy here. Frames are parsed with the
websockets sans-I/O frame parser (:meth:`websockets.frames.Frame.parse`) configured with the
extensions the two ends negotiated, so compressed traffic comes out decompressed; fragments are
joined into messages, pings and pongs are skipped, and a close frame is reported with its code.
Nothing here does I/O, and nothing here raises on bad input: a stream that cannot be parsed
stops the capture of that direction and reports why in :attr:`StreamCapture.error`.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

from websockets.exceptions import ProtocolError
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, Frame, Opcode
from websockets.headers import parse_extension
from websockets.streams import StreamReader

OP_TEXT, OP_BINARY, OP_CONT, OP_CLOSE = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.CLOSE


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


_NOTHING: list[Captured | CapturedClose] = []  # never appended to


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


class StreamCapture:
    """Parses one direction of a websocket connection.

    Args:
        from_client: ``True`` for client → server bytes (masked frames).
        extensions: the negotiated decoders (see :func:`negotiated_extensions`).
    """

    __slots__ = ("_out", "_parser", "_reader", "closed", "error", "pending_bytes")

    def __init__(self, *, from_client: bool, extensions: Sequence[Extension] = ()) -> None:
        self._reader = StreamReader()
        self._out: list[Captured | CapturedClose] = []
        self.error: str | None = None
        """Why parsing stopped (a protocol error, or end of stream mid-frame), else ``None``."""
        self.closed = False
        """Whether a close frame went by."""
        self.pending_bytes = 0
        """Bytes of the current unfinished message (0 at a message boundary)."""
        self._parser = self._parse(from_client, list(extensions))
        next(self._parser)

    def feed(self, data: bytes) -> list[Captured | CapturedClose]:
        """Feed the bytes just forwarded; return the messages and close they completed."""
        if self.error is not None or self.closed:
            return []
        self._reader.feed_data(data)
        next(self._parser)
        out = self._out
        if not out:
            return _NOTHING
        self._out = []
        return out

    def feed_eof(self) -> None:
        """The stream ended; an unfinished frame becomes :attr:`error`."""
        if self.error is None and not self.closed and not self._reader.eof:
            self._reader.feed_eof()
            next(self._parser, None)

    @property
    def at_frame_boundary(self) -> bool:
        """Whether the bytes fed so far end exactly at the end of a frame."""
        return not self._reader.buffer

    def _parse(self, mask: bool, extensions: list[Extension]) -> Generator[None, None, None]:
        reader = self._reader
        parse = Frame.parse
        parts: list[bytes] = []
        binary = False
        try:
            while True:
                if (yield from reader.at_eof()):
                    if parts:
                        self.error = "stream ended inside a fragmented message"
                    break
                frame = yield from parse(
                    reader.read_exact, mask=mask, max_size=None, extensions=extensions
                )
                opcode = frame.opcode
                if opcode is OP_TEXT or opcode is OP_BINARY:
                    if parts:
                        raise ProtocolError("expected a continuation frame")
                    if frame.fin:
                        self._out.append(Captured(bytes(frame.data), opcode is OP_BINARY))
                    else:
                        binary = opcode is OP_BINARY
                        parts.append(bytes(frame.data))
                        self.pending_bytes = len(frame.data)
                elif opcode is OP_CONT:
                    if not parts:
                        raise ProtocolError("unexpected continuation frame")
                    parts.append(bytes(frame.data))
                    self.pending_bytes += len(frame.data)
                    if frame.fin:
                        self._out.append(Captured(b"".join(parts), binary))
                        parts = []
                        self.pending_bytes = 0
                elif opcode is OP_CLOSE:
                    try:
                        close = Close.parse(bytes(frame.data))
                        code: int | None = None if close.code == 1005 else close.code
                        self._out.append(CapturedClose(code, close.reason))
                    except (ProtocolError, UnicodeDecodeError) as error:
                        self._out.append(CapturedClose(None, f"malformed close frame: {error}"))
                    self.closed = True
                    break
                # ping / pong: forwarded by the proxy, not recorded as messages
        except EOFError:
            self.error = "stream ended inside a frame"
        except ProtocolError as error:
            self.error = f"protocol error: {error}"
        except Exception as error:  # decompression errors and the like: never raise to the proxy
            self.error = f"unparseable frame: {type(error).__name__}: {error}"
        while True:
            yield
